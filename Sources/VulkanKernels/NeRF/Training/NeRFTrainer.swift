import CKernels
import Glibc

/// Trains instant-ngp's NeRF network (``HashGridNetwork``) on a ``TrainingDataset``.
///
/// One ``trainStep()``: sample `batchRays` training pixels (seeded), march their rays through the
/// occupancy grid (``TrainingDensityGrid``), evaluate the field at every sample keeping activations,
/// composite front to back with early termination, compute the loss against the pixel (over a random
/// background per ray), back-propagate through compositing, both MLPs and the hash encoding, and apply
/// Adam; every `densityGridUpdateInterval` steps the density grid is updated from the field first.
///
/// On the CPU backend everything runs on the host (multi-threaded; MLP layers as OpenBLAS GEMMs over the
/// whole batch); for a fixed seed (and thread count) every step is bit-for-bit reproducible. On a Vulkan
/// context every stage after ray sampling runs on the device (``VulkanTrainingPipeline``: march,
/// forward, compositing with loss and its backward pass, compaction, backward, Adam; the density-grid
/// update through ``VulkanDensityGrid``), with samples, activations, gradients, parameters and the grid
/// resident there: per step the host draws and uploads the rays and downloads the per-ray report. The
/// host copies ``network`` and ``densityGrid`` are refreshed from the device when read after a step
/// (``syncHost()`` does it explicitly and throws on a device error).
public final class NeRFTrainer: @unchecked Sendable {
    public let dataset: TrainingDataset
    public let options: TrainingOptions
    /// The network (fp32 master weights). On a Vulkan context the weights live on the device during
    /// training and this host copy is refreshed from there when read after a step (see ``syncHost()``).
    public internal(set) var network: HashGridNetwork {
        get { syncHostOrStop(parameters: true, grid: false); return storedNetwork }
        set { storedNetwork = newValue; hostParametersStale = false }
    }
    /// The training density grid. On a Vulkan context it lives on the device during training and this host
    /// copy is refreshed from there when read after an update (see ``syncHost()``).
    public var densityGrid: TrainingDensityGrid {
        syncHostOrStop(parameters: false, grid: true)
        return storedGrid
    }
    var storedNetwork: HashGridNetwork
    let storedGrid: TrainingDensityGrid
    /// The device's parameters (or grid, or weight average) changed since the host copy was taken.
    var hostParametersStale = false
    var hostGridStale = false
    var hostAverageStale = false
    /// Steps taken.
    public private(set) var step = 0
    /// Seconds spent in each phase of the steps so far (for benchmarks).
    public internal(set) var timings = TrainingTimings()
    /// The latest step's report (nil before the first step of this trainer).
    public private(set) var lastReport: TrainingStepReport?

    let optimizer: AdamOptimizer
    /// The network's training copy on a Vulkan context (nil on the CPU backend).
    let deviceNetwork: VulkanTrainingNetwork?
    /// The whole step on a Vulkan context: march, compositing, compaction, density grid (nil on the CPU).
    let pipeline: VulkanTrainingPipeline?
    /// tiny-cuda-nn's EmaOptimizer state (`options.emaDecay`): the fp16 moving average of the fp16 weights,
    /// the inference weights (nil until the first step, or without an average). On a Vulkan context the
    /// average is kept on the device (train_weight_average, after Adam in the step's batch) and this host
    /// copy is refreshed from there when read after a step (see ``syncHost()``).
    public var emaWeights: [Float16]? {
        syncHostOrStop(parameters: false, grid: false, average: true)
        return storedEmaWeights
    }
    var storedEmaWeights: [Float16]?
    var gradients: [Float]
    let activations = HashGridActivations()
    let inferenceActivations = HashGridActivations()
    let scratch = HashGridBackwardScratch()
    /// The march works in unit-cube coordinates (instant-ngp's), where the field's box is
    /// [½ − s/2, ½ + s/2]³ for aabb_scale s and the finest step is √3/stepsPerDiagonal.
    let boxLower: Float
    let minimumStep: Float
    let maximumStep: Float
    let coneAngle: Float
    /// World units per unit-cube unit.
    let cubeSize: Float

