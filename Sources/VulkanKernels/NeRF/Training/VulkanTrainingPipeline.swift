import CVulkan

/// A whole NeRF training step on a Vulkan device, around ``VulkanTrainingNetwork``: march, field
/// forward, compositing with loss and its backward pass, compaction, the field's backward pass and Adam,
/// with every per-sample array (positions, directions, step lengths, activations, gradients) and the
/// density grid (``VulkanDensityGrid``) resident on the device. Per step the host uploads the rays
/// (origin, direction, jitter, target, background: 16 floats each) and downloads the sample and ray counts
/// (4 words) and the per-ray report (loss, squared error, used samples: 4 floats each).
///
/// A step is one command batch (``step(rays:maxSamples:options:learningRate:)``), with no host round trip
/// inside it, although the number of samples is known only on the device:
/// 1. march: train_march_rays counts each ray's samples, train_ray_scan sums the counts,
///    train_march_rays writes the samples of the prefix of rays that fits the budget, and the numbers of
///    samples and of rays kept into `totals` words 0 and 1;
/// 2. train_dispatch_arguments turns word 0 into the workgroup counts of the forward pass's indirect
///    dispatches (``TrainingIndirectDispatch``); the forward pass runs over the samples, each kernel
///    reading the count from word 0 (clamped to the sample capacity, the bound of every buffer);
/// 3. train_composite per ray (compositing, loss, compositing backward), train_ray_scan over the used
///    counts and train_compact_samples, which moves the samples before each ray's termination (inputs and
///    gradients) to the front of the backward pass's buffers and writes their number into word 2;
/// 4. train_dispatch_arguments for word 2; train_gather_rows gathers the kept samples' activations (the
///    forward pass's, by the indices compaction wrote) into the buffers of ``kept``, then the backward pass
///    over them and Adam, all dispatched indirectly from word 2 except Adam (over the parameters), and,
///    with a weight average, train_weight_average.
/// (instant-ngp evaluates its compacted batch a second time instead of the gather; a copy of ~270 floats
/// per kept sample is far cheaper than a forward pass.) ``march(rays:maxSamples:)`` and
/// ``encodeCompositeAndCompact(_:_:rayCount:samples:options:)`` alone serve the tests of those stages.
final class VulkanTrainingPipeline {
    /// The march's settings (the CPU path's `vkk_march_params`), in unit-cube coordinates.
    struct MarchSettings {
        var boxLower: Float
        var boxUpper: Float
        var minStep: Float
        var maxStep: Float
        var cone: Float
        var maxSamplesPerRay: Int
        /// World units per unit-cube unit (the step lengths written are dt·cubeSize).
        var cubeSize: Float
    }

    /// Floats per ray in the uploaded ray array: (origin, jitter), (direction, 0), (target, 0), (background, 0).
    static let floatsPerRay = 16

    let network: VulkanTrainingNetwork
    let grid: VulkanDensityGrid
    let context: ComputeContext
    let march: MarchSettings
    let rayCapacity: Int
    let sampleCapacity: Int

    let rays: Tensor<Float>
    let rayCounts, blockOffsets, rayRanges, usedCounts, usedBlockOffsets, totals: Tensor<UInt32>
    let samplePositions, sampleDirections, sampleDt, sampleRgbGradient, sampleSigmaGradient: Tensor<Float>
    let reports: Tensor<Float>
    /// The kept samples' activations (sharing inputs, gradients and scratch with the network's own) and
    /// each one's index before compaction.
    let kept: VulkanTrainingNetwork.Activations
    let keptSource: Tensor<UInt32>
    /// The forward pass's activations (the network's buffers for ``sampleCapacity`` samples).
    let all: VulkanTrainingNetwork.Activations
    /// The indirect dispatches over the counts in ``totals``.
    let indirect: TrainingIndirectDispatch

