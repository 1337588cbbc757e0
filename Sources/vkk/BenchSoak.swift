import ArgumentParser
import Foundation
import VulkanKernels

/// `vkk bench soak`: many small mixed dispatches (GEMM, SpMM, fused attention, hash-grid field evaluation)
/// in batches on one context, with a fresh output tensor per batch, resident memory (VmRSS) and the
/// context's device memory sampled along the way. Checks that memory stays flat (a leak of a few hundred
/// bytes per dispatch shows up as tens of MiB over 10⁵ dispatches) and that results stay right.
struct BenchSoak: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak",
        abstract: "Soak test: mixed GEMM/SpMM/attention/field-evaluation dispatches with resident and device memory sampled; fails unless memory stays flat.")

    @OptionGroup var backend: BackendOptions
    @Option(help: "Dispatches in total.") var dispatches = 100_000
    @Option(help: "Dispatches recorded per batch (one submit each).") var perBatch = 64
    @Option(help: "Memory samples over the run.") var samples = 20
    @Option(help: "Allowed growth of resident memory after the first sample, in MiB (allocator and driver caches settle during the first tenth).")
    var toleranceMib = 16
    @Option(help: "Also write the samples as JSON to this file.") var json: String?

    func validate() throws {
        guard dispatches >= 4 else { throw ValidationError("--dispatches must be at least 4 (one of each op)") }
        guard (4...4096).contains(perBatch) else { throw ValidationError("--per-batch takes 4…4096") }
        guard samples >= 2 else { throw ValidationError("--samples must be at least 2") }
        guard toleranceMib >= 0 else { throw ValidationError("--tolerance-mib must not be negative") }
    }

    func run() throws {
        let context = try backend.makeContext()
        let work = try SoakWork(context: context)
        try work.check()
        let batches = (dispatches + perBatch - 1) / perBatch
        let sampleEvery = max(1, batches / samples)
        // The first sample is taken after a tenth of the run: pools, pipeline caches and the driver's
        // command-buffer memory grow to their working size during the first batches.
        let settle = max(1, batches / 10)
        let table = BenchTable(title: "soak: \(batches * perBatch) mixed dispatches in batches of \(perBatch) on \(context.backendDescription), \(todayUTC())")
        let start = Date()
        var first: (resident: Int, device: Int)?
        var peak = (resident: 0, device: 0)
        for index in 0..<batches {
            let batch = try context.makeBatch()
            let output = try context.zeros(Float.self, shape: work.gemmShape)  // a fresh tensor per batch: pool reuse
            for slot in 0..<perBatch { try work.record(slot % 4, into: batch, gemmOutput: output) }
            try batch.commit()
            let done = index + 1
            if done == settle || (done > settle && (done - settle) % sampleEvery == 0) || done == batches {
                let resident = residentBytes() ?? 0, device = context.memoryStatistics.reservedBytes
                if first == nil { first = (resident, device) }
                peak = (max(peak.resident, resident), max(peak.device, device))
                let base = first!
                table.add(BenchRow([
                    "dispatches": .integer(done * perBatch), "seconds": .number(Date().timeIntervalSince(start), digits: 1),
                    "resident MiB": .number(Double(resident) / 1048576, digits: 1),
                    "Δ resident MiB": .number(Double(resident - base.resident) / 1048576, digits: 2),
                    "device reserved MiB": .number(Double(device) / 1048576, digits: 1),
                    "device used MiB": .number(Double(context.memoryStatistics.usedBytes) / 1048576, digits: 2),
                ]))
            }
        }
        try work.check()
        let base = first!
        let residentGrowth = peak.resident - base.resident, deviceGrowth = peak.device - base.device
        print("\(batches * perBatch) dispatches in \(formatted(Date().timeIntervalSince(start), digits: 1)) s; results checked before and after; "
              + "resident memory grew by \(formatted(Double(residentGrowth) / 1048576, digits: 2)) MiB after the first sample "
              + "(bound \(toleranceMib) MiB), device memory reserved by \(formatted(Double(deviceGrowth) / 1048576, digits: 2)) MiB (bound 0)")
        if let json { try table.writeJSON(to: json, device: context.backendDescription, extra: ["date": todayUTC()]) }
        guard residentGrowth <= toleranceMib << 20, deviceGrowth <= 0 else {
            throw CommandError("memory is not flat: resident +\(residentGrowth >> 10) KiB (bound \(toleranceMib) MiB), device reserved +\(deviceGrowth >> 10) KiB")
        }
    }
}

