import ArgumentParser
import VulkanKernels

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List Vulkan devices with the limits that matter, and say which backend `.auto` picks.")

    func run() throws {
        let devices: [DeviceInfo]
        do {
            devices = try ComputeContext.availableDevices()
        } catch {
            print("Vulkan: \(error)")
            devices = []
        }
        for device in devices { describe(device) }
        let context = try ComputeContext(backend: .auto, options: .init(quiet: true))
        print("auto backend: \(context.backendDescription)" + (context.fallbackReason.map { " — \($0)" } ?? ""))
        print("CPU: \(CPUKernelPath.features); C kernels take the \(CPUKernelPath.current) path (VKK_CPU_PATH forces one)")
        print(BLASLibrary.shared.description)
    }

    private func describe(_ d: DeviceInfo) {
        func mib(_ bytes: Int) -> String { bytes >= 1 << 30 ? "\(bytes >> 30) GiB" : bytes >= 1 << 20 ? "\(bytes >> 20) MiB" : "\(bytes >> 10) KiB" }
        print("[\(d.index)] \(d.name) — \(d.kind.rawValue), Vulkan \(d.apiVersion)")
        print("    memory: \(mib(d.deviceLocalHeapBytes)) device-local, \(d.unifiedMemory ? "unified (no staging)" : "discrete (staging copies)")")
        print("    maxStorageBufferRange \(mib(d.maxStorageBufferRange)), maxTexelBufferElements \(d.maxTexelBufferElements), "
              + "maxMemoryAllocationSize \(mib(d.maxMemoryAllocationSize))")
        print("    shared memory \(mib(d.maxComputeSharedMemorySize)), workgroup ≤ \(d.maxComputeWorkGroupInvocations) invocations "
              + "\(d.maxComputeWorkGroupSize), groups ≤ \(d.maxComputeWorkGroupCount)")
        print("    subgroup \(d.subgroupSize) (\(d.minSubgroupSize)…\(d.maxSubgroupSize)\(d.supportsSubgroupSizeControl ? ", size control" : "")), "
              + "shuffle \(d.supportsSubgroupShuffle ? "yes" : "no"), arithmetic \(d.supportsSubgroupArithmetic ? "yes" : "no")")
        print("    fp16 arithmetic \(d.supportsFloat16Arithmetic ? "yes" : "no"), 16-bit storage \(d.supports16BitStorage ? "yes" : "no"), "
              + "8-bit storage \(d.supports8BitStorage ? "yes" : "no"), cooperative matrix \(d.supportsCooperativeMatrix ? "yes" : "no")")
        print("    push constants \(d.maxPushConstantsSize) B, timestamp period \(d.timestampPeriod) ns")
    }
}