    /// Throws for invalid options, a configuration that does not validate, or a network the Vulkan
    /// device cannot hold. `configuration` defaults to instant-ngp's base network for the dataset's
    /// aabb_scale. `scatterMethod` picks the Vulkan hash-gradient scatter (default: float atomics where
    /// the device has them); it is ignored on the CPU backend.
    public init(context: ComputeContext, dataset: TrainingDataset, configuration: HashGridConfiguration? = nil,
                options: TrainingOptions = TrainingOptions(), scatterMethod: VulkanTrainingNetwork.ScatterMethod? = nil) throws {
        try options.validate()
        let configuration = configuration ?? HashGridConfiguration(aabbScale: dataset.aabbScale)
        self.dataset = dataset
        self.options = options
        let initial = try HashGridNetwork.initialized(configuration: configuration, seed: options.seed)
        storedNetwork = initial
        let cascades = NGPDensityGrid.cascadeCount(aabbScale: dataset.aabbScale)
        storedGrid = try TrainingDensityGrid(resolution: options.densityGridResolution, cascades: cascades, unitCube: dataset.unitCube)
        storedGrid.markUnseenCells(cameras: dataset.training.map(\.camera))
        optimizer = AdamOptimizer(parameterCount: configuration.parameterCount, matrixCount: initial.matrixParameterCount)
        gradients = [Float](repeating: 0, count: configuration.parameterCount)
        boxLower = 0.5 - dataset.aabbScale / 2
        minimumStep = Float(3).squareRoot() / Float(options.stepsPerDiagonal)
        maximumStep = minimumStep * Float(1 << (cascades - 1)) * Float(options.stepsPerDiagonal) / Float(options.densityGridResolution)
        coneAngle = options.coneAngle ?? (dataset.aabbScale <= 1 ? 0 : 1.0 / 256)
        cubeSize = dataset.unitCube.size.x
        if context.device != nil {
            let network = try VulkanTrainingNetwork(network: initial, context: context, scatterMethod: scatterMethod)
            let grid = try VulkanDensityGrid(grid: storedGrid, context: context)
            let march = VulkanTrainingPipeline.MarchSettings(boxLower: boxLower, boxUpper: boxLower + dataset.aabbScale, minStep: minimumStep,
                                                             maxStep: maximumStep, cone: coneAngle, maxSamplesPerRay: options.maxSamplesPerRay,
                                                             cubeSize: cubeSize)
            deviceNetwork = network
            pipeline = try VulkanTrainingPipeline(network: network, grid: grid, march: march, rayCapacity: options.batchRays,
                                                  sampleCapacity: max(options.maxSamplesPerStep, options.maxSamplesPerRay))
        } else {
            deviceNetwork = nil
            pipeline = nil
        }
    }

    /// The learning rate at the current step (base.json's exponential decay).
    public var learningRate: Float {
        guard step >= options.decayStart else { return options.learningRate }
        return options.learningRate * powf(options.decayBase, Float((step - options.decayStart) / options.decayInterval + 1))
    }

    // MARK: Marching

    /// A ray in unit-cube coordinates.
    struct LocalRay {
        var origin: SIMD3<Float>
        var direction: SIMD3<Float>
    }

    func localRay(_ ray: Ray) -> LocalRay {
        LocalRay(origin: (ray.origin - dataset.unitCube.lower) / cubeSize, direction: ray.direction)
    }

    /// The march's parameters for the C loop (`occupied` must stay alive while they are used).
    func marchParameters(_ occupied: UnsafePointer<UInt8>) -> vkk_march_params {
        vkk_march_params(box_lower: boxLower, box_upper: boxLower + dataset.aabbScale, min_step: minimumStep, max_step: maximumStep,
                         cone: coneAngle, resolution: Int32(densityGrid.resolution), cascades: Int32(densityGrid.cascades),
                         occupied: occupied, max_samples: Int32(options.maxSamplesPerRay))
    }

    /// One thread's march output, kept from the march until the budget is known and the kept rays' samples
    /// are copied into the activations (reused across steps).
    final class MarchScratch {
        var positions: [Float] = []
        var dt: [Float] = []
        var offsets: [Int] = []
    }
    var marchScratch: [MarchScratch] = []

