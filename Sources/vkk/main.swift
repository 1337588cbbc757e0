import ArgumentParser
import VulkanKernels

// `vkk bench attention ...` until the root command with subcommands lands on main.
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.starts(with: ["bench", "attention"]) {
    BenchAttention.main(Array(arguments.dropFirst(2)))
} else {
    let context = try ComputeContext()
    print(context.backendDescription)
}
