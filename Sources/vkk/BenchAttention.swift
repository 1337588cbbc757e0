import ArgumentParser
import CKernels
import Dispatch
import FoundationEssentials
import Glibc
import VulkanKernels

/// `vkk bench attention`: the fused attention kernel against the naive three-pass attention
/// (GEMM → softmax → GEMM with the scores materialised) on the same backend, and against the CPU path.
struct BenchAttention: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "attention",
                                                    abstract: "Fused attention: prefill and decode sweeps against the naive three-pass baseline and the CPU path.")

    @OptionGroup var options: BenchOptions
    @Flag(help: "fp16 storage (fp32 accumulation) instead of fp32.") var fp16 = false
    @Flag(help: "bf16 storage (fp32 accumulation) instead of fp32; the naive baseline is skipped (softmaxRows has no bf16 kernel).")
    var bf16 = false
    @Option(help: "Skip the CPU path for cases above this many GFLOP (the default keeps the L = 16384 cases out).") var cpuLimit = 80.0
    @Option(help: "Run only prefill, only decode, or both.") var sweep: Sweep = .both
    @Option(help: "Only cases with this key length (repeatable), e.g. --length 4096.") var length: [Int] = []
    @Option(help: "Soft-cap the scores of the fused and CPU paths at this value (the naive baseline stays uncapped).") var softcap: Float?
    @Option(help: "Q/K head dim of every case instead of theirs (1...\(attentionMaxHeadDim); non-multiples of 4 take the element-wise kernel path; above 256 the decode cases take MLA's 16 query heads on 1 K/V head).")
    var headDim: Int?
    @Flag(help: "Give every query head an attention sink (gpt-oss; the naive baseline stays without); prefill rows add the plain kernel's time.")
    var sinks = false
    @Option(help: "Chunked local attention with chunks of N positions (FlashAttention-3 attention_chunk; the naive baseline stays unchunked); prefill rows add the plain kernel's time.")
    var chunk: Int?
    @Option(help: "V head dim of every case (1...\(attentionMaxHeadDim); default: the Q/K head dim), e.g. --head-dim 576 --value-head-dim 512 for DeepSeek's MLA.")
    var valueHeadDim: Int?

    enum Sweep: String, ExpressibleByArgument { case prefill, decode, both }

    func validate() throws {
        if fp16 && bf16 { throw ValidationError("--fp16 and --bf16 exclude each other") }
        guard length.allSatisfy({ $0 > 0 }) else { throw ValidationError("--length must be positive, got \(length.map { "\($0)" }.joined(separator: ", "))") }
        for (name, d) in [("--head-dim", headDim), ("--value-head-dim", valueHeadDim)] {
            if let d, !(1...attentionMaxHeadDim).contains(d) { throw ValidationError("\(name) takes 1...\(attentionMaxHeadDim), got \(d)") }
        }
        if let chunk, chunk < 1 { throw ValidationError("--chunk must be at least 1, got \(chunk)") }
        if let softcap, !(softcap.isFinite && softcap > 0) { throw ValidationError("--softcap must be positive and finite, got \(softcap)") }
        guard cpuLimit.isFinite, cpuLimit >= 0 else { throw ValidationError("--cpu-limit must be a finite number of GFLOP, got \(cpuLimit)") }
    }

    struct Case {
        var heads: Int, kvHeads: Int, queryLength: Int, keyLength: Int, headDim: Int, causal: Bool
        var batch = 1
        var softcap: Float? = nil
        var sinks = false
        var chunk: Int? = nil
        /// V's head dim (nil: the Q/K head dim).
        var valueHeadDim: Int? = nil
        var dv: Int { valueHeadDim ?? headDim }
        var label: String {
            "L=\(queryLength == keyLength ? "\(queryLength)" : "\(queryLength)x\(keyLength)") d=\(headDim)" + (dv != headDim ? "/\(dv)" : "")
                + " h=\(heads)"
                + (kvHeads != heads ? "/kv\(kvHeads)" : "") + (causal ? " causal" : "") + (softcap.map { " cap=\($0)" } ?? "")
                + (sinks ? " sinks" : "") + (chunk.map { " chunk=\($0)" } ?? "")
        }
        /// Useful flops: 2·(dk + dv) per attended pair; causal (bottom-right) counts only pairs on or below the
        /// diagonal, a chunk only pairs inside the query's chunk.
        var flops: Double {
            let offset = keyLength - queryLength
            let pairs = (0..<queryLength).reduce(0.0) { total, i in
                let diagonal = i + offset
                var lower = 0, upper = keyLength          // keys lower..<upper
                if causal { upper = min(upper, diagonal + 1) }
                if let chunk {
                    let start = diagonal >= 0 ? diagonal / chunk * chunk : -((chunk - 1 - diagonal) / chunk) * chunk
                    lower = max(lower, start); upper = min(upper, start + chunk)
                }
                return total + Double(max(0, upper - lower))
            }
            return 2 * Double(headDim + dv) * pairs * Double(batch * heads)
        }
        /// The fused and CPU paths' mask: causal or none, with this case's sinks and chunk.
        var mask: AttentionMask {
            var mask: AttentionMask = causal ? .causal() : .none
            if sinks { mask.sinks = (0..<heads).map { Float($0 % 4) * 0.5 - 0.5 } }
            mask.chunk = chunk
            return mask
        }
    }

    func run() throws {
        let vulkan = try options.makeContext()
        let cpu = try ComputeContext(backend: .cpu)
        print("attention, \(fp16 ? "fp16" : bf16 ? "bf16" : "fp32") storage; CPU path: \(cpu.backendDescription); times are medians of \(options.repeats)")
        if fp16 { try runSweeps(Float16.self, vulkan: vulkan, cpu: cpu) }
        else if bf16 { try runSweeps(BFloat16.self, vulkan: vulkan, cpu: cpu) }
        else { try runSweeps(Float.self, vulkan: vulkan, cpu: cpu) }
    }

    private func runSweeps<E: FloatingPointElement>(_ type: E.Type, vulkan: ComputeContext, cpu: ComputeContext) throws {
        let prefillTable = BenchTable(title: "attention prefill (batch 1) on \(vulkan.backendDescription), \(todayUTC())")
        let decodeTable = BenchTable(title: "attention decode (1 query row, batch 1) on \(vulkan.backendDescription), \(todayUTC())")
        var offered = Set<Int>()  // key lengths of the sweeps that ran, for a --length that matches none
        if sweep != .decode {
            let cases: [Case] = options.quick
                ? [Case(heads: 8, kvHeads: 8, queryLength: 256, keyLength: 256, headDim: 64, causal: false),
                   Case(heads: 16, kvHeads: 16, queryLength: 1024, keyLength: 1024, headDim: 64, causal: true),
                   Case(heads: 16, kvHeads: 16, queryLength: 1024, keyLength: 1024, headDim: 64, causal: false)]
                : [Case(heads: 16, kvHeads: 16, queryLength: 256, keyLength: 256, headDim: 64, causal: false),
                   Case(heads: 16, kvHeads: 16, queryLength: 1024, keyLength: 1024, headDim: 64, causal: false),
                   Case(heads: 16, kvHeads: 16, queryLength: 1024, keyLength: 1024, headDim: 64, causal: true),
                   Case(heads: 32, kvHeads: 8, queryLength: 1024, keyLength: 1024, headDim: 128, causal: true),
                   Case(heads: 16, kvHeads: 16, queryLength: 4096, keyLength: 4096, headDim: 64, causal: false),
                   Case(heads: 16, kvHeads: 16, queryLength: 4096, keyLength: 4096, headDim: 64, causal: true),
                   Case(heads: 8, kvHeads: 8, queryLength: 4096, keyLength: 4096, headDim: 128, causal: true),
                   Case(heads: 16, kvHeads: 16, queryLength: 16384, keyLength: 16384, headDim: 64, causal: true)]
            offered.formUnion(cases.map(\.keyLength))
            for var c in cases where length.isEmpty || length.contains(c.keyLength) {
                c.headDim = headDim ?? c.headDim
                c.valueHeadDim = valueHeadDim
                c.softcap = softcap
                c.sinks = sinks
                c.chunk = chunk
                prefillTable.add(try prefill(c, E.self, vulkan: vulkan, cpu: cpu))
            }
        }
        if sweep != .prefill {
            let lengths = options.quick ? [1024, 8192] : [1024, 4096, 16384, 32768, 131072]
            // Above 256 (MLA: --head-dim 576 --value-head-dim 512), DeepSeek's 16 query heads on one latent K/V head.
            let mla = (headDim ?? 0) > 256
            var cases = lengths.map { Case(heads: mla ? 16 : 32, kvHeads: mla ? 1 : 8, queryLength: 1, keyLength: $0, headDim: headDim ?? 128,
                                           causal: true, valueHeadDim: valueHeadDim) }
            if !options.quick && !mla {
                cases.append(Case(heads: 32, kvHeads: 32, queryLength: 1, keyLength: 32768, headDim: headDim ?? 128, causal: true,
                                  valueHeadDim: valueHeadDim))
            }
            offered.formUnion(cases.map(\.keyLength))
            for var c in cases where length.isEmpty || length.contains(c.keyLength) {
                c.softcap = softcap
                c.sinks = sinks
                c.chunk = chunk
                decodeTable.add(try decode(c, E.self, vulkan: vulkan, cpu: cpu))
            }
        }
        if prefillTable.isEmpty && decodeTable.isEmpty {
            throw CommandError("--length \(length.map { "\($0)" }.joined(separator: ", ")) selects no case; the \(sweep.rawValue) sweep\(options.quick ? " (--quick)" : "") has key lengths \(offered.sorted().map { "\($0)" }.joined(separator: ", "))")
        }
        if let path = options.json {
            let extra = ["date": todayUTC(), "dtype": fp16 ? "f16" : "f32"]
            // One file per sweep that ran: PATH for prefill (or the only sweep), PATH-decode.json beside it for both.
            let both = !prefillTable.isEmpty && !decodeTable.isEmpty
            if !prefillTable.isEmpty { try prefillTable.writeJSON(to: path, device: vulkan.backendDescription, extra: extra) }
            if !decodeTable.isEmpty {
                let decodePath = both ? String(path.dropLast(path.hasSuffix(".json") ? 5 : 0)) + "-decode.json" : path
                try decodeTable.writeJSON(to: decodePath, device: vulkan.backendDescription, extra: extra)
            }
        }
    }

    // MARK: Prefill

    private func prefill<E: FloatingPointElement>(_ c: Case, _ type: E.Type, vulkan: ComputeContext, cpu: ComputeContext) throws -> BenchRow {
        let elementBytes = MemoryLayout<E>.stride
        let qCount = c.batch * c.heads * c.queryLength * c.headDim, kCount = c.batch * c.kvHeads * c.keyLength * c.headDim
        let vCount = c.batch * c.kvHeads * c.keyLength * c.dv, outCount = c.batch * c.heads * c.queryLength * c.dv
        let (q, k, v) = (inputs(qCount, seed: 1, E.self), inputs(kCount, seed: 2, E.self), inputs(vCount, seed: 3, E.self))
        let mask = c.mask
        let before = vulkan.memoryStatistics.usedBytes
        let qt = try vulkan.tensor(q, shape: [c.batch, c.heads, c.queryLength, c.headDim])
        let kt = try vulkan.tensor(k, shape: [c.batch, c.kvHeads, c.keyLength, c.headDim])
        let vt = try vulkan.tensor(v, shape: [c.batch, c.kvHeads, c.keyLength, c.dv])
        let out = try vulkan.empty(E.self, shape: [c.batch, c.heads, c.queryLength, c.dv])
        var peak = 0
        let fused = try timeVulkan(vulkan) { batch in
            try batch.attention(q: qt, k: kt, v: vt, into: out, mask: mask, softcap: c.softcap)
            peak = max(peak, vulkan.memoryStatistics.usedBytes - before)
        }
        let moved = Double((qCount + outCount + kCount + vCount) * elementBytes)
        // With sinks or a chunk: the plain kernel (causal or not, nothing else) on the same data, same run.
        var plain: Double = .nan
        if c.sinks || c.chunk != nil {
            let plainMask: AttentionMask = c.causal ? .causal() : .none
            plain = try timeVulkan(vulkan) { try $0.attention(q: qt, k: kt, v: vt, into: out, mask: plainMask, softcap: c.softcap) }
        }

        // The naive path needs every (query, key) score of the heads it processes at once; it takes
        // as many heads per pass as fit one storage binding, and runs only where that fits memory.
        var naive: (ms: Double, peak: String) = (.nan, "")
        let scoreBytesPerHead = c.queryLength * c.keyLength * elementBytes
        // No binding limit on the CPU backend (its naive path is CPU GEMMs through the BLAS).
        let maxRange = vulkan.deviceInfo?.maxStorageBufferRange ?? Int.max
        // On the CPU backend the naive path is slow past a few thousand keys (tens of seconds at L = 4096).
        let naiveFits = vulkan.isVulkan || c.queryLength * c.keyLength <= 2048 * 2048
        if E.dtype == .bfloat16 {
            naive = (.nan, "n/a (no bf16 softmaxRows)")
        } else if naiveFits && scoreBytesPerHead <= maxRange && c.queryLength * c.keyLength * c.heads * elementBytes <= 2 << 30 {
            let seconds = try naiveThreePass(c, q: q, k: k, v: v, on: vulkan)
            naive = (seconds.time, mb(seconds.peak))
        } else if !naiveFits {
            naive = (.nan, "skipped (CPU, L > 2048)")
        } else {
            naive = (.nan, "needs " + formatted(Double(c.heads * c.queryLength * c.keyLength * elementBytes) / 1e6, digits: 0) + " MB of scores")
        }

        // On the CPU backend the fused column already is the CPU path.
        let cpuSeconds = vulkan.isVulkan ? try cpuTime(c, q: q, k: k, v: v, shapes: [qt.shape, kt.shape, vt.shape, out.shape], mask: mask, cpu: cpu) : .nan
        var row = BenchRow(["case": .text(c.label), "fused ms": .number(fused * 1e3, digits: 2), "GFLOP/s": .number(c.flops / fused / 1e9, digits: 1),
                         "MB moved": .number(moved / 1e6, digits: 1), "peak MB": .number(Double(peak) / 1e6, digits: 1),
                         "naive ms": .number(naive.ms * 1e3, digits: 1), "naive peak MB": .text(naive.peak),
                         "x naive": .number(naive.ms / fused, digits: 2), "CPU ms": .number(cpuSeconds * 1e3, digits: 1),
                         "x CPU": .number(cpuSeconds / fused, digits: 2)])
        if c.sinks || c.chunk != nil { row.columns += [("plain ms", .number(plain * 1e3, digits: 2)), ("x plain", .number(fused / plain, digits: 3))] }
        return row
    }

    /// GEMM (S = Q·Kᵀ) → softmaxRows (scale, causal) → GEMM (O = P·V) per group of heads, with the
    /// scores of the group materialised. Inputs are given per group (the layout this path wants);
    /// with grouped-query heads each query head gets its own copy of its K/V head (not timed).
    private func naiveThreePass<E: FloatingPointElement>(_ c: Case, q: [E], k: [E], v: [E], on context: ComputeContext,
                                                          ) throws -> (time: Double, peak: Int) {
        let elementBytes = MemoryLayout<E>.stride
        let perHead = c.keyLength * c.headDim, valuesPerHead = c.keyLength * c.dv, group = c.heads / c.kvHeads
        let k = group == 1 ? k : (0..<c.heads).flatMap { h in k[((h / group) * perHead)..<((h / group + 1) * perHead)] }
        let v = group == 1 ? v : (0..<c.heads).flatMap { h in v[((h / group) * valuesPerHead)..<((h / group + 1) * valuesPerHead)] }
        // The largest divisor of the head count whose scores fit one storage binding (equal passes).
        let fitting = max(1, (context.deviceInfo?.maxStorageBufferRange ?? Int.max) / (c.queryLength * c.keyLength * elementBytes))
        let headsPerPass = (1...c.heads).last { c.heads % $0 == 0 && $0 <= fitting }!
        let before = context.memoryStatistics.usedBytes
        let scale = 1 / Float(c.headDim).squareRoot()
        var groups: [(q: Tensor<E>, k: Tensor<E>, v: Tensor<E>, o: Tensor<E>)] = []
        for first in stride(from: 0, to: c.heads, by: headsPerPass) {
            let n = min(headsPerPass, c.heads - first)
            let qSlice = Array(q[(first * c.queryLength * c.headDim)..<((first + n) * c.queryLength * c.headDim)])
            let kSlice = Array(k[(first * c.keyLength * c.headDim)..<((first + n) * c.keyLength * c.headDim)])
            let vSlice = Array(v[(first * c.keyLength * c.dv)..<((first + n) * c.keyLength * c.dv)])
            groups.append((try context.tensor(qSlice, shape: [n, c.queryLength, c.headDim]), try context.tensor(kSlice, shape: [n, c.keyLength, c.headDim]),
                           try context.tensor(vSlice, shape: [n, c.keyLength, c.dv]), try context.empty(E.self, shape: [n, c.queryLength, c.dv])))
        }
        let scores = try context.empty(E.self, shape: [headsPerPass, c.queryLength, c.keyLength])
        let usedPeak = context.memoryStatistics.usedBytes - before
        let time = try timeVulkan(context) { batch in
            for group in groups {
                try batch.gemm(group.q, group.k, into: scores, transposeB: true)
                try batch.softmaxRows(scores, scale: scale, causal: c.causal)
                try batch.gemm(scores, group.v, into: group.o)
            }
        }
        return (time, usedPeak)
    }

    // MARK: Decode

    private func decode<E: FloatingPointElement>(_ c: Case, _ type: E.Type, vulkan: ComputeContext, cpu: ComputeContext) throws -> BenchRow {
        let elementBytes = MemoryLayout<E>.stride
        let kCount = c.kvHeads * c.keyLength * c.headDim, vCount = c.kvHeads * c.keyLength * c.dv
        let q = inputs(c.heads * c.headDim, seed: 4, E.self), k = inputs(kCount, seed: 5, E.self), v = inputs(vCount, seed: 6, E.self)
        let qt = try vulkan.tensor(q, shape: [1, c.heads, 1, c.headDim])
        let kt = try vulkan.tensor(k, shape: [1, c.kvHeads, c.keyLength, c.headDim])
        let vt = try vulkan.tensor(v, shape: [1, c.kvHeads, c.keyLength, c.dv])
        let out = try vulkan.empty(E.self, shape: [1, c.heads, 1, c.dv])
        let mask = c.mask
        let fused = try timeVulkan(vulkan) { try $0.attention(q: qt, k: kt, v: vt, into: out, mask: mask, softcap: c.softcap) }
        let unsplit = try timeVulkan(vulkan) { try $0.attention(q: qt, k: kt, v: vt, into: out, mask: mask, softcap: c.softcap, split: .none) }
        // Reading K and V once: a device copy of both (reads them once, and also writes them once).
        let kCopy = try vulkan.empty(E.self, shape: kt.shape), vCopy = try vulkan.empty(E.self, shape: vt.shape)
        let copyTime = try timeCopy(vulkan, [(kt, kCopy), (vt, vCopy)])
        let bytes = Double((kCount + vCount) * elementBytes)
        // On the CPU backend the fused column already is the CPU path.
        let cpuSeconds = vulkan.isVulkan ? try cpuTime(c, q: q, k: k, v: v, shapes: [qt.shape, kt.shape, vt.shape, out.shape], mask: mask, cpu: cpu) : .nan
        // The CPU path's bound: K and V (exactly the bytes decode must read) read once by the same number
        // of threads, each its share of both, with the widest vectors the C-kernel path has.
        let read = vulkan.isVulkan ? Double.nan : readSeconds(k, v)
        return BenchRow(["case": .text(c.label), "fused ms": .number(fused * 1e3, digits: 2), "GB/s K+V": .number(bytes / fused / 1e9, digits: 1),
                         "K+V MB": .number(bytes / 1e6, digits: 1), "copy K+V ms": .number(copyTime * 1e3, digits: 2),
                         "x copy": .number(fused / copyTime, digits: 2), "read K+V ms": .number(read * 1e3, digits: 2),
                         "x read": .number(fused / read, digits: 2), "unsplit ms": .number(unsplit * 1e3, digits: 2),
                         "CPU ms": .number(cpuSeconds * 1e3, digits: 1), "x CPU": .number(cpuSeconds / fused, digits: 2)])
    }

    // MARK: Timing helpers

    /// The CPU path on the same data (skipped, NaN, above --cpu-limit GFLOP).
    /// `shapes`: Q, K, V and the output.
    private func cpuTime<E: FloatingPointElement>(_ c: Case, q: [E], k: [E], v: [E], shapes: [[Int]], mask: AttentionMask,
                                                  cpu: ComputeContext) throws -> Double {
        guard c.flops / 1e9 <= cpuLimit else { return .nan }
        let cq = try cpu.tensor(q, shape: shapes[0]), ck = try cpu.tensor(k, shape: shapes[1]), cv = try cpu.tensor(v, shape: shapes[2])
        let out = try cpu.empty(E.self, shape: shapes[3])
        return try medianSeconds(cpu, warmup: 0, repeats: min(options.repeats, 2)) {
            try $0.attention(q: cq, k: ck, v: cv, into: out, mask: mask, softcap: c.softcap)
        }
    }

    /// Median seconds to read `k` and `v` once on the CPU backend's thread count (`VKK_CPU_THREADS`, else
    /// the online cores), each thread summing its contiguous share of both (vkk_read_sum).
    private func readSeconds<E: FloatingPointElement>(_ k: [E], _ v: [E]) -> Double {
        let threads = ProcessInfoThreads.count
        // Counts in floats of each (V's head dim may differ from K's: MLA).
        let kFloats = k.count * MemoryLayout<E>.stride / 4, vFloats = v.count * MemoryLayout<E>.stride / 4
        return k.withUnsafeBytes { kBytes in
            v.withUnsafeBytes { vBytes in
                let kp = UnsafeSendablePointer(kBytes.baseAddress!.assumingMemoryBound(to: Float.self))
                let vp = UnsafeSendablePointer(vBytes.baseAddress!.assumingMemoryBound(to: Float.self))
                var sink: Float = 0
                let seconds = medianHostSeconds(warmup: options.warmup, repeats: options.repeats) {
                    let sums = UnsafeMutableBufferPointer<Float>.allocate(capacity: threads)
                    defer { sums.deallocate() }
                    let out = UnsafeSendablePointer(UnsafePointer(sums.baseAddress!))
                    DispatchQueue.concurrentPerform(iterations: threads) { t in
                        let kLower = kFloats * t / threads, kUpper = kFloats * (t + 1) / threads
                        let vLower = vFloats * t / threads, vUpper = vFloats * (t + 1) / threads
                        UnsafeMutablePointer(mutating: out.pointer)[t] = vkk_read_sum(kp.pointer + kLower, Int64(kUpper - kLower))
                            + vkk_read_sum(vp.pointer + vLower, Int64(vUpper - vLower))
                    }
                    sink += sums.reduce(0, +)
                }
                if sink.isNaN { print("") }  // keeps the sums live
                return seconds
            }
        }
    }

    private func timeVulkan(_ context: ComputeContext, _ body: (CommandBatch) throws -> Void) throws -> Double {
        try medianSeconds(context, warmup: options.warmup, repeats: options.repeats, body)
    }

    private func timeCopy<E: FloatingPointElement>(_ context: ComputeContext, _ pairs: [(Tensor<E>, Tensor<E>)]) throws -> Double {
        try timeVulkan(context) { batch in
            for (source, destination) in pairs { try batch.appendToCache(source, cache: destination, at: 0) }
        }
    }

    private func inputs<E: FloatingPointElement>(_ count: Int, seed: UInt64, _ type: E.Type) -> [E] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return E(Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000)
        }
    }

    private func mb(_ bytes: Int) -> String { formatted(Double(bytes) / 1e6, digits: 1) }
}

/// A pointer handed to the read-bound threads (each writes only its own slot; the inputs are read-only).
private struct UnsafeSendablePointer: @unchecked Sendable {
    let pointer: UnsafePointer<Float>
    init(_ pointer: UnsafePointer<Float>) { self.pointer = pointer }
}

/// The CPU backend's thread count, read the way the library reads it (`VKK_CPU_THREADS`, else the online cores).
private enum ProcessInfoThreads {
    static let count: Int = {
        if let value = getenv("VKK_CPU_THREADS").flatMap({ Int(String(cString: $0)) }), value > 0 { return value }
        return max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }()
}