/// The four ops of the soak, small enough that dispatch overhead dominates (what a leak per dispatch
/// would show), each checked against the CPU backend.
struct SoakWork {
    let context: ComputeContext
    let gemmShape = [64, 64]
    let a: Tensor<Float>, b: Tensor<Float>
    let sparse: UploadedSparseMatrix<Float>, sparseB: Tensor<Float>, sparseC: Tensor<Float>
    let q: Tensor<Float>, k: Tensor<Float>, v: Tensor<Float>, attentionOutput: Tensor<Float>
    let field: HashGridField
    let fieldSamples: Tensor<Float>, fieldCount: Tensor<UInt32>, fieldOutput: Tensor<Float>
    static let fieldSampleCount = 1024
    /// Inputs of the CPU references.
    let inputs: (a: [Float], b: [Float], weight: CSRMatrix<Float>, sparseB: [Float], q: [Float], k: [Float], v: [Float], samples: [Float])

    init(context: ComputeContext) throws {
        self.context = context
        let (aValues, bValues) = ([Float].benchData(count: 64 * 64, seed: 1), [Float].benchData(count: 64 * 64, seed: 2))
        a = try context.tensor(aValues, shape: [64, 64])
        b = try context.tensor(bValues, shape: [64, 64])
        let weight = try SparsePruning.magnitude([Float].benchData(count: 256 * 256, seed: 3), rows: 256, columns: 256, sparsity: 0.9)
        let sparseBValues = [Float].benchData(count: 256 * 32, seed: 4)
        sparse = try context.upload(weight)
        sparseB = try context.tensor(sparseBValues, shape: [256, 32])
        sparseC = try context.zeros(Float.self, shape: [256, 32])
        let (qValues, kValues, vValues) = ([Float].benchData(count: 2 * 64 * 32, seed: 5), [Float].benchData(count: 2 * 64 * 32, seed: 6),
                                           [Float].benchData(count: 2 * 64 * 32, seed: 7))
        q = try context.tensor(qValues, shape: [1, 2, 64, 32])
        k = try context.tensor(kValues, shape: [1, 2, 64, 32])
        v = try context.tensor(vValues, shape: [1, 2, 64, 32])
        attentionOutput = try context.zeros(Float.self, shape: [1, 2, 64, 32])
        let configuration = HashGridConfiguration(levels: 4, featuresPerLevel: 2, log2TableSize: 12, baseResolution: 4, perLevelScale: 2,
                                                  densityWidth: 16, colorWidth: 16, colorHiddenLayers: 1)
        let parameters = [Float].benchData(count: configuration.parameterCount, seed: 8).map { Float16($0 * 0.1) }
        field = try HashGridField(configuration: configuration, parameters: parameters)
        let sampleValues = [Float].benchSamples(count: Self.fieldSampleCount)
        fieldSamples = try context.tensor(sampleValues, shape: [Self.fieldSampleCount, 8])
        fieldCount = try context.tensor([UInt32(Self.fieldSampleCount)], shape: [1])
        fieldOutput = try context.zeros(Float.self, shape: [Self.fieldSampleCount, 4])
        inputs = (aValues, bValues, weight, sparseBValues, qValues, kValues, vValues, sampleValues)
    }

    func record(_ op: Int, into batch: CommandBatch, gemmOutput: Tensor<Float>) throws {
        switch op {
        case 0: try batch.gemm(a, b, into: gemmOutput)
        case 1: try batch.spmm(sparse, sparseB, into: sparseC)
        case 2: try batch.attention(q: q, k: k, v: v, into: attentionOutput)
        default: try field.encodeEvaluate(into: batch, samples: fieldSamples, sampleCount: fieldCount, capacity: Self.fieldSampleCount, output: fieldOutput)
        }
    }

    /// Runs each op once more and compares it with the CPU backend: fp32 results of these sizes agree to
    /// 1e-3 relative to the largest magnitude (K ≤ 256 terms, fp32 accumulation on both sides; the field's
    /// fp16 parameters are the same on both).
    func check() throws {
        let cpu = try ComputeContext(backend: .cpu)
        let gemm = try context.zeros(Float.self, shape: gemmShape)
        try context.batch { batch in
            for op in 0..<4 { try record(op, into: batch, gemmOutput: gemm) }
        }
        let reference = try SoakWork(context: cpu)
        let referenceGemm = try cpu.zeros(Float.self, shape: gemmShape)
        try cpu.batch { batch in
            for op in 0..<4 { try reference.record(op, into: batch, gemmOutput: referenceGemm) }
        }
        for (name, got, expected) in [("gemm", try gemm.toArray(), try referenceGemm.toArray()),
                                      ("spmm", try sparseC.toArray(), try reference.sparseC.toArray()),
                                      ("attention", try attentionOutput.toArray(), try reference.attentionOutput.toArray()),
                                      ("field evaluation", try fieldOutput.toArray(), try reference.fieldOutput.toArray())] {
            let scale = expected.map(abs).max() ?? 1
            let error = zip(got, expected).map { abs($0 - $1) }.max() ?? 0
            guard got.count == expected.count, error <= 1e-3 * max(scale, 1e-6) else {
                throw CommandError("soak: \(name) on \(context.backendDescription) differs from the CPU backend by \(error) (scale \(scale))")
            }
        }
    }
}

/// This process's resident memory (VmRSS), or nil where /proc is not available.
func residentBytes() -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
    }
    return nil
}
