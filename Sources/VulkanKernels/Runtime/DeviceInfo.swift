/// What a Vulkan physical device is and the limits that decide how kernels are tiled on it.
public struct DeviceInfo: Sendable, Equatable {
    public enum Kind: String, Sendable, Comparable {
        case discreteGPU = "discrete GPU", integratedGPU = "integrated GPU", virtualGPU = "virtual GPU",
             cpu = "CPU", other = "other"

        /// Preference when `.auto` picks a device: lower is better.
        var rank: Int {
            switch self {
            case .discreteGPU: 0
            case .integratedGPU: 1
            case .virtualGPU: 2
            case .cpu: 3
            case .other: 4
            }
        }

        public static func < (lhs: Kind, rhs: Kind) -> Bool { lhs.rank < rhs.rank }
    }

    /// Position in the loader's enumeration (the number `VKK_DEVICE` takes).
    public var index: Int
    public var name: String
    public var kind: Kind
    public var apiVersion: String
    public var driverVersion: UInt32
    public var vendorID: UInt32

    public var maxStorageBufferRange: Int
    public var maxTexelBufferElements: Int
    public var maxMemoryAllocationSize: Int
    public var maxComputeSharedMemorySize: Int
    public var maxComputeWorkGroupInvocations: Int
    public var maxComputeWorkGroupSize: [Int]
    public var maxComputeWorkGroupCount: [Int]
    public var maxPushConstantsSize: Int
    public var minStorageBufferOffsetAlignment: Int
    public var minTexelBufferOffsetAlignment: Int
    public var subgroupSize: Int
    public var minSubgroupSize: Int
    public var maxSubgroupSize: Int
    /// Nanoseconds per timestamp tick; 0 when the compute queue has no timestamps.
    public var timestampPeriod: Double
    public var deviceLocalHeapBytes: Int
    /// Device-local memory is also host-visible (CPU drivers, most integrated GPUs): no staging copies.
    public var unifiedMemory: Bool

    public var supportsFloat16Arithmetic: Bool
    public var supports16BitStorage: Bool
    public var supports8BitStorage: Bool
    public var supportsSubgroupSizeControl: Bool
    public var supportsSubgroupShuffle: Bool
    public var supportsSubgroupArithmetic: Bool
    public var supportsCooperativeMatrix: Bool
    /// `shaderBufferFloat32AtomicAdd` of VK_EXT_shader_atomic_float: `atomicAdd` on fp32 storage-buffer
    /// words (NeRF training scatters hash-table gradients with it; a deterministic kernel otherwise).
    public var supportsFloat32AtomicAdd: Bool = false

    /// True for drivers that run shaders on the host CPU (lavapipe, SwiftShader).
    public var isCPUDriver: Bool { kind == .cpu }
}
