import ArgumentParser
import Glibc

@main
struct VKK: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vkk",
        abstract: "VulkanKernels: GPU compute kernels on any Vulkan device, with a CPU path.",
        subcommands: [Info.self, Render.self, Train.self, Eval.self, Bench.self, SelfCheck.self])

    /// ArgumentParser's main, with every failure as one readable line and a non-zero status: Foundation
    /// errors through ``readableError(_:)``, and option errors without the usage block ArgumentParser would
    /// append (`--help` and `--version` still print in full).
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let error = readableError(error)
            let code = exitCode(for: error)
            guard code != .success else { exit(withError: error) }
            let line = message(for: error).split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? "\(error)"
            _ = "Error: \(line)\n".withCString { write(2, $0, strlen($0)) }
            Glibc.exit(code.rawValue)
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