    /// Marches `rays` into `activations` (positions, directions) and `dt` (world units), returning each
    /// ray's first sample index and sample count. From the first ray that would take the total past
    /// `maxSamples` on, rays get no samples and are not `included`.
    ///
    /// Each ray is marched once: the threads march their share of the rays into their own scratch, the
    /// budget's prefix is taken from the counts, and the kept samples are copied into place. (Marching
    /// twice — once to count, once to write at the final offsets — took 18% of a lego run's time.)
    func placeSamples(_ rays: [LocalRay], jitters: [Float], maxSamples: Int, into activations: HashGridActivations,
                      dt: inout [Float]) -> (starts: [Int], counts: [Int], total: Int, included: [Bool]) {
        var counts = [Int](repeating: 0, count: rays.count)
        let occupied = densityGrid.occupied
        var starts = [Int](repeating: 0, count: rays.count)
        var included = [Bool](repeating: true, count: rays.count)
        var total = 0
        let pieces = max(1, min(CPUParallel.threadCount, rays.count / 64))
        while marchScratch.count < pieces { marchScratch.append(MarchScratch()) }
        let capacity = options.maxSamplesPerRay
        occupied.withUnsafeBufferPointer { occupied in
            var march = marchParameters(occupied.baseAddress!)
            let shared = UncheckedSendable((counts.withUnsafeMutableBufferPointer { $0.baseAddress! }, withUnsafePointer(to: &march) { $0 },
                                            marchScratch))
            CPUParallel.forEachChunk(pieces, costPerItem: 1_000_000) { pieceRange in
                let (counts, march, scratches) = shared.value
                for piece in pieceRange {
                    let scratch = scratches[piece]
                    scratch.offsets.removeAll(keepingCapacity: true)
                    var used = 0
                    for r in (rays.count * piece / pieces)..<(rays.count * (piece + 1) / pieces) {
                        if scratch.dt.count < used + capacity {
                            let size = max(2 * scratch.dt.count, used + capacity)
                            scratch.dt.append(contentsOf: repeatElement(0, count: size - scratch.dt.count))
                            scratch.positions.append(contentsOf: repeatElement(0, count: 3 * size - scratch.positions.count))
                        }
                        var o = rays[r].origin, d = rays[r].direction
                        let n = withUnsafePointer(to: &o) { o in withUnsafePointer(to: &d) { d in
                            scratch.positions.withUnsafeMutableBufferPointer { positions in
                                scratch.dt.withUnsafeMutableBufferPointer { dt in
                                    Int(vkk_march_ray(march, UnsafeRawPointer(o).assumingMemoryBound(to: Float.self),
                                                      UnsafeRawPointer(d).assumingMemoryBound(to: Float.self), jitters[r],
                                                      positions.baseAddress! + 3 * used, dt.baseAddress! + used, Int32(capacity)))
                                }
                            }
                        } }
                        counts[r] = n
                        scratch.offsets.append(used)
                        used += n
                    }
                }
            }
            // The budget takes a prefix of the rays: once one ray does not fit, it and every later ray sit
            // out. Letting later rays in whenever they still fit would keep exactly the rays with few samples
            // (those through empty or carved space, trivially matched against their background) and drop
            // the rays through occupied fog, so the fog would never be trained away and the running PSNR
            // would measure the easy rays only. The rays are drawn independently, so a prefix is unbiased.
            var full = false
            for r in rays.indices {
                if full || total + counts[r] > maxSamples { full = true; counts[r] = 0; included[r] = false }
                starts[r] = total
                total += counts[r]
            }
            activations.reserve(total, network.configuration)
            if dt.count < total { dt = [Float](repeating: 0, count: total) }
            let destination = UncheckedSendable((activations.positions.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                                 activations.directions.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                                 dt.withUnsafeMutableBufferPointer { $0.baseAddress! }, marchScratch))
            let scale = cubeSize
            CPUParallel.forEachChunk(pieces, costPerItem: 1_000_000) { pieceRange in
                let (positions, directions, dt, scratches) = destination.value
                for piece in pieceRange {
                    let scratch = scratches[piece], first = rays.count * piece / pieces
                    for r in first..<(rays.count * (piece + 1) / pieces) where counts[r] > 0 {
                        let s = starts[r], n = counts[r], from = scratch.offsets[r - first]
                        scratch.positions.withUnsafeBufferPointer { (positions + 3 * s).update(from: $0.baseAddress! + 3 * from, count: 3 * n) }
                        let d = rays[r].direction
                        scratch.dt.withUnsafeBufferPointer { source in
                            for k in 0..<n {
                                directions[3 * (s + k)] = d.x; directions[3 * (s + k) + 1] = d.y; directions[3 * (s + k) + 2] = d.z
                                dt[s + k] = source[from + k] * scale
                            }
                        }
                    }
                }
            }
        }
        return (starts, counts, total, included)
    }

    // MARK: Training

    var sampleDt: [Float] = []
    var rgbGradient: [Float] = []
    var sigmaGradient: [Float] = []

