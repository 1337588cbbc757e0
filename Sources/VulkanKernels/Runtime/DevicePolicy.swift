/// The device choices several ops share, made in one place: how many subgroup lanes a kernel asks
/// for, and which storage types a device can hold.
extension DeviceInfo {
    /// When an op asks for 8-lane subgroups (the size measured fastest on lavapipe, DESIGN.md).
    enum EightLanePreference {
        /// On any device whose subgroup size can be set to 8 (GEMM, the sparse kernels).
        case whereverAvailable
        /// Only on CPU drivers; GPUs keep their own size (attention, softmax: their tiles were only
        /// measured to pay at 8 lanes on lavapipe).
        case onCPUDriversOnly
    }

    /// True when a pipeline can require 8-lane subgroups on this device.
    var canRequireEightLanes: Bool { supportsSubgroupSizeControl && (minSubgroupSize...maxSubgroupSize).contains(8) }

    /// The subgroup size a kernel is built for: 8 where `preference` and the device allow it, else the
    /// device's own size. Kernels pass it both as a specialization constant and as the required size.
    func subgroupLanes(_ preference: EightLanePreference) -> Int {
        let eight = switch preference {
        case .whereverAvailable: canRequireEightLanes
        case .onCPUDriversOnly: canRequireEightLanes && isCPUDriver
        }
        return eight ? 8 : subgroupSize
    }

    /// The most loop iterations one shader invocation may run, all its loops together, where the driver
    /// silently ends loops past a cap; nil where none is known. Mesa's llvmpipe (lavapipe) compiles every
    /// loop with one shared per-invocation counter of back edges, LP_MAX_TGSI_LOOP_ITERATIONS = 65535
    /// (gallivm's lp_exec_endloop), and leaves every loop once it runs out: a kernel whose invocation
    /// loops longer computes a wrong result without any error. Kernels whose trip counts grow with the
    /// input must keep one invocation's total below it (attention splits the keys; see docs/attention.md).
    var loopIterationsPerInvocation: Int? { name.hasPrefix("llvmpipe") ? 65_535 : nil }

    /// Throws when tensors of `dtype` cannot be bound on this device. fp16 and bf16 outputs are written
    /// as 16-bit storage-buffer elements (storageBuffer16BitAccess); bf16 inputs are read through R16_UINT
    /// / R16G16B16A16_UINT texel views, whose uniform-texel-buffer support Vulkan makes mandatory.
    func requireStorage(of dtype: DType, op: String) throws {
        if dtype.isHalfWidthFloat && !supports16BitStorage {
            throw KernelError.unsupportedOnDevice(op: op, feature: "16-bit storage (\(dtype == .float16 ? "fp16" : "bf16") tensors)")
        }
    }
}
