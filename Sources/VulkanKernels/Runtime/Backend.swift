/// The backend a context runs on, once chosen: what every op switches over to pick its Vulkan encoding
/// or its CPU path (the public ``ComputeContext/Backend`` is the request, this is the answer).
enum ResolvedBackend: Sendable {
    /// Ops are recorded into the batch's command buffer and run on this device at submit.
    case vulkan(VulkanDevice)
    /// Ops run on the host as they are recorded (OpenBLAS and the C/Swift kernels).
    case cpu

    var device: VulkanDevice? {
        if case .vulkan(let device) = self { return device }
        return nil
    }
}

extension CommandBatch {
    /// The backend this batch's ops run on.
    var backend: ResolvedBackend { context.backend }
}