    /// One training step (see the type's documentation). Throws only for Vulkan errors.
    @discardableResult
    public func trainStep() throws -> TrainingStepReport {
        try trainStep(updatingGrid: step % options.densityGridUpdateInterval == 0)
    }

    /// One step, with or without the density-grid update first (tests compare the backends' steps on one
    /// grid by updating it apart).
    func trainStep(updatingGrid: Bool) throws -> TrainingStepReport {
        let start = monotonicSeconds()
        if updatingGrid { try updateDensityGrid() }
        var clock = monotonicSeconds()
        func lap(_ phase: WritableKeyPath<TrainingTimings, Double>) {
            let now = monotonicSeconds()
            timings[keyPath: phase] += now - clock
            clock = now
        }
        timings.densityGrid += clock - start
        var generator = SeededGenerator(seed: options.seed, stream: 2 * UInt64(step))
        let rayCount = options.batchRays
        var rays: [LocalRay] = [], jitters: [Float] = [], targets: [SIMD3<Float>] = [], backgrounds: [SIMD3<Float>] = []
        rays.reserveCapacity(rayCount); jitters.reserveCapacity(rayCount); targets.reserveCapacity(rayCount); backgrounds.reserveCapacity(rayCount)
        let views = dataset.training
        for _ in 0..<rayCount {
            let view = views[Int(generator.next() % UInt64(views.count))]
            let u = generator.unitFloat() * Float(view.image.width), v = generator.unitFloat() * Float(view.image.height)
            let x = min(Int(u), view.image.width - 1), y = min(Int(v), view.image.height - 1)
            let background = options.randomBackground
                ? SIMD3(generator.unitFloat(), generator.unitFloat(), generator.unitFloat()) : options.evaluationBackground
            jitters.append(generator.unitFloat())
            rays.append(localRay(view.camera.ray(u: u, v: v)))
            targets.append(view.image.colour(x: x, y: y, over: background))
            backgrounds.append(background)
        }
        lap(\.raySampling)
        if let pipeline {
            return try deviceStep(pipeline, rays: rays, jitters: jitters, targets: targets, backgrounds: backgrounds, start: start)
        }
        let (starts, counts, total, included) = placeSamples(rays, jitters: jitters, maxSamples: options.maxSamplesPerStep,
                                                   into: activations, dt: &sampleDt)
        lap(\.marching)
        storedNetwork.forward(activations)
        lap(\.forward)
        if rgbGradient.count < 3 * total { rgbGradient = [Float](repeating: 0, count: 3 * total); sigmaGradient = [Float](repeating: 0, count: total) }
        // Composite, loss and compositing backward, per ray.
        var rayLoss = [Float](repeating: 0, count: rayCount), raySquaredError = [Float](repeating: 0, count: rayCount)
        var rayUsed = [Int](repeating: 0, count: rayCount)
        // Rays past the sample budget sit the step out: no loss, no gradient.
        let trainedRays = max(included.filter { $0 }.count, 1)
        let lossScale = 1 / Float(3 * trainedRays)
        let loss = options.loss, threshold = options.terminationThreshold
        let shared = UncheckedSendable((activations.rgb.withUnsafeBufferPointer { $0.baseAddress! },
                                        activations.sigma.withUnsafeBufferPointer { $0.baseAddress! },
                                        sampleDt.withUnsafeBufferPointer { $0.baseAddress! },
                                        rgbGradient.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                        sigmaGradient.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                        rayLoss.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                        raySquaredError.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                        rayUsed.withUnsafeMutableBufferPointer { $0.baseAddress! }))
        CPUParallel.forEachChunk(rayCount, costPerItem: 400) { range in
            let (rgb, sigma, dt, rgbGradient, sigmaGradient, rayLoss, raySquaredError, rayUsed) = shared.value
            for r in range where included[r] {
                let s = starts[r], n = counts[r]
                let result = VolumeCompositing.forward(rgb: rgb + 3 * s, sigma: sigma + s, dt: dt + s, count: n,
                                                       background: backgrounds[r], threshold: threshold)
                var colourGradient = SIMD3<Float>(repeating: 0)
                var total: Float = 0, squared: Float = 0
                for c in 0..<3 {
                    let (l, g) = loss.evaluate(prediction: result.colour[c], target: targets[r][c])
                    total += l
                    colourGradient[c] = g * lossScale
                    let d = result.colour[c] - targets[r][c]
                    squared += d * d
                }
                rayLoss[r] = total / 3
                raySquaredError[r] = squared / 3
                rayUsed[r] = result.used
                if n > 0 {
                    VolumeCompositing.backward(rgb: rgb + 3 * s, sigma: sigma + s, dt: dt + s, count: n, result: result,
                                               colourGradient: colourGradient, rgbGradient: rgbGradient + 3 * s,
                                               sigmaGradient: sigmaGradient + s)
                }
            }
        }
        lap(\.compositing)
        // Only the samples before each ray's early termination reach the backward pass: the others have a
        // zero gradient (instant-ngp's compaction). Rays past the sample budget keep none.
        let keep = (0..<rayCount).map { included[$0] ? rayUsed[$0] : 0 }
        if options.compactBackward { rgbGradient.withUnsafeMutableBufferPointer { rgbGradient in
            sigmaGradient.withUnsafeMutableBufferPointer { sigmaGradient in
                _ = activations.compact(starts: starts, keep: keep, configuration: storedNetwork.configuration,
                                        extra: [(rgbGradient.baseAddress!, 3), (sigmaGradient.baseAddress!, 1)])
            }
        } }
        lap(\.compaction)
        do {
            let scatterSeconds = rgbGradient.withUnsafeBufferPointer { rgbGradient in
                sigmaGradient.withUnsafeBufferPointer { sigmaGradient in
                    gradients.withUnsafeMutableBufferPointer { gradients in
                        storedNetwork.backward(activations, rgbGradient: rgbGradient.baseAddress!, sigmaGradient: sigmaGradient.baseAddress!,
                                         gradients: gradients.baseAddress!, scratch: scratch)
                    }
                }
            }
            timings.hashScatter += scatterSeconds
            lap(\.backward)
            optimizer.step(parameters: &storedNetwork.parameters, gradients: &gradients, options: options, learningRate: learningRate)
        }
        if let decay = options.emaDecay { updateAverage(decay: decay, step: step + 1) }
        lap(\.optimizer)
        return finishStep(rayLoss: rayLoss, raySquaredError: raySquaredError, usedSamples: rayUsed.reduce(0, +), trainedRays: trainedRays,
                          samples: total, start: start)
    }

