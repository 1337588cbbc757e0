import ArgumentParser
import VulkanKernels

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks: median GPU time over repeats after warm-up, throughput, and ratios measured in the same run.",
        subcommands: [BenchGEMM.self, BenchSparse.self, BenchAttention.self, BenchNeRF.self, BenchHashGrid.self, BenchTrain.self, BenchSoak.self])
}

/// Options every benchmark takes.
struct BenchOptions: ParsableArguments {
    @OptionGroup var backend: BackendOptions

    @Option(help: "Timed repeats per case (the median is reported).")
    var repeats = 5

    @Option(help: "Untimed warm-up runs per case.")
    var warmup = 1

    @Flag(help: "A shorter suite (smaller sizes) for a quick look.")
    var quick = false

    @Option(help: "Also write the rows as JSON to this file.")
    var json: String?

    func makeContext() throws -> ComputeContext {
        let backend: ComputeContext.Backend = switch self.backend.backend {
        case .auto: self.backend.device.map { .vulkan(deviceIndex: $0) } ?? .auto
        case .vulkan: .vulkan(deviceIndex: self.backend.device)
        case .cpu: .cpu
        }
        return try ComputeContext(backend: backend, options: .init(validation: self.backend.validation))
    }

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative") }
    }
}
