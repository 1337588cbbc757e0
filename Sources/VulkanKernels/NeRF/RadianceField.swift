/// A radiance field: density σ ≥ 0 and colour (linear RGB in [0, 1]) at a point seen from a direction.
///
/// Every field evaluates on both backends, in batches of samples, with one memory layout:
/// - samples: 8 floats each — position x, y, z, (unused), unit direction x, y, z, (unused);
/// - output: 4 floats each — red, green, blue, density σ (per unit length).
/// The ray marcher generates samples, the field fills the output, the compositor consumes it, so a
/// field knows nothing of rays and the marcher nothing of fields.
public protocol RadianceField: AnyObject, Sendable {
    /// A short name for logs and benchmarks ("shell", "hashgrid", …).
    var name: String { get }
    /// Density is zero outside this box.
    var bounds: AABB { get }

    /// CPU evaluation of `count` samples (`samples.count ≥ 8·count`, `output.count ≥ 4·count`).
    /// Implementations split the work over threads themselves.
    func evaluate(samples: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>, count: Int)
}

/// The Vulkan side of the library's own fields: records the field's evaluation kernel. Internal because
/// kernels are (pipelines, bindings, push constants); a field defined outside the library implements
/// ``RadianceField`` only and evaluates on the CPU backend.
protocol RadianceFieldKernel: RadianceField {
    /// Records the evaluation of `capacity` samples (operands already checked, `capacity > 0`).
    func encodeEvaluate(into batch: CommandBatch, samples: Tensor<Float>, sampleCount: Tensor<UInt32>, capacity: Int,
                        output: Tensor<Float>, on device: VulkanDevice) throws
}

extension RadianceField {
    /// Records the evaluation into `batch` on its backend. `samples` is `[capacity, 8]`, `output` is
    /// `[capacity, 4]`; `sampleCount` (one `UInt32`, written by an earlier dispatch of the batch) says how
    /// many leading samples are valid: on Vulkan the kernel is dispatched over `capacity` and invocations
    /// past the count do nothing; on the CPU backend (ops run as recorded) the count is read and that
    /// many samples are evaluated by ``evaluate(samples:output:count:)``.
    ///
    /// Throws ``KernelError`` for tensors of another context or too small, and on Vulkan for a field with
    /// no kernel (one defined outside the library).
    public func encodeEvaluate(into batch: CommandBatch, samples: Tensor<Float>, sampleCount: Tensor<UInt32>,
                               capacity: Int, output: Tensor<Float>) throws {
        let op = "\(name).encodeEvaluate"
        try validateEvaluation(op: op, batch: batch, samples: samples, sampleCount: sampleCount, capacity: capacity, output: output)
        switch batch.backend {
        case .cpu:
            try evaluateOnHost(self, samples: samples, sampleCount: sampleCount, capacity: capacity, output: output)
        case .vulkan(let device):
            guard let kernel = self as? RadianceFieldKernel else {
                throw KernelError.unsupportedOnDevice(op: op, feature: "a Vulkan kernel for \(type(of: self)) (fields defined outside the "
                                                      + "library evaluate on the CPU backend)")
            }
            guard capacity > 0 else { return }
            try kernel.encodeEvaluate(into: batch, samples: samples, sampleCount: sampleCount, capacity: capacity, output: output, on: device)
        }
    }
}

extension RadianceField {
    /// Convenience for tests and references: evaluates an array of samples on the CPU.
    public func evaluate(samples: [Float]) -> [Float] {
        let count = samples.count / 8
        var output = [Float](repeating: 0, count: count * 4)
        samples.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { evaluate(samples: input, output: $0, count: count) }
        }
        return output
    }
}
