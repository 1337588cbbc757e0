import ArgumentParser
import VulkanKernels

/// The root command: `vkk info`, `vkk render`, `vkk bench …`.
struct VKK: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vkk", abstract: "VulkanKernels: GPU compute kernels on any Vulkan device, with a CPU fallback.",
        subcommands: [Info.self, Render.self, Bench.self], defaultSubcommand: Info.self)
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the backend in use.")
    func run() throws {
        let context = try ComputeContext()
        print(context.backendDescription)
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Benchmarks.", subcommands: [BenchNeRF.self])
}

VKK.main()
