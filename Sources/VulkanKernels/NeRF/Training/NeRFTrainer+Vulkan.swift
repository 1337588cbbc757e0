/// The Vulkan side of ``NeRFTrainer``: the device step and the host copies' refresh.
extension NeRFTrainer {
    /// Refreshes the host copies of the parameters (``network``), the density grid (``densityGrid``) and
    /// the weight average (``emaWeights``) from the device where a Vulkan step changed them (nothing to do
    /// on the CPU backend). Reading one of them does this by itself (and stops the program if the device
    /// fails then); call it first to get such an error as a thrown one.
    public func syncHost() throws {
        try sync(parameters: true, grid: true, average: true)
    }

    /// Refreshes the stale host copies among those asked for.
    func sync(parameters: Bool, grid: Bool, average: Bool = false) throws {
        guard let pipeline else { return }
        if parameters && hostParametersStale {
            storedNetwork.parameters = try pipeline.network.parameterValues()
            hostParametersStale = false
        }
        if grid && hostGridStale {
            let state = try pipeline.grid.download()
            storedGrid.replaceState(values: state.values, occupied: state.occupied, meanThickness: state.mean)
            hostGridStale = false
        }
        if average && hostAverageStale {
            storedEmaWeights = try pipeline.network.averageValues()
            hostAverageStale = false
        }
    }

    /// ``sync(parameters:grid:)`` for the property getters, which cannot throw.
    func syncHostOrStop(parameters: Bool, grid: Bool, average: Bool = false) {
        do {
            try sync(parameters: parameters, grid: grid, average: average)
        } catch {
            fatalError("NeRFTrainer: downloading the trained state from the Vulkan device failed: \(error)")
        }
    }

    /// The rest of a step on a Vulkan context (``VulkanTrainingPipeline``): the rays go up, one command
    /// batch runs march, forward pass, compositing and loss, compaction, backward pass and Adam, and the
    /// per-ray report and the counts come down; everything else (the weight average included) stays on the
    /// device. Timings: the batch as `deviceBatch`.
    func deviceStep(_ pipeline: VulkanTrainingPipeline, rays: [LocalRay], jitters: [Float], targets: [SIMD3<Float>],
                    backgrounds: [SIMD3<Float>], start: Double) throws -> TrainingStepReport {
        var clock = monotonicSeconds()
        func lap(_ phase: WritableKeyPath<TrainingTimings, Double>) {
            let now = monotonicSeconds()
            timings[keyPath: phase] += now - clock
            clock = now
        }
        let rayCount = rays.count
        let values = Self.rayValues(rays: rays, jitters: jitters, targets: targets, backgrounds: backgrounds)
        let result = try pipeline.step(rays: values, maxSamples: options.maxSamplesPerStep, options: options, learningRate: learningRate,
                                       average: options.emaDecay.map { ($0, step + 1) })
        hostParametersStale = true
        if options.emaDecay != nil { hostAverageStale = true }
        lap(\.deviceBatch)
        let (reports, samples, keptRays) = (result.reports, result.samples, result.keptRays)
        let rayLoss = (0..<rayCount).map { reports[4 * $0] }, raySquaredError = (0..<rayCount).map { reports[4 * $0 + 1] }
        let used = (0..<rayCount).reduce(0) { $0 + Int(reports[4 * $1 + 2]) }
        return finishStep(rayLoss: rayLoss, raySquaredError: raySquaredError, usedSamples: used, trainedRays: max(keptRays, 1),
                          samples: samples, start: start)
    }

    /// The rays as the device pipeline takes them: per ray (origin, jitter), (direction, 0), (target, 0),
    /// (background, 0).
    static func rayValues(rays: [LocalRay], jitters: [Float], targets: [SIMD3<Float>], backgrounds: [SIMD3<Float>]) -> [Float] {
        var values = [Float](repeating: 0, count: VulkanTrainingPipeline.floatsPerRay * rays.count)
        for r in rays.indices {
            let o = rays[r].origin, d = rays[r].direction, t = targets[r], b = backgrounds[r]
            values.replaceSubrange((16 * r)..<(16 * r + 16), with: [o.x, o.y, o.z, jitters[r], d.x, d.y, d.z, 0, t.x, t.y, t.z, 0, b.x, b.y, b.z, 0])
        }
        return values
    }
}