    /// Counts the step and makes its report (losses summed in ray order).
    func finishStep(rayLoss: [Float], raySquaredError: [Float], usedSamples: Int, trainedRays: Int, samples: Int, start: Double) -> TrainingStepReport {
        timings.samples += samples
        timings.usedSamples += usedSamples
        step += 1
        let meanLoss = rayLoss.reduce(0, +) / Float(trainedRays)
        let mse = raySquaredError.reduce(0, +) / Float(trainedRays)
        let report = TrainingStepReport(step: step, loss: meanLoss, psnr: psnr(meanSquaredError: mse), rays: trainedRays, samples: samples,
                                        usedSamples: usedSamples, seconds: monotonicSeconds() - start)
        lastReport = report
        return report
    }

    /// tiny-cuda-nn's `ema_step_half_precision` after Adam's `step`-th update: e ← fp16((e·d·(1 − d^(step−1))
    /// + fp16(θ)·(1 − d)) / (1 − d^step)), starting from e = 0 (so the first step copies the weights).
    func updateAverage(decay d: Float, step k: Int) {
        let count = network.parameters.count
        if storedEmaWeights == nil { storedEmaWeights = [Float16](repeating: 0, count: count) }
        let (debiasOld, debiasNew) = Self.averageDebias(decay: d, step: k)
        let shared = UncheckedSendable((storedEmaWeights!.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                        network.parameters.withUnsafeBufferPointer { $0.baseAddress! }))
        CPUParallel.forEachChunk(count, costPerItem: 2) { range in
            let (ema, theta) = shared.value
            for i in range {
                ema[i] = Float16((Float(ema[i]) * d * debiasOld + Float(Float16(theta[i])) * (1 - d)) * debiasNew)
            }
        }
    }

    /// The average's debiasing factors after the `k`-th update: (1 − d^(k−1), 1/(1 − d^k)), in fp32 from
    /// fp64 powers (the host's loop and train_weight_average use the same values).
    static func averageDebias(decay d: Float, step k: Int) -> (old: Float, new: Float) {
        (1 - Float(pow(Double(d), Double(k - 1))), 1 / (1 - Float(pow(Double(d), Double(k)))))
    }

    /// Runs `body` with the inference weights (the moving average, when there is one) in the network.
    func withInferenceWeights<T>(_ body: () -> T) -> T {
        guard let ema = emaWeights else { return body() }
        let trained = network.parameters
        network.parameters = ema.map { Float($0) }
        defer { network.parameters = trained }
        return body()
    }

