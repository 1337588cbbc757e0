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

    /// Records the same evaluation into a Vulkan batch. `samples` is `[capacity, 8]`, `output` is
    /// `[capacity, 4]`; `sampleCount` (one `UInt32`, written by an earlier dispatch of the batch)
    /// says how many leading samples are valid: the kernel is dispatched over `capacity` and
    /// invocations past the count do nothing.
    func encodeEvaluate(into batch: CommandBatch, samples: Tensor<Float>, sampleCount: Tensor<UInt32>,
                        capacity: Int, output: Tensor<Float>) throws
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
