/// Settings of a ``NeRFTrainer``. Defaults are instant-ngp's (`configs/nerf/base.json` and its testbed's
/// NeRF constants) unless a comment says otherwise.
public struct TrainingOptions: Sendable {
    /// Rays per training step. (instant-ngp adapts its ray count towards 2^18 samples per step; here the
    /// ray count is fixed and `maxSamplesPerStep` bounds the work.)
    public var batchRays = 4096
    /// At most this many samples per step; rays past the budget sit the step out.
    public var maxSamplesPerStep = 1 << 18
    public var loss: TrainingLoss = .huber
    /// Seed of every random choice (rays, jitter, backgrounds, grid updates, initial weights).
    public var seed: UInt64 = 1337

    // Adam (tiny-cuda-nn's, with per-parameter step counts for the debiasing).
    public var learningRate: Float = 1e-2
    public var beta1: Float = 0.9
    public var beta2: Float = 0.99
    public var epsilon: Float = 1e-15
    /// L2 regularisation added to the gradient of MLP weights (not of the grid), as tiny-cuda-nn's Adam.
    public var l2Regularization: Float = 1e-6
    /// Exponential learning-rate decay (base.json's ExponentialDecay): lr · base^⌊(step − start)/interval + 1⌋
    /// once step ≥ start.
    public var decayStart = 20_000
    public var decayInterval = 10_000
    public var decayBase: Float = 0.33
    /// tiny-cuda-nn's `Ema` optimizer wrapper (base.json: 0.95): a debiased exponential moving average of
    /// the fp16 weights, kept in fp16, that renders, evaluations and snapshots use instead of the trained
    /// weights. nil (the default here): no average, the trained weights are rendered.
    public var emaDecay: Float? = nil

    // Marching.
    /// Steps across the unit cube's diagonal at the finest step (instant-ngp's `NERF_STEPS`).
    public var stepsPerDiagonal = 1024
    /// Exponential stepping: Δt = clamp(t·coneAngle, Δt_min, Δt_max). nil = instant-ngp's rule (0 for
    /// aabb_scale ≤ 1, 1/256 beyond).
    public var coneAngle: Float? = nil
    /// At most this many samples per ray.
    public var maxSamplesPerRay = 1024
    /// Rays stop once their transmittance drops below this.
    public var terminationThreshold: Float = 1e-4
    /// Composite images with alpha over a random background per ray (instant-ngp's training); evaluation
    /// always uses `evaluationBackground`.
    public var randomBackground = true
    public var evaluationBackground = SIMD3<Float>(1, 1, 1)

    // Density grid.
    public var densityGridResolution = 128
    public var densityGridUpdateInterval = 16
    public var densityGridWarmupSteps = 256
    public var densityGridDecay: Float = 0.95
    /// Back-propagate only the samples before each ray's early termination (instant-ngp's compaction; the
    /// others have a zero gradient). Off runs the backward pass over every marched sample — the same
    /// gradients up to the order in which exact zeros are added (for comparisons and benchmarks).
    public var compactBackward = true

    public init() {}

    func validate() throws {
        func check(_ ok: Bool, _ name: String, _ value: Any) throws {
            if !ok { throw KernelError.invalidParameter(op: "train", name: name, value: "\(value)") }
        }
        try check((1...(1 << 22)).contains(batchRays), "batchRays (1…4194304)", batchRays)
        try check((1...(1 << 24)).contains(maxSamplesPerStep), "maxSamplesPerStep", maxSamplesPerStep)
        try check(learningRate.isFinite && learningRate > 0, "learningRate", learningRate)
        try check((0..<1).contains(beta1) && (0..<1).contains(beta2), "beta1/beta2", (beta1, beta2))
        try check(epsilon.isFinite && epsilon >= 0, "epsilon", epsilon)
        try check(l2Regularization.isFinite && l2Regularization >= 0, "l2Regularization", l2Regularization)
        try check(decayInterval > 0 && decayBase > 0 && decayBase <= 1, "decay", (decayInterval, decayBase))
        try check(emaDecay.map { $0.isFinite && $0 >= 0 && $0 < 1 } ?? true, "emaDecay ([0, 1))", emaDecay ?? 0)
        try check((16...65536).contains(stepsPerDiagonal), "stepsPerDiagonal (16…65536)", stepsPerDiagonal)
        try check(coneAngle.map { $0.isFinite && $0 >= 0 && $0 < 1 } ?? true, "coneAngle", coneAngle ?? 0)
        try check((1...65536).contains(maxSamplesPerRay), "maxSamplesPerRay", maxSamplesPerRay)
        try check(terminationThreshold.isFinite && (0..<1).contains(terminationThreshold), "terminationThreshold", terminationThreshold)
        try check((1...1024).contains(densityGridUpdateInterval), "densityGridUpdateInterval", densityGridUpdateInterval)
        try check(densityGridWarmupSteps >= 0, "densityGridWarmupSteps", densityGridWarmupSteps)
        try check(densityGridDecay.isFinite && (0...1).contains(densityGridDecay), "densityGridDecay", densityGridDecay)
        try check([evaluationBackground.x, evaluationBackground.y, evaluationBackground.z].allSatisfy(\.isFinite), "evaluationBackground", evaluationBackground)
    }
}

/// What one training step did.
public struct TrainingStepReport: Sendable {
    public var step: Int
    /// Mean loss over the step's rays and channels.
    public var loss: Float
    /// PSNR of the step's rays against their targets (over the random backgrounds), a running quality estimate.
    public var psnr: Float
    /// Rays trained on (those within the sample budget).
    public var rays: Int
    public var samples: Int
    /// Samples before early termination (those that received gradients).
    public var usedSamples: Int
    public var seconds: Double
}

/// Where the time of the training steps went (seconds, summed over steps), and the samples they processed.
public struct TrainingTimings: Sendable, CustomStringConvertible {
    public var densityGrid: Double = 0
    public var raySampling: Double = 0
    public var marching: Double = 0
    public var forward: Double = 0
    public var compositing: Double = 0
    /// Dropping the samples past each ray's early termination before the backward pass.
    public var compaction: Double = 0
    /// The whole backward pass (MLPs and the hash-table scatter) over the kept samples.
    public var backward: Double = 0
    /// The part of `backward` spent scattering into the hash tables.
    public var hashScatter: Double = 0
    public var optimizer: Double = 0
    /// A Vulkan step's single command batch (march through Adam: its phases are not separable on the
    /// host, so the phases above stay 0 there, but for the host-side weight average in `optimizer`).
    public var deviceBatch: Double = 0
    public var samples = 0
    public var usedSamples = 0

    /// The field's forward and backward passes with compaction; on Vulkan the whole step's batch (which
    /// also holds the march, compositing and Adam).
    public var forwardAndBackward: Double { deviceBatch > 0 ? deviceBatch : forward + compaction + backward }

    public var total: Double { densityGrid + raySampling + marching + forward + compositing + compaction + backward + optimizer + deviceBatch }

    public var description: String {
        func f(_ v: Double) -> String { String(format: "%.2f", v) }
        let device = deviceBatch > 0 ? "device batch \(f(deviceBatch)) s, " : ""
        return "grid \(f(densityGrid)) s, rays \(f(raySampling)) s, \(device)march \(f(marching)) s, forward \(f(forward)) s, "
            + "composite+loss \(f(compositing)) s, compaction \(f(compaction)) s, backward \(f(backward)) s (hash scatter \(f(hashScatter)) s), "
            + "adam \(f(optimizer)) s; \(samples) samples, \(usedSamples) back-propagated"
    }
}