    /// Buffers for up to `rayCapacity` rays and `sampleCapacity` samples per step; throws when the
    /// device cannot hold them.
    init(network: VulkanTrainingNetwork, grid: VulkanDensityGrid, march: MarchSettings, rayCapacity: Int, sampleCapacity: Int) throws {
        let blocks = (rayCapacity + 63) / 64
        // train_ray_scan's single-invocation phase loops over the blocks (lavapipe's loop limit: 65,535).
        guard rayCapacity > 0, blocks <= 65_535 else {
            throw KernelError.invalidParameter(op: "train", name: "rays per step", value: "\(rayCapacity) (1…\(65_535 * 64) on Vulkan)")
        }
        guard march.maxSamplesPerRay > 0, march.maxSamplesPerRay <= 60_000 else {
            throw KernelError.invalidParameter(op: "train", name: "samples per ray", value: "\(march.maxSamplesPerRay) (1…60000 on Vulkan)")
        }
        let context = network.context
        self.network = network
        self.grid = grid
        self.context = context
        self.march = march
        self.rayCapacity = rayCapacity
        self.sampleCapacity = sampleCapacity
        let all = try network.activations(for: sampleCapacity)
        self.all = all
        kept = try VulkanTrainingNetwork.Activations(sharingInputsAndScratchOf: all, configuration: network.configuration, context: context)
        keptSource = try context.zeros(UInt32.self, shape: [all.capacity])
        rays = try context.zeros(Float.self, shape: [rayCapacity, Self.floatsPerRay])
        rayCounts = try context.zeros(UInt32.self, shape: [rayCapacity])
        usedCounts = try context.zeros(UInt32.self, shape: [rayCapacity])
        blockOffsets = try context.zeros(UInt32.self, shape: [blocks])
        usedBlockOffsets = try context.zeros(UInt32.self, shape: [blocks])
        rayRanges = try context.zeros(UInt32.self, shape: [rayCapacity, 2])
        totals = try context.zeros(UInt32.self, shape: [4])
        samplePositions = try context.zeros(Float.self, shape: [sampleCapacity, 3])
        sampleDirections = try context.zeros(Float.self, shape: [sampleCapacity, 3])
        sampleDt = try context.zeros(Float.self, shape: [sampleCapacity])
        sampleRgbGradient = try context.zeros(Float.self, shape: [sampleCapacity, 3])
        sampleSigmaGradient = try context.zeros(Float.self, shape: [sampleCapacity])
        reports = try context.zeros(Float.self, shape: [rayCapacity, 4])
        indirect = try TrainingIndirectDispatch(counts: totals, context: context, specialization: network.specialization,
                                                localSize: network.localSize, maxGroupsX: network.device.info.maxComputeWorkGroupCount[0])
    }

    // MARK: The step

    /// What one step reports: the per-ray report (4 floats per ray: mean loss, mean squared error, used
    /// samples, kept 1/0), the samples marched, the rays kept within the budget and the samples kept for
    /// the backward pass.
    struct StepResult {
        var reports: [Float]
        var samples: Int
        var keptRays: Int
        var keptSamples: Int
    }

    /// One whole training step in one command batch: uploads `rays` (``floatsPerRay`` floats each), marches
    /// them with at most `maxSamples` samples, runs the forward pass, compositing and loss, compaction, the
    /// backward pass and one Adam update with `learningRate`, then reads back the report and the counts.
    /// With `average` (decay, update number k ≥ 1), the fp16 weight average is updated after Adam
    /// (``VulkanTrainingNetwork/encodeAverage(_:decay:step:)``).
    func step(rays values: [Float], maxSamples: Int, options: TrainingOptions, learningRate: Float,
              average: (decay: Float, step: Int)? = nil) throws -> StepResult {
        let n = try checkRays(values, maxSamples: maxSamples)
        let debias = try network.prepareStep(options: options, learningRate: learningRate)
        try network.upload(values, to: rays)
        // A recording that ran out of indirect-dispatch slots is discarded and made again (first step only).
        while true {
            let batch = try context.makeBatch()
            try encodeStep(batch, rayCount: n, maxSamples: maxSamples, options: options, learningRate: learningRate, debias: debias)
            if let average { try network.encodeAverage(batch, decay: average.decay, step: average.step) }
            if try indirect.commitShapes() {
                try batch.commit()
                break
            }
        }
        let counts = try totals.toArray()
        let report = try context.download(reports.storage, count: 4 * n, as: Float.self)
        return StepResult(reports: report, samples: Int(counts[0]), keptRays: Int(counts[1]), keptSamples: Int(counts[2]))
    }

    /// Records the whole step (see the type's comment).
    func encodeStep(_ batch: CommandBatch, rayCount n: Int, maxSamples: Int, options: TrainingOptions, learningRate: Float,
                    debias: Tensor<Float>) throws {
        let capacity = sampleCapacity
        try batch.fill(totals.storage, word: 0)
        try encodeMarch(batch, n, maxSamples: maxSamples, pass: 0)
        try encodeScan(batch, counts: rayCounts, offsets: blockOffsets, n)
        try encodeMarch(batch, n, maxSamples: maxSamples, pass: 1)
        try indirect.encodeArguments(batch, word: Self.samplesWord)
        try network.encodeForward(batch, all, .device(word: Self.samplesWord, capacity: capacity, plan: indirect), densityOnly: false,
                                  positions: samplePositions, directions: sampleDirections)
        try encodeCompositeAndCompact(batch, all, rayCount: n, samples: capacity, options: options)
        try indirect.encodeArguments(batch, word: Self.keptSamplesWord)
        let kept = SampleCount.device(word: Self.keptSamplesWord, capacity: capacity, plan: indirect)
        try encodeGather(batch, from: all, kept)
        try network.encodeBackward(batch, self.kept, kept)
        try network.encodeStep(batch, debias: debias, options: options, learningRate: learningRate)
    }

