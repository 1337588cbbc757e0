import CKernels
import Dispatch
import Glibc
import Synchronization

/// Work splitting for the CPU backend's kernels.
/// A value handed to worker threads whose safety the caller guarantees (disjoint writes, scoped lifetime).
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

enum CPUParallel {
    /// Online cores (the `VKK_CPU_THREADS` environment variable overrides it).
    static let threadCount: Int = {
        if let override = environment("VKK_CPU_THREADS").flatMap(Int.init), override > 0 { return override }
        return max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }()

    /// Runs `body` over `0..<count` in about `piecesPerThread` contiguous pieces per thread, handed to
    /// the threads as they become free: pieces of unequal cost (causal attention's tiles), or a thread
    /// slowed by other load on the machine, leave no thread idle at the end. Serial when the work
    /// (`count × costPerItem`, rough flops) is too small to pay for the threads.
    static func forEachPiece(_ count: Int, costPerItem: Int = 1, piecesPerThread: Int = 8, _ body: (Range<Int>) -> Void) {
        let pieces = min(count, threadCount * piecesPerThread, max(1, count * costPerItem / 50_000))
        let threads = min(threadCount, pieces)
        guard threads > 1 else { if count > 0 { body(0..<count) }; return }
        let next = Atomic<Int>(0)
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            withUnsafePointer(to: next) { counter in
                let counter = UncheckedSendable(counter)
                DispatchQueue.concurrentPerform(iterations: threads) { _ in
                    while true {
                        let piece = counter.value.pointee.wrappingAdd(1, ordering: .relaxed).oldValue
                        if piece >= pieces { break }
                        shared.value((count * piece / pieces)..<(count * (piece + 1) / pieces))
                    }
                }
            }
        }
    }

    /// Runs `body` over `0..<count` split into contiguous chunks, one per thread; serially when the
    /// total work (`count × costPerItem`, in rough flops) is too small to pay for the threads.
    static func forEachChunk(_ count: Int, costPerItem: Int = 1, _ body: (Range<Int>) -> Void) {
        let chunks = min(threadCount, count, max(1, count * costPerItem / 50_000))
        guard chunks > 1 else { if count > 0 { body(0..<count) }; return }
        withoutActuallyEscaping(body) { body in
            // `body` runs only while this call is on the stack, so the workers may share it.
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                shared.value((count * chunk / chunks)..<(count * (chunk + 1) / chunks))
            }
        }
    }
}

/// A scratch buffer the CPU kernels reuse from call to call. A freshly allocated multi-megabyte buffer
/// comes from the kernel page by page on first touch: packing the 4 MiB B of a 4096 × 256 SpMM into a
/// new buffer took 1.1–1.6 ms against 0.5 ms into a resident one (Intel Xeon model 207), a sixth of the
/// whole 90%-sparse product. One buffer of up to ``retainedLimit`` bytes is kept between calls; a call
/// that finds it taken (another thread's product) or too small allocates its own.
enum CPUWorkspace {
    static let retainedLimit = 64 << 20
    /// The kept buffer's address (as an integer: the lock hands it between threads) and size.
    private static let cached = Mutex<(address: UInt, bytes: Int)?>(nil)

    /// Runs `body` with at least `bytes` bytes, 64-byte aligned, uninitialised.
    static func withBuffer<Result>(bytes: Int, _ body: (UnsafeMutableRawPointer) throws -> Result) rethrows -> Result {
        let size = max(bytes, 64)
        let taken = cached.withLock { slot -> (address: UInt, bytes: Int)? in
            guard let buffer = slot, buffer.bytes >= size else { return nil }
            slot = nil
            return buffer
        }
        let buffer = taken ?? (UInt(bitPattern: UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)), size)
        defer {
            // Keep the larger of this buffer and one cached meanwhile, if it may be kept at all.
            let surplus = cached.withLock { slot -> UInt? in
                guard buffer.bytes <= retainedLimit else { return buffer.address }
                guard let other = slot else { slot = buffer; return nil }
                if other.bytes >= buffer.bytes { return buffer.address }
                slot = buffer
                return other.address
            }
            if let surplus { UnsafeMutableRawPointer(bitPattern: surplus)!.deallocate() }
        }
        return try body(UnsafeMutableRawPointer(bitPattern: buffer.address)!)
    }
}

/// Widens `count` fp16 values to fp32, split across threads (the CPU paths compute in fp32); F16C where
/// the CPU has it (CKernels).
func widenFloat16(_ source: UnsafePointer<Float16>, into destination: UnsafeMutablePointer<Float>, count: Int) {
    let source = UncheckedSendable(UnsafeRawPointer(source).assumingMemoryBound(to: UInt16.self)), destination = UncheckedSendable(destination)
    CPUParallel.forEachChunk(count, costPerItem: 1) { range in
        vkk_widen_half(source.value + range.lowerBound, destination.value + range.lowerBound, Int64(range.count))
    }
}

/// `count` fp16 values as a new fp32 array.
func widenedFloat16(_ source: UnsafePointer<Float16>, count: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: max(count, 1)) { buffer, initialized in
        widenFloat16(source, into: buffer.baseAddress!, count: count)
        initialized = count
    }
}

/// Widens `count` bf16 values to fp32 (a 16-bit shift; AVX2/AVX-512 where the path allows), split across threads.
func widenBFloat16(_ source: UnsafePointer<BFloat16>, into destination: UnsafeMutablePointer<Float>, count: Int) {
    let source = UncheckedSendable(UnsafeRawPointer(source).assumingMemoryBound(to: UInt16.self)), destination = UncheckedSendable(destination)
    CPUParallel.forEachChunk(count, costPerItem: 1) { range in
        vkk_widen_bf16(source.value + range.lowerBound, destination.value + range.lowerBound, Int64(range.count))
    }
}

/// `count` bf16 values as a new fp32 array.
func widenedBFloat16(_ source: UnsafePointer<BFloat16>, count: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: max(count, 1)) { buffer, initialized in
        widenBFloat16(source, into: buffer.baseAddress!, count: count)
        initialized = count
    }
}

/// Rounds `count` fp32 values to bf16 (nearest, ties to even; AVX512-BF16's vcvtneps2bf16 where the CPU
/// has it), split across threads.
func narrowToBFloat16(_ source: UnsafePointer<Float>, into destination: UnsafeMutablePointer<BFloat16>, count: Int) {
    let source = UncheckedSendable(source), destination = UncheckedSendable(UnsafeMutableRawPointer(destination).assumingMemoryBound(to: UInt16.self))
    CPUParallel.forEachChunk(count, costPerItem: 1) { range in
        vkk_narrow_bf16(source.value + range.lowerBound, destination.value + range.lowerBound, Int64(range.count))
    }
}

/// `count` fp16 or bf16 values (`dtype`) at `source` as a new fp32 array.
func widenedHalfWidth(_ source: UnsafeRawPointer, dtype: DType, count: Int) -> [Float] {
    dtype == .bfloat16 ? widenedBFloat16(source.assumingMemoryBound(to: BFloat16.self), count: count)
        : widenedFloat16(source.assumingMemoryBound(to: Float16.self), count: count)
}