    /// Updates the density grid from the field (see ``TrainingDensityGrid``); on a Vulkan context on the
    /// device (``VulkanDensityGrid``), from the same cells and points the CPU path would draw. Throws only
    /// for Vulkan errors.
    public func updateDensityGrid() throws {
        let grid = storedGrid
        let bounds = dataset.bounds
        let scale = minimumStep * cubeSize
        let warmup = step < options.densityGridWarmupSteps
        if let pipeline {
            // The device draws the cells itself (the same DensityGridDraws) and reads its own occupancy.
            try pipeline.grid.update(seed: options.seed, step: step, warmup: warmup, unitCube: grid.unitCube, bounds: bounds, scale: scale,
                                     decay: options.densityGridDecay, network: pipeline.network)
            grid.countDeviceUpdate()
            hostGridStale = true
            return
        }
        let (indices, positions) = grid.updateSamples(step: step, warmupSteps: options.densityGridWarmupSteps, seed: options.seed)
        var thickness = [Float](repeating: 0, count: indices.count)
        let chunk = 1 << 16
        var unit = [Float](repeating: 0, count: 3 * chunk), zeros = [Float](repeating: 0, count: 3 * chunk)
        zeros[0] = 1
        for begin in stride(from: 0, to: indices.count, by: chunk) {
            let n = min(chunk, indices.count - begin)
            var inside = [Bool](repeating: false, count: n)
            for k in 0..<n {
                let p = SIMD3(positions[3 * (begin + k)], positions[3 * (begin + k) + 1], positions[3 * (begin + k) + 2])
                let x = (p - bounds.lower) / bounds.size
                inside[k] = all(x .>= 0) && all(x .<= 1)
                unit[3 * k] = x.x; unit[3 * k + 1] = x.y; unit[3 * k + 2] = x.z
            }
            unit.withUnsafeBufferPointer { u in
                zeros.withUnsafeBufferPointer { z in
                    inferenceActivations.setInputs(positions: u.baseAddress!, directions: z.baseAddress!, count: n, configuration: storedNetwork.configuration)
                }
            }
            storedNetwork.forward(inferenceActivations, densityOnly: true)
            for k in 0..<n where inside[k] { thickness[begin + k] = inferenceActivations.sigma[k] * scale }
        }
        grid.applyUpdate(indices: indices, thickness: thickness, decay: options.densityGridDecay)
    }

    // MARK: Evaluation

    /// Renders `camera` with the current fp32 network and density grid (no jitter), composited over
    /// `background`: width × height × 3 values, rows top first.
    public func render(camera: Camera, background: SIMD3<Float>) -> [Float] {
        let pixels = (0..<(camera.width * camera.height)).map { SIMD2($0 % camera.width, $0 / camera.width) }
        return render(camera: camera, pixels: pixels, background: background)
    }

    /// Renders the centres of `pixels` (x, y) of `camera`: 3 values per pixel, in the given order.
    public func render(camera: Camera, pixels: [SIMD2<Int>], background: SIMD3<Float>) -> [Float] {
        withInferenceWeights { renderWithCurrentWeights(camera: camera, pixels: pixels, background: background) }
    }

    func renderWithCurrentWeights(camera: Camera, pixels: [SIMD2<Int>], background: SIMD3<Float>) -> [Float] {
        var image = [Float](repeating: 0, count: 3 * pixels.count)
        let chunk = 8192
        var dt: [Float] = []
        // Rays in chunks, and each chunk's samples within the training step's budget: the prefix of rays
        // that fits is rendered and the rest go to the next round (one ray always fits: maxSamplesPerRay is
        // below the budget). Without the budget a chunk of 8192 rays through fog could mark 8 M samples,
        // whose activations (~300 floats each) took fox's evaluations to ~3.9 GB.
        var begin = 0
        while begin < pixels.count {
            var n = min(chunk, pixels.count - begin)
            let rays = (0..<n).map { k in localRay(camera.ray(pixelX: pixels[begin + k].x, pixelY: pixels[begin + k].y)) }
            let (starts, counts, _, included) = placeSamples(rays, jitters: [Float](repeating: 0, count: n),
                                                             maxSamples: max(options.maxSamplesPerStep, options.maxSamplesPerRay),
                                                             into: inferenceActivations, dt: &dt)
            n = max(included.firstIndex(of: false) ?? n, 1)
            network.forward(inferenceActivations)
            inferenceActivations.rgb.withUnsafeBufferPointer { rgb in
                inferenceActivations.sigma.withUnsafeBufferPointer { sigma in
                    dt.withUnsafeBufferPointer { dt in
                        for k in 0..<n {
                            let result = VolumeCompositing.forward(rgb: rgb.baseAddress! + 3 * starts[k], sigma: sigma.baseAddress! + starts[k],
                                                                   dt: dt.baseAddress! + starts[k], count: counts[k], background: background,
                                                                   threshold: options.terminationThreshold)
                            for c in 0..<3 { image[3 * (begin + k) + c] = result.colour[c] }
                        }
                    }
                }
            }
            begin += n
        }
        return image
    }

