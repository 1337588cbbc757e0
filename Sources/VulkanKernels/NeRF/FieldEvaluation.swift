/// Checks the operands of a ``RadianceField/encodeEvaluate(into:samples:sampleCount:capacity:output:)`` call.
func validateEvaluation(op: String, batch: CommandBatch, samples: Tensor<Float>, sampleCount: Tensor<UInt32>,
                        capacity: Int, output: Tensor<Float>) throws {
    try batch.ensureRecording(op)
    for (name, context) in [("samples", samples.context), ("sampleCount", sampleCount.context), ("output", output.context)]
    where context !== batch.context {
        throw KernelError.foreignTensor(op: op, operand: name)
    }
    guard capacity >= 0 else { throw KernelError.invalidParameter(op: op, name: "capacity", value: "\(capacity)") }
    guard samples.count >= 8 * capacity else {
        throw KernelError.invalidShape(op: op, operand: "samples", shape: samples.shape, expected: "at least [\(capacity), 8]")
    }
    guard output.count >= 4 * capacity else {
        throw KernelError.invalidShape(op: op, operand: "output", shape: output.shape, expected: "at least [\(capacity), 4]")
    }
    guard sampleCount.count >= 1 else { throw KernelError.emptyTensor(op: op, operand: "sampleCount") }
}

/// The CPU backend's version of `encodeEvaluate`: the batch runs ops as they are recorded, so the
/// count is already in host memory.
func evaluateOnHost(_ field: RadianceField, samples: Tensor<Float>, sampleCount: Tensor<UInt32>, capacity: Int,
                    output: Tensor<Float>) throws {
    guard let countPointer = sampleCount.storage.hostPointer, let input = samples.storage.hostPointer,
          let result = output.storage.hostPointer else { preconditionFailure("CPU tensors without host memory") }
    let count = min(Int(countPointer.assumingMemoryBound(to: UInt32.self).pointee), capacity)
    field.evaluate(samples: UnsafeBufferPointer(start: input.assumingMemoryBound(to: Float.self), count: 8 * count),
                   output: UnsafeMutableBufferPointer(start: result.assumingMemoryBound(to: Float.self), count: 4 * count),
                   count: count)
}

extension RadianceField {
    /// Evaluates `samples` (8 floats each) on `context`'s backend, in chunks that fit the device's
    /// buffer limits; returns 4 floats per sample. Used to build occupancy grids and bake voxel grids
    /// from any field on the backend that will render it.
    public func evaluate(samples: [Float], on context: ComputeContext, chunk: Int = 1 << 18) throws -> [Float] {
        let count = samples.count / 8
        guard case .vulkan = context.backend else { return evaluate(samples: samples) }
        var output = [Float](repeating: 0, count: 4 * count)
        let capacity = min(chunk, max(count, 1))
        let input = try context.empty(Float.self, shape: [capacity, 8])
        let result = try context.empty(Float.self, shape: [capacity, 4])
        let counter = try context.empty(UInt32.self, shape: [1])
        var start = 0
        while start < count {
            let n = min(capacity, count - start)
            var slice = Array(samples[(8 * start)..<(8 * (start + n))])
            if n < capacity { slice += [Float](repeating: 0, count: 8 * (capacity - n)) }
            try input.copy(from: slice)
            try counter.copy(from: [UInt32(n)])
            try context.batch { batch in
                try encodeEvaluate(into: batch, samples: input, sampleCount: counter, capacity: n, output: result)
            }
            let values = try result.toArray()
            output.replaceSubrange((4 * start)..<(4 * (start + n)), with: values[0..<(4 * n)])
            start += n
        }
        return output
    }
}