    /// The words of ``totals``: samples marched, rays kept, samples kept after compaction.
    static let samplesWord: UInt32 = 0
    static let keptRaysWord: UInt32 = 1
    static let keptSamplesWord: UInt32 = 2

    /// Checks a step's rays and budget; returns the number of rays.
    func checkRays(_ values: [Float], maxSamples: Int) throws -> Int {
        let n = values.count / Self.floatsPerRay
        guard values.count % Self.floatsPerRay == 0, n > 0, n <= rayCapacity, maxSamples > 0, maxSamples <= sampleCapacity else {
            throw KernelError.invalidParameter(op: "train march", name: "rays",
                                               value: "\(values.count) floats, budget \(maxSamples) (≤ \(rayCapacity) rays, ≤ \(sampleCapacity) samples)")
        }
        guard values.allSatisfy(\.isFinite) else {
            throw KernelError.invalidParameter(op: "train march", name: "rays", value: "non-finite values")
        }
        return n
    }

    /// The march alone (tests): uploads `rays` and marches them; returns the samples placed (at most
    /// `maxSamples`) and the rays kept (a prefix of them).
    func march(rays values: [Float], maxSamples: Int) throws -> (samples: Int, keptRays: Int) {
        let n = try checkRays(values, maxSamples: maxSamples)
        try network.upload(values, to: rays)
        try context.batch { batch in
            try batch.fill(totals.storage, word: 0)
            try encodeMarch(batch, n, maxSamples: maxSamples, pass: 0)
            try encodeScan(batch, counts: rayCounts, offsets: blockOffsets, n)
            try encodeMarch(batch, n, maxSamples: maxSamples, pass: 1)
        }
        let counts = try totals.toArray()
        return (Int(counts[0]), Int(counts[1]))
    }

    // MARK: Encoding

    /// train_composite over the rays' samples (RGB and σ in `b`), then the scan of the used counts and
    /// train_compact_samples into ``kept``'s positions, directions and gradients and ``keptSource``.
    func encodeCompositeAndCompact(_ batch: CommandBatch, _ b: VulkanTrainingNetwork.Activations, rayCount n: Int, samples: Int,
                                   options: TrainingOptions) throws {
        let s = max(samples, 1)
        try batch.dispatch(Kernel<Shader.nerf_train_composite>(.base, specialization: network.specialization), .init(
            rays: read(rays, Self.floatsPerRay * n), rayRanges: read(rayRanges, 2 * n), totals: read(totals, 4),
            rgb: read(b.rgb, 3 * s), sigma: read(b.sigma, s), dt: read(sampleDt, s),
            rgbGradient: write(sampleRgbGradient, 3 * s), sigmaGradient: write(sampleSigmaGradient, s),
            usedCounts: write(usedCounts, n), reports: write(reports, 4 * n)),
            push: .init(rayCount: UInt32(n), huber: options.loss == .huber ? 1 : 0, keepAll: options.compactBackward ? 0 : 1,
                        threshold: options.terminationThreshold, huberDelta: TrainingLoss.huberDelta),
            groups: network.groups(n))
        try encodeScan(batch, counts: usedCounts, offsets: usedBlockOffsets, n)
        try batch.dispatch(Kernel<Shader.nerf_train_compact_samples>(.base, specialization: network.specialization), .init(
            rayCounts: read(usedCounts, n), blockOffsets: read(usedBlockOffsets, (n + 63) / 64), rayRanges: read(rayRanges, 2 * n),
            totals: write(totals, 4), positions: read(samplePositions, 3 * s), directions: read(sampleDirections, 3 * s),
            rgbGradient: read(sampleRgbGradient, 3 * s), sigmaGradient: read(sampleSigmaGradient, s),
            keptPositions: write(kept.positions, 3 * s), keptDirections: write(kept.directions, 3 * s),
            keptRgbGradient: write(kept.rgbGradient, 3 * s), keptSigmaGradient: write(kept.sigmaGradient, s),
            keptSource: write(keptSource, s)),
            push: .init(rayCount: UInt32(n)), groups: network.groups(n))
    }