    /// PSNR of a view rendered over the evaluation background against its image composited over it, on
    /// every `stride`-th pixel of every `stride`-th row (1: all pixels; larger strides estimate the
    /// PSNR from a regular subset, for quick evaluations during long runs).
    public func psnr(of view: TrainingView, stride step: Int = 1) -> Float {
        let background = options.evaluationBackground
        let s = max(step, 1)
        var pixels: [SIMD2<Int>] = []
        for y in Swift.stride(from: s / 2, to: view.image.height, by: s) {
            for x in Swift.stride(from: s / 2, to: view.image.width, by: s) { pixels.append(SIMD2(x, y)) }
        }
        let rendered = render(camera: view.camera, pixels: pixels, background: background)
        var sum: Double = 0
        for (k, p) in pixels.enumerated() {
            let target = view.image.colour(x: p.x, y: p.y, over: background)
            for c in 0..<3 { let d = Double(rendered[3 * k + c] - target[c]); sum += d * d }
        }
        return psnr(meanSquaredError: Float(sum / Double(3 * pixels.count)))
    }

    func psnr(meanSquaredError mse: Float) -> Float { mse > 0 ? -10 * log10f(mse) : .infinity }

    /// The current fp16 field (the inference weights: the moving average when `emaDecay` is set) with the
    /// density grid, in the dataset's world.
    public func makeField(name: String = "hashgrid") throws -> HashGridField {
        if let ema = emaWeights {
            return try HashGridField(name: name, configuration: network.configuration, parameters: ema, bounds: dataset.bounds,
                                     densityGrid: try densityGrid.snapshotGrid())
        }
        return try network.makeField(name: name, bounds: dataset.bounds, densityGrid: try densityGrid.snapshotGrid())
    }

    // MARK: Snapshots

    /// The current state as an instant-ngp snapshot: the fp16 field and density grid, the config this
    /// trainer runs (loss, optimizer), the step, loss and batch sizes, and — when `includeOptimizerState`
    /// — Adam's moments and per-parameter steps plus the fp32 master weights and fp32 density grid
    /// (vkk keys instant-ngp ignores), so that ``resume(from:)`` continues exactly.
    /// Throws when the capture is not in instant-ngp's world (cascade 0 = the unit cube [0, 1]³), whose σ
    /// and box a snapshot assumes.
    public func snapshot(includeOptimizerState: Bool = true) throws -> NGPSnapshot {
        guard dataset.unitCube == AABB(lower: SIMD3(repeating: 0), upper: SIMD3(repeating: 1)) else {
            throw SnapshotError("the capture's unit cube is \(dataset.unitCube), a snapshot needs instant-ngp's world ([0, 1]³): σ is per world unit")
        }
        var training = NGPTrainingState()
        training.step = step
        training.loss = lastReport?.loss ?? 0
        training.raysPerBatch = options.batchRays
        training.measuredBatchSize = lastReport?.usedSamples ?? 0
        training.measuredBatchSizeBeforeCompaction = lastReport?.samples ?? 0
        var adam: NGPAdamState? = nil
        if includeOptimizerState {
            var state: (firstMoments: [Float], secondMoments: [Float], steps: [UInt32]) =
                (optimizer.firstMoments, optimizer.secondMoments, optimizer.steps)
            if let deviceNetwork { state = try deviceNetwork.adamState() }
            adam = NGPAdamState(currentStep: step, learningRate: options.learningRate, learningRateFactor: learningRate / options.learningRate,
                                firstMoments: state.firstMoments, secondMoments: state.secondMoments, parameterSteps: state.steps)
        }
        var snapshot = NGPSnapshot(field: try makeField(), aabbScale: dataset.aabbScale, options: options, training: training, adam: adam,
                                   fullPrecisionParameters: includeOptimizerState ? network.parameters : nil)
        snapshot.emaWeights = includeOptimizerState ? emaWeights : nil
        if includeOptimizerState {
            let bytes = NGPSnapshot.littleEndian(densityGrid.values.map(\.bitPattern))
            var state = snapshot.document["snapshot"] ?? .map([])
            state = state.setting("vkk", (state["vkk"] ?? .map([])).setting("density_grid_full_precision_binary", .binary(bytes)))
            snapshot.document = snapshot.document.setting("snapshot", state)
        }
        return snapshot
    }

