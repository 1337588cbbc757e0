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

    @Flag(help: "Measure the fp32 training network on the CPU path instead (HashGridNetwork: forward keeping activations, and forward + backward with every parameter's gradient; the C kernels' path is printed, VKK_CPU_PATH forces one).")
    var training = false

    func validate() throws {
        guard samples.allSatisfy({ $0 > 0 }) else { throw ValidationError("--samples must be positive") }
    }

    func run() throws {
        if training { return try runTraining() }
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

    /// The training network (fp32, CPU path): forward over `count` samples keeping the activations, and
    /// forward + backward (random dL/dRGB and dL/dσ on every sample, the grid gradient cleared between
    /// repeats as the optimizer does). Samples/s counts every sample through both passes.
    func runTraining() throws {
        let counts = samples.isEmpty ? (options.quick ? [1 << 16] : [1 << 16, 1 << 18]) : samples
        // The MLPs and the encoding run on the C kernels' path (VKK_CPU_PATH=scalar|avx2|avx512 forces one).
        let table = BenchTable(title: "hashgrid training network on the CPU path (C kernels: \(CPUKernelPath.current)), \(todayUTC())")
        for count in counts {
            let what = "hashgrid --training --samples \(count)"
            // Activations: about 300 floats per sample (base config), plus inputs and gradients.
            try RunLimits.checkMemory(RunLimits.floatBytes([[count, 320]], what), for: what, context: nil)
        }
        let configuration = HashGridConfiguration()
        let network = try HashGridNetwork.initialized(configuration: configuration, seed: 7)
        let activations = HashGridActivations(), scratch = HashGridBackwardScratch()
        var gradients = [Float](repeating: 0, count: configuration.parameterCount)
        let gridOffset = configuration.gridParameterOffset
        for count in counts {
            let input = [Float].benchSamples(count: count)
            var positions = [Float](repeating: 0, count: 3 * count), directions = positions
            for i in 0..<count {
                for a in 0..<3 { positions[3 * i + a] = input[8 * i + a]; directions[3 * i + a] = input[8 * i + 4 + a] }
            }
            let rgbGradient = [Float].benchData(count: 3 * count, seed: 5), sigmaGradient = [Float].benchData(count: count, seed: 6)
            let forward = medianHostSeconds(warmup: options.warmup, repeats: options.repeats) {
                activations.setInputs(positions: positions, directions: directions, configuration: configuration)
                network.forward(activations)
            }
            var scatter: [Double] = []
            let both = medianHostSeconds(warmup: options.warmup, repeats: options.repeats) {
                activations.setInputs(positions: positions, directions: directions, configuration: configuration)
                network.forward(activations)
                gradients.withUnsafeMutableBufferPointer { g in
                    (g.baseAddress! + gridOffset).initialize(repeating: 0, count: g.count - gridOffset)
                    scatter.append(network.backward(activations, rgbGradient: rgbGradient, sigmaGradient: sigmaGradient,
                                                    gradients: g.baseAddress!, scratch: scratch))
                }
            }
            let flops = Double(2 * (configuration.densityParameterCount + configuration.colorParameterCount)) * Double(count)
            table.add(BenchRow([
                "network": .text("base 8x4 T2^19"), "samples": .integer(count),
                "fwd ms": .number(forward * 1e3, digits: 1), "fwd Msamples/s": .number(Double(count) / forward * 1e-6, digits: 3),
                "fwd MLP GFLOP/s": .number(flops / forward * 1e-9, digits: 1),
                "fwd+bwd ms": .number(both * 1e3, digits: 1), "fwd+bwd Msamples/s": .number(Double(count) / both * 1e-6, digits: 3),
                "scatter ms": .number(scatter.sorted()[scatter.count / 2] * 1e3, digits: 1),
            ]))
        }
        if let path = options.json {
            try table.writeJSON(to: path, device: "CPU path", extra: ["date": todayUTC(), "cpuKernelPath": CPUKernelPath.current])
        }
    }

    /// Random fp16 parameters of trained-network magnitude (the cost does not depend on the values).
    func benchField(_ c: HashGridConfiguration) throws -> HashGridField {
        let mlp = [Float].benchData(count: c.gridParameterOffset, seed: 3).map { Float16($0 * 0.2) }
        let grid = [Float].benchData(count: c.gridParameterCount, seed: 4).map { Float16($0 * 1e-2) }
        return try HashGridField(configuration: c, parameters: mlp + grid)
    }
}