    /// The forward activations the backward pass reads, rows ``keptSource`` of `all` into ``kept``, for
    /// the `count` kept samples.
    func encodeGather(_ batch: CommandBatch, from all: VulkanTrainingNetwork.Activations, _ count: SampleCount) throws {
        let c = network.configuration, n = count.bound
        var pairs: [(Tensor<Float>, Tensor<Float>, Int)] = [(all.encoded, kept.encoded, c.encodingWidth)]
        pairs += zip(all.densityHidden, kept.densityHidden).map { ($0, $1, c.densityWidth) }
        pairs.append((all.colorInput, kept.colorInput, c.colorInputWidth))
        pairs += zip(all.colorHidden, kept.colorHidden).map { ($0, $1, c.colorWidth) }
        pairs.append((all.rgb, kept.rgb, 3))
        for (source, target, width) in pairs {
            let vectors = width % 4 == 0
            let elements = vectors ? width / 4 : width
            try network.dispatch(batch, Kernel<Shader.nerf_train_gather_rows>(vectors ? .vec4 : .base, specialization: network.specialization), .init(
                map: read(keptSource, n), source: read(source, source.count), target: write(target, n * width),
                deviceCounts: network.countBinding(count)),
                push: .init(count: UInt32(n), width: UInt32(elements), countWord: count.countWord), over: count, perItem: elements)
        }
    }

    func encodeMarch(_ batch: CommandBatch, _ n: Int, maxSamples: Int, pass: UInt32) throws {
        let m = march, cells = grid.cellCount
        try batch.dispatch(Kernel<Shader.nerf_train_march_rays>(.base, specialization: network.specialization), .init(
            rays: read(rays, Self.floatsPerRay * n), occupancy: read(grid.occupancy, cells / 32),
            rayCounts: BufferBinding(rayCounts.storage, .storageReadWrite, byteCount: 4 * n),
            blockOffsets: read(blockOffsets, (n + 63) / 64), rayRanges: write(rayRanges, 2 * n), totals: write(totals, 4),
            positions: write(samplePositions, 3 * maxSamples), directions: write(sampleDirections, 3 * maxSamples), dt: write(sampleDt, maxSamples)),
            push: .init(rayCount: UInt32(n), maxSamples: UInt32(maxSamples), maxSamplesPerRay: UInt32(m.maxSamplesPerRay),
                        resolution: UInt32(grid.resolution), cascades: UInt32(grid.cascades), pass: pass, boxLower: m.boxLower,
                        boxUpper: m.boxUpper, minStep: m.minStep, maxStep: m.maxStep, cone: m.cone, cubeSize: m.cubeSize),
            groups: network.groups(n))
    }

    /// train_ray_scan's two phases over `counts` (n rays) into `offsets`.
    func encodeScan(_ batch: CommandBatch, counts: Tensor<UInt32>, offsets: Tensor<UInt32>, _ n: Int) throws {
        let blocks = (n + 63) / 64
        for phase in 0..<2 {
            try batch.dispatch(Kernel<Shader.nerf_train_ray_scan>(.base, specialization: network.specialization), .init(
                rayCounts: read(counts, n), blockOffsets: BufferBinding(offsets.storage, .storageReadWrite, byteCount: 4 * blocks)),
                push: .init(rayCount: UInt32(n), phase: UInt32(phase)), groups: network.groups(phase == 0 ? blocks : 1))
        }
    }

    // MARK: Host copies (tests)

    /// Each ray's (first sample, count) from the latest march.
    func marchedRanges(rayCount n: Int) throws -> [UInt32] { try context.download(rayRanges.storage, count: 2 * n, as: UInt32.self) }

    /// The latest march's samples: positions (unit cube of the field), directions and world step lengths.
    func marchedSamples(_ samples: Int) throws -> (positions: [Float], directions: [Float], dt: [Float]) {
        guard samples > 0 else { return ([], [], []) }
        return (try context.download(samplePositions.storage, count: 3 * samples, as: Float.self),
                try context.download(sampleDirections.storage, count: 3 * samples, as: Float.self),
                try context.download(sampleDt.storage, count: samples, as: Float.self))
    }

    func read<T: TensorElement>(_ tensor: Tensor<T>, _ count: Int) -> BufferBinding {
        BufferBinding(tensor.storage, .storageRead, byteCount: 4 * max(count, 1))
    }

    func write<T: TensorElement>(_ tensor: Tensor<T>, _ count: Int) -> BufferBinding {
        BufferBinding(tensor.storage, .storageWrite, byteCount: 4 * max(count, 1))
    }
}