    /// The largest step a snapshot may resume from (2^24; instant-ngp trains for tens of thousands).
    public static let maximumResumeStep = 1 << 24

    /// Continues from `snapshot` (one this trainer's configuration and dataset produced): weights, density
    /// grid, Adam state and step. Without the fp32 keys ``snapshot(includeOptimizerState:)`` adds, the fp16
    /// weights and grid are widened (as instant-ngp resumes); without Adam state the moments start at 0.
    /// Throws when the network, aabb_scale or density grid does not match this trainer's.
    public func resume(from snapshot: NGPSnapshot) throws {
        func refuse(_ what: String) -> SnapshotError { SnapshotError("cannot resume: \(what)") }
        guard snapshot.configuration == network.configuration else {
            throw refuse("the snapshot's network (\(snapshot.configuration)) differs from the trainer's (\(network.configuration))")
        }
        guard snapshot.aabbScale == dataset.aabbScale else {
            throw refuse("aabb_scale \(Int(snapshot.aabbScale)) but the capture's is \(Int(dataset.aabbScale))")
        }
        guard snapshot.colorActivation == .logistic else { throw refuse("HDR (exponential colour) snapshots are not trained here") }
        var gridValues: [Float]? = nil
        if let grid = snapshot.densityGrid {
            guard grid.resolution == densityGrid.resolution, grid.cascades == densityGrid.cascades else {
                throw refuse("density grid \(grid.cascades)×\(grid.resolution)³, the trainer's is \(densityGrid.cascades)×\(densityGrid.resolution)³")
            }
            gridValues = grid.values.map { Float($0) }
            if let raw = snapshot.document["snapshot"]?["vkk"]?["density_grid_full_precision_binary"] {
                guard let bytes = raw.binaryBytes, bytes.count == 4 * densityGrid.values.count else {
                    throw refuse("snapshot.vkk.density_grid_full_precision_binary is not \(densityGrid.values.count) float32 values")
                }
                gridValues = NGPSnapshot.floats(bytes)
            }
        }
        let weights = snapshot.fullPrecisionParameters ?? snapshot.parameters.map { Float($0) }
        let steps = snapshot.training.step
        // Adam's debiasing table grows by one entry per step: bound what a file can ask for.
        guard (0...Self.maximumResumeStep).contains(steps) else { throw refuse("training_step \(steps) is outside 0…\(Self.maximumResumeStep)") }
        if let adam = snapshot.adam {
            guard adam.currentStep == steps else { throw refuse("Adam's current_step \(adam.currentStep) differs from training_step \(steps)") }
            try optimizer.restore(firstMoments: adam.firstMoments, secondMoments: adam.secondMoments, steps: adam.parameterSteps,
                                  updates: steps, options: options)
        } else {
            let n = network.parameters.count
            try optimizer.restore(firstMoments: [Float](repeating: 0, count: n), secondMoments: [Float](repeating: 0, count: n),
                                  steps: [UInt32](repeating: 0, count: n), updates: steps, options: options)
        }
        if let gridValues {
            let interval = options.densityGridUpdateInterval
            try syncHost()
            try storedGrid.restore(values: gridValues, updates: (steps + interval - 1) / interval)
            try pipeline?.grid.upload(storedGrid)
        }
        network.parameters = weights
        if let deviceNetwork {
            try deviceNetwork.setParameters(weights)
            try deviceNetwork.restoreAdam(firstMoments: optimizer.firstMoments, secondMoments: optimizer.secondMoments, steps: optimizer.steps,
                                          updates: steps, options: options)
        }
        // The average: the snapshot's; else its fp16 inference weights (what instant-ngp rendered).
        storedEmaWeights = options.emaDecay == nil || steps == 0 ? nil : (snapshot.emaWeights ?? snapshot.parameters)
        hostAverageStale = false
        try deviceNetwork?.setAverage(storedEmaWeights)
        step = steps
        lastReport = nil
    }
}
