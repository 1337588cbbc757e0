import ArgumentParser
import VulkanKernels

struct BenchHashGrid: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hashgrid",
        abstract: "instant-ngp network evaluation (hash encoding + density and colour MLPs): samples/s on the backend and on the CPU path in the same run.")

    @OptionGroup var options: BenchOptions

    @Option(help: "Samples per evaluation; repeatable (default 2^16, 2^18, 2^20; quick: 2^16).")
    var samples: [Int] = []

    @Flag(help: "Skip the multi-threaded CPU evaluator comparison.")
    var noCPU = false

    func validate() throws {
        guard samples.allSatisfy({ $0 > 0 }) else { throw ValidationError("--samples must be positive") }
    }

    func run() throws {
        let context = try options.makeContext()
        let counts = samples.isEmpty ? (options.quick ? [1 << 16] : [1 << 16, 1 << 18, 1 << 20]) : samples
        for count in counts {
            // Samples (8 floats) and outputs (4) on the host and the device, plus the CPU evaluator's copy.
            let what = "hashgrid --samples \(count)"
            try RunLimits.checkMemory(RunLimits.floatBytes([[3, count, 12]], what), for: what, context: context)
        }
        let table = BenchTable(title: "hashgrid evaluation on \(context.backendDescription), \(todayUTC())")
        let cases: [(String, HashGridConfiguration)] = [
            ("base 8x4 T2^19", HashGridConfiguration()),
            ("paper 16x2 T2^19", HashGridConfiguration(levels: 16, featuresPerLevel: 2)),
        ]
        for (label, configuration) in cases {
            let field = try benchField(configuration)
            for count in counts {
                let input = [Float].benchSamples(count: count)
                let sampleTensor = try context.tensor(input, shape: [count, 8])
                let valid = try context.tensor([UInt32(count)], shape: [1])
                let output = try context.zeros(Float.self, shape: [count, 4])
                let seconds = try medianSeconds(context, warmup: options.warmup, repeats: options.repeats) {
                    try field.encodeEvaluate(into: $0, samples: sampleTensor, sampleCount: valid, capacity: count, output: output)
                }
                var cpuSeconds = Double.nan
                if !noCPU && context.isVulkan {
                    cpuSeconds = medianHostSeconds(warmup: 1, repeats: max(1, options.repeats / 2)) { _ = field.evaluate(samples: input) }
                }
                let flops = Double(2 * (configuration.densityParameterCount + configuration.colorParameterCount)) * Double(count)
                table.add(BenchRow([
                    "network": .text(label), "samples": .integer(count), "ms": .number(seconds * 1e3, digits: 3),
                    "Msamples/s": .number(Double(count) / seconds * 1e-6, digits: 2),
                    "MLP GFLOP/s": .number(flops / seconds * 1e-9, digits: 1),
                    "CPU Msamples/s": .number(Double(count) / cpuSeconds * 1e-6, digits: 2),
                    "vs CPU": .number(cpuSeconds / seconds, digits: 2),
                ]))
            }
        }
        if let path = options.json { try table.writeJSON(to: path, device: context.backendDescription, extra: ["date": todayUTC()]) }
    }

    /// Random fp16 parameters of trained-network magnitude (the cost does not depend on the values).
    func benchField(_ c: HashGridConfiguration) throws -> HashGridField {
        let mlp = [Float].benchData(count: c.gridParameterOffset, seed: 3).map { Float16($0 * 0.2) }
        let grid = [Float].benchData(count: c.gridParameterCount, seed: 4).map { Float16($0 * 1e-2) }
        return try HashGridField(configuration: c, parameters: mlp + grid)
    }
}
