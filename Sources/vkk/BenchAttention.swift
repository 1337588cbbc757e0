import ArgumentParser
import Foundation
import VulkanKernels

/// `vkk bench attention`: the fused attention kernel against the naive three-pass attention
/// (GEMM → softmax → GEMM with the scores materialised) on the same backend, and against the CPU path.
struct BenchAttention: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "attention",
                                                    abstract: "Fused attention: prefill and decode sweeps against the naive three-pass baseline and the CPU path.")

    @Flag(help: "A few small cases only (seconds, not minutes).") var quick = false
    @Flag(help: "fp16 storage (fp32 accumulation) instead of fp32.") var fp16 = false
    @Option(help: "Timed runs per case after one warm-up; the fastest is reported.") var iterations = 3
    @Option(help: "Skip the CPU path for cases above this many GFLOP (it is much slower).") var cpuLimit = 8.0
    @Option(help: "Run only prefill, only decode, or both.") var sweep: Sweep = .both

    enum Sweep: String, ExpressibleByArgument { case prefill, decode, both }

    struct Case {
        var heads: Int, kvHeads: Int, queryLength: Int, keyLength: Int, headDim: Int, causal: Bool
        var batch = 1
        var label: String {
            "L=\(queryLength == keyLength ? "\(queryLength)" : "\(queryLength)x\(keyLength)") d=\(headDim) h=\(heads)"
                + (kvHeads != heads ? "/kv\(kvHeads)" : "") + (causal ? " causal" : "")
        }
        /// Useful flops: 4·d per attended pair; causal (bottom-right) counts only pairs on or below the diagonal.
        var flops: Double {
            var pairs = Double(queryLength) * Double(keyLength)
            if causal {
                let offset = keyLength - queryLength
                pairs = (0..<queryLength).reduce(0.0) { $0 + Double(max(0, min(keyLength, $1 + offset + 1))) }
            }
            return 4 * Double(headDim) * pairs * Double(batch * heads)
        }
    }

    func run() throws {
        let vulkan = try ComputeContext(backend: .vulkan())
        let cpu = try ComputeContext(backend: .cpu)
        print("vkk bench attention — \(vulkan.backendDescription); CPU path: \(cpu.backendDescription); \(fp16 ? "fp16" : "fp32") storage")
        if fp16 { try runSweeps(Float16.self, vulkan: vulkan, cpu: cpu) } else { try runSweeps(Float.self, vulkan: vulkan, cpu: cpu) }
    }

    private func runSweeps<E: FloatingPointElement>(_ type: E.Type, vulkan: ComputeContext, cpu: ComputeContext) throws {
        if sweep != .decode {
            let cases: [Case] = quick
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
            print("\nPrefill (batch 1)")
            print(row(["case", "fused ms", "GFLOP/s", "MB moved", "peak MB", "naive ms", "naive peak MB", "× naive", "CPU ms", "× CPU"]))
            for c in cases { try prefill(c, E.self, vulkan: vulkan, cpu: cpu) }
        }
        if sweep != .prefill {
            let lengths = quick ? [1024, 8192] : [1024, 4096, 16384, 32768, 131072]
            var cases = lengths.map { Case(heads: 32, kvHeads: 8, queryLength: 1, keyLength: $0, headDim: 128, causal: true) }
            if !quick { cases.append(Case(heads: 32, kvHeads: 32, queryLength: 1, keyLength: 32768, headDim: 128, causal: true)) }
            print("\nDecode (1 query row, batch 1, KV cache of L keys)")
            print(row(["case", "fused ms", "GB/s (K+V)", "K+V copy ms", "× copy", "unsplit ms", "CPU ms", "× CPU"]))
            for c in cases { try decode(c, E.self, vulkan: vulkan, cpu: cpu) }
        }
    }

    // MARK: Prefill

    private func prefill<E: FloatingPointElement>(_ c: Case, _ type: E.Type, vulkan: ComputeContext, cpu: ComputeContext) throws {
        let elementBytes = MemoryLayout<E>.stride
        let qCount = c.batch * c.heads * c.queryLength * c.headDim, kCount = c.batch * c.kvHeads * c.keyLength * c.headDim
        let (q, k, v) = (inputs(qCount, seed: 1, E.self), inputs(kCount, seed: 2, E.self), inputs(kCount, seed: 3, E.self))
        let mask: AttentionMask = c.causal ? .causal() : .none
        let before = vulkan.memoryStatistics.usedBytes
        let qt = try vulkan.tensor(q, shape: [c.batch, c.heads, c.queryLength, c.headDim])
        let kt = try vulkan.tensor(k, shape: [c.batch, c.kvHeads, c.keyLength, c.headDim])
        let vt = try vulkan.tensor(v, shape: [c.batch, c.kvHeads, c.keyLength, c.headDim])
        let out = try vulkan.empty(E.self, shape: qt.shape)
        var peak = 0
        let fused = try timeVulkan(vulkan) { batch in
            try batch.attention(q: qt, k: kt, v: vt, into: out, mask: mask)
            peak = max(peak, vulkan.memoryStatistics.usedBytes - before)
        }
        let moved = Double((2 * qCount + 2 * kCount) * elementBytes)

        // The naive path needs every (query, key) score of the heads it processes at once; it takes
        // as many heads per pass as fit one storage binding, and runs only where that fits memory.
        var naive: (ms: String, peak: String, ratio: String) = ("n/a", "n/a", "n/a")
        let scoreBytesPerHead = c.queryLength * c.keyLength * elementBytes
        let maxRange = vulkan.deviceInfo!.maxStorageBufferRange
        if c.kvHeads == c.heads && scoreBytesPerHead <= maxRange && c.queryLength * c.keyLength * c.heads * elementBytes <= 2 << 30 {
            let seconds = try naiveThreePass(c, q: q, k: k, v: v, on: vulkan)
            naive = (ms(seconds.time), mb(seconds.peak), String(format: "%.2f", seconds.time / fused))
        } else {
            let need = Double(c.heads * c.queryLength * c.keyLength * elementBytes) / 1e9
            naive = ("n/a", String(format: "needs %.1f GB", need), "n/a")
        }

        var cpuColumns = ("skipped", "n/a")
        if c.flops / 1e9 <= cpuLimit {
            let cq = try cpu.tensor(q, shape: qt.shape), ck = try cpu.tensor(k, shape: kt.shape), cv = try cpu.tensor(v, shape: vt.shape)
            let seconds = try timeHost { _ = try cpu.attention(q: cq, k: ck, v: cv, mask: mask) }
            cpuColumns = (ms(seconds), String(format: "%.2f", seconds / fused))
        }
        print(row([c.label, ms(fused), String(format: "%.1f", c.flops / fused / 1e9), mb(Int(moved)), mb(peak),
                   naive.ms, naive.peak, naive.ratio, cpuColumns.0, cpuColumns.1]))
    }

    /// GEMM (S = Q·Kᵀ) → softmaxRows (scale, causal) → GEMM (O = P·V) per group of heads, with the
    /// scores of the group materialised. Inputs are given per group (the layout this path wants).
    private func naiveThreePass<E: FloatingPointElement>(_ c: Case, q: [E], k: [E], v: [E], on context: ComputeContext,
                                                          ) throws -> (time: Double, peak: Int) {
        let elementBytes = MemoryLayout<E>.stride
        // The largest divisor of the head count whose scores fit one storage binding (equal passes).
        let fitting = max(1, context.deviceInfo!.maxStorageBufferRange / (c.queryLength * c.keyLength * elementBytes))
        let headsPerPass = (1...c.heads).last { c.heads % $0 == 0 && $0 <= fitting }!
        let before = context.memoryStatistics.usedBytes
        let scale = 1 / Float(c.headDim).squareRoot()
        var groups: [(q: Tensor<E>, k: Tensor<E>, v: Tensor<E>, o: Tensor<E>)] = []
        for first in stride(from: 0, to: c.heads, by: headsPerPass) {
            let n = min(headsPerPass, c.heads - first)
            let qSlice = Array(q[(first * c.queryLength * c.headDim)..<((first + n) * c.queryLength * c.headDim)])
            let kSlice = Array(k[(first * c.keyLength * c.headDim)..<((first + n) * c.keyLength * c.headDim)])
            let vSlice = Array(v[(first * c.keyLength * c.headDim)..<((first + n) * c.keyLength * c.headDim)])
            groups.append((try context.tensor(qSlice, shape: [n, c.queryLength, c.headDim]), try context.tensor(kSlice, shape: [n, c.keyLength, c.headDim]),
                           try context.tensor(vSlice, shape: [n, c.keyLength, c.headDim]), try context.empty(E.self, shape: [n, c.queryLength, c.headDim])))
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

    private func decode<E: FloatingPointElement>(_ c: Case, _ type: E.Type, vulkan: ComputeContext, cpu: ComputeContext) throws {
        let elementBytes = MemoryLayout<E>.stride
        let kCount = c.kvHeads * c.keyLength * c.headDim
        let q = inputs(c.heads * c.headDim, seed: 4, E.self), k = inputs(kCount, seed: 5, E.self), v = inputs(kCount, seed: 6, E.self)
        let qt = try vulkan.tensor(q, shape: [1, c.heads, 1, c.headDim])
        let kt = try vulkan.tensor(k, shape: [1, c.kvHeads, c.keyLength, c.headDim])
        let vt = try vulkan.tensor(v, shape: kt.shape)
        let out = try vulkan.empty(E.self, shape: qt.shape)
        let mask = AttentionMask.causal()
        let fused = try timeVulkan(vulkan) { try $0.attention(q: qt, k: kt, v: vt, into: out, mask: mask) }
        let unsplit = try timeVulkan(vulkan) { try $0.attention(q: qt, k: kt, v: vt, into: out, mask: mask, split: .none) }
        // Reading K and V once: a device copy of both (reads them once, and also writes them once).
        let kCopy = try vulkan.empty(E.self, shape: kt.shape), vCopy = try vulkan.empty(E.self, shape: vt.shape)
        let copyTime = try timeCopy(vulkan, [(kt, kCopy), (vt, vCopy)])
        let bytes = Double(2 * kCount * elementBytes)
        var cpuColumns = ("skipped", "n/a")
        if c.flops / 1e9 <= cpuLimit {
            let cq = try cpu.tensor(q, shape: qt.shape), ck = try cpu.tensor(k, shape: kt.shape), cv = try cpu.tensor(v, shape: vt.shape)
            let seconds = try timeHost { _ = try cpu.attention(q: cq, k: ck, v: cv, mask: mask) }
            cpuColumns = (ms(seconds), String(format: "%.2f", seconds / fused))
        }
        print(row([c.label, ms(fused), String(format: "%.1f", bytes / fused / 1e9), ms(copyTime), String(format: "%.2f", fused / copyTime),
                   ms(unsplit), cpuColumns.0, cpuColumns.1]))
    }

    // MARK: Timing helpers

    private func timeVulkan(_ context: ComputeContext, _ body: (CommandBatch) throws -> Void) throws -> Double {
        var best = Double.infinity
        for iteration in 0...max(1, iterations) {
            let batch = try context.makeBatch()
            let start = try batch.timestamp()
            try body(batch)
            let end = try batch.timestamp()
            try batch.commit()
            if iteration > 0 { best = min(best, try batch.seconds(from: start, to: end)) }
        }
        return best
    }

    private func timeCopy<E: FloatingPointElement>(_ context: ComputeContext, _ pairs: [(Tensor<E>, Tensor<E>)]) throws -> Double {
        var best = Double.infinity
        for iteration in 0...max(1, iterations) {
            let batch = try context.makeBatch()
            let start = try batch.timestamp()
            for (source, destination) in pairs { try batch.appendToCache(source, cache: destination, at: 0) }
            let end = try batch.timestamp()
            try batch.commit()
            if iteration > 0 { best = min(best, try batch.seconds(from: start, to: end)) }
        }
        return best
    }

    private func timeHost(_ body: () throws -> Void) throws -> Double {
        var best = Double.infinity
        for iteration in 0...max(1, min(iterations, 2)) {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            if iteration > 0 { best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9) }
        }
        return best
    }

    private func inputs<E: FloatingPointElement>(_ count: Int, seed: UInt64, _ type: E.Type) -> [E] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return E(Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000)
        }
    }

    private func ms(_ seconds: Double) -> String { String(format: "%.2f", seconds * 1e3) }
    private func mb(_ bytes: Int) -> String { String(format: "%.1f", Double(bytes) / 1e6) }
    private func row(_ columns: [String]) -> String {
        columns.enumerated().map { $0.offset == 0 ? $0.element.padding(toLength: 26, withPad: " ", startingAt: 0)
                                                  : String(repeating: " ", count: max(0, 13 - $0.element.count)) + $0.element }.joined()
    }
}
