/// tiny-cuda-nn's fp16 weight average (EmaOptimizer, `TrainingOptions.emaDecay`) kept on the device
/// beside the parameters: updated after Adam inside the training step's batch, read back only when the
/// host asks (``NeRFTrainer/emaWeights``).
extension VulkanTrainingNetwork {
    /// Records tiny-cuda-nn's fp16 weight-average update after Adam's `k`-th update with decay `d`
    /// (train_weight_average; the host's NeRFTrainer.updateAverage), on the average this network keeps on
    /// the device (zero until set: the first update then copies the weights, as on the host).
    func encodeAverage(_ batch: CommandBatch, decay d: Float, step k: Int) throws {
        guard d.isFinite, d >= 0, d < 1, k >= 1 else {
            throw KernelError.invalidParameter(op: "train", name: "weight average", value: "decay \(d), update \(k)")
        }
        let n = configuration.parameterCount
        let words = try averageWords()
        let (debiasOld, debiasNew) = NeRFTrainer.averageDebias(decay: d, step: k)
        try batch.dispatch(Kernel<Shader.nerf_train_weight_average>(.base, specialization: specialization), .init(
            parameters: read(parameters, n), average: BufferBinding(words.storage, .storageReadWrite, byteCount: 4 * words.count)),
            push: .init(count: UInt32(n), decay: d, oneMinusDecay: 1 - d, debiasOld: debiasOld, debiasNew: debiasNew),
            groups: groups(words.count))
    }

    /// The device's fp16 average, two weights per word (made zero on first use).
    func averageWords() throws -> Tensor<UInt32> {
        if let average { return average }
        let made = try context.zeros(UInt32.self, shape: [(configuration.parameterCount + 1) / 2])
        average = made
        return made
    }

    /// The device's weight average.
    func averageValues() throws -> [Float16] {
        let words = try averageWords().toArray()
        return (0..<configuration.parameterCount).map { Float16(bitPattern: UInt16(truncatingIfNeeded: words[$0 / 2] >> (16 * UInt32($0 % 2)))) }
    }

    /// Replaces the device's weight average (nil: zero, as before a first update).
    func setAverage(_ values: [Float16]?) throws {
        let n = configuration.parameterCount
        if let values, values.count != n { throw KernelError.countMismatch(expected: n, got: values.count) }
        var words = [UInt32](repeating: 0, count: (n + 1) / 2)
        if let values {
            for (i, v) in values.enumerated() { words[i / 2] |= UInt32(v.bitPattern) << (16 * UInt32(i % 2)) }
        }
        try averageWords().copy(from: words)
    }
}
