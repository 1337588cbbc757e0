import ArgumentParser

@main
struct VKK: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vkk",
        abstract: "VulkanKernels: GPU compute kernels on any Vulkan device, with a CPU path.",
        subcommands: [Info.self, Render.self, Train.self, Bench.self, SelfCheck.self])

    /// ArgumentParser's main, with Foundation errors turned into one readable line (``readableError(_:)``).
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: readableError(error))
        }
    }
}

/// Which backend a command runs on.
struct BackendOptions: ParsableArguments {
    @Option(help: "auto (best Vulkan device, else CPU), vulkan or cpu.")
    var backend: BackendChoice = .auto

    @Option(help: "Vulkan device index (as `vkk info` lists them); overrides VKK_DEVICE.")
    var device: Int?

    @Flag(help: "Enable the Khronos validation layer (slow; for debugging).")
    var validation = false
}

enum BackendChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, vulkan, cpu
}
