import Glibc

/// How far apart samples lie along a ray.
public enum StepSize: Sendable, Equatable {
    /// Every step has this length (world units).
    case fixed(Float)
    /// instant-ngp's exponential stepping: dt = clamp(t·ratio, minimum, maximum), so steps grow with
    /// distance from the camera (t is the distance along the ray).
    case exponential(minimum: Float, maximum: Float, ratio: Float)

    /// `count` equal steps across the diagonal of `bounds` (the default is 768).
    public static func uniform(_ count: Int, across bounds: AABB) -> StepSize { .fixed(length(bounds.size) / Float(count)) }

    /// (minimum, maximum, ratio) as the kernels read them.
    var parameters: (Float, Float, Float) {
        switch self {
        case .fixed(let step): (step, step, 0)
        case let .exponential(minimum, maximum, ratio): (minimum, maximum, ratio)
        }
    }
}

/// Settings of one ``Renderer/render(field:camera:options:)`` call.
public struct RenderOptions: Sendable {
    /// Rays per pixel, at fixed sub-pixel positions (an R2 low-discrepancy pattern; 1 = pixel centre).
    public var samplesPerPixel = 1
    /// Colour seen where the field leaves transmittance (composited as C + T·background).
    public var background = SIMD3<Float>(1, 1, 1)
    /// Step along rays; nil = 768 steps across the field's bounding-box diagonal. (1024 until 2026-12-06:
    /// `vkk bench nerf` at 400×400 on the CPU path measured 768 against 1024 steps at 10.2 against 12.5
    /// evaluations per hit ray on `shell`, PSNR to the float64 reference 64.3 / 69.9 dB; `cloud` 88.4 /
    /// 88.3 dB, `spheres` 87.9 / 92.1 dB. 512 steps still gave ≥ 54.9 dB.)
    public var step: StepSize? = nil
    /// A ray stops once its transmittance falls below this (0 = never stop early). The colour it would
    /// still have gathered is at most this value per channel.
    public var terminationThreshold: Float = 1e-4
    /// Skip empty space with an ``OccupancyGrid``; false marches every step through the bounding box.
    public var skipEmptySpace = true
    /// The occupancy grid used when skipping (built once per field, renderer and settings).
    public var occupancy = OccupancyGrid.Settings()
    /// At most this many samples are evaluated per marching round (bounds the sample buffers).
    public var maxSamplesPerRound = 1 << 21
    /// At most this many steps per ray per round; rounds take fewer while many rays are alive.
    public var maxStepsPerRound = 16

    public init() {}

    func resolvedStep(for bounds: AABB) -> StepSize { step ?? .uniform(Self.defaultStepsPerDiagonal, across: bounds) }

    /// Steps across the bounding-box diagonal when ``step`` is nil.
    public static let defaultStepsPerDiagonal = 768

    /// Throws ``KernelError/invalidParameter(op:name:value:)`` for options ``Renderer`` would refuse (so a
    /// caller can check them before any work).
    public func validate() throws {
        let op = "render"
        guard (1...256).contains(samplesPerPixel) else {
            throw KernelError.invalidParameter(op: op, name: "samplesPerPixel", value: "\(samplesPerPixel) (1...256)")
        }
        guard background.x.isFinite, background.y.isFinite, background.z.isFinite else {
            throw KernelError.invalidParameter(op: op, name: "background", value: "\(background)")
        }
        guard terminationThreshold.isFinite, (0..<1).contains(terminationThreshold) else {
            throw KernelError.invalidParameter(op: op, name: "terminationThreshold", value: "\(terminationThreshold)")
        }
        if let step {
            let (minimum, maximum, ratio) = step.parameters
            guard minimum.isFinite, maximum.isFinite, ratio.isFinite, minimum > 0, maximum >= minimum, ratio >= 0 else {
                throw KernelError.invalidParameter(op: op, name: "step", value: "\(step)")
            }
        }
        guard maxSamplesPerRound >= 1024, (1...32).contains(maxStepsPerRound) else {
            throw KernelError.invalidParameter(op: op, name: "maxSamplesPerRound/maxStepsPerRound",
                                               value: "\(maxSamplesPerRound)/\(maxStepsPerRound)")
        }
        try occupancy.validate()
    }

    /// Sub-pixel position of ray `index` of a pixel, in [0, 1)² (R2 sequence, Roberts 2018).
    static func subpixelOffset(_ index: Int) -> SIMD2<Float> {
        if index == 0 { return SIMD2(0.5, 0.5) }
        let x = 0.5 + Float(index) * 0.7548776662, y = 0.5 + Float(index) * 0.5698402910
        return SIMD2(x - x.rounded(.down), y - y.rounded(.down))
    }
}

/// What a render produces, per pixel (row-major, top row first), averaged over its rays.
public struct RenderedImage: Sendable {
    public var width: Int
    public var height: Int
    /// Red, green, blue per pixel, background composited in.
    public var rgb: [Float]
    /// 1 − transmittance.
    public var opacity: [Float]
    /// Expected depth Σ wᵢ·tᵢ / Σ wᵢ (distance along the ray); 0 where nothing was hit.
    public var depth: [Float]
    /// Field evaluations per ray.
    public var samplesPerRay: [Float]
    /// Rays traced (pixels × samples per pixel) and field evaluations in total.
    public var rayCount: Int
    public var sampleCount: Int
    /// Marching rounds (march → evaluate → composite) the frame took.
    public var rounds: Int
    /// Wall-clock seconds of the render call (rays to host arrays; grid building excluded).
    public var seconds: Double

    /// Mean field evaluations per ray over the rays of pixels whose opacity exceeds `opacity`.
    public func meanSamplesPerRay(minimumOpacity: Float = 0.5) -> Double {
        var sum = 0.0, count = 0
        for i in opacity.indices where opacity[i] > minimumOpacity { sum += Double(samplesPerRay[i]); count += 1 }
        return count == 0 ? 0 : sum / Double(count)
    }
}

/// Peak signal-to-noise ratio in dB of two images with values in [0, 1].
public func psnr(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count && !a.isEmpty)
    var sum = 0.0
    for i in a.indices { let d = Double(a[i]) - Double(b[i]); sum += d * d }
    let mse = sum / Double(a.count)
    return mse == 0 ? .infinity : -10 * log10(mse)
}
