import Synchronization
/// Renders a ``RadianceField`` seen by a ``Camera`` on a context's backend.
///
/// The frame is marched in rounds, so that work stays balanced when rays end at very different depths:
/// each round, every live ray places up to k samples (skipping empty space through the
/// ``OccupancyGrid``), the field evaluates all placed samples as one batch, and the compositor
/// accumulates them front to back and writes the rays that are still alive into a compact list for the
/// next round. k grows as rays die (k = samples budget / live rays, capped at `maxStepsPerRound`), so
/// the first rounds waste few evaluations past early termination and the last rounds stay large.
///
/// ```swift
/// let context = try ComputeContext()
/// let renderer = Renderer(context: context)
/// let image = try renderer.render(field: BuiltInScene.shell.makeField(),
///                                 camera: .orbit(frame: 0, of: 1, width: 800, height: 800))
/// try PNG.write(image, to: "render.png")
/// ```
public final class Renderer: @unchecked Sendable {
    public let context: ComputeContext
    private struct Caches {
        var grids: [GridKey: OccupancyGrid] = [:]
        /// The fields the grids describe, kept alive so that their identities are never reused.
        var fields: [ObjectIdentifier: RadianceField] = [:]
    }
    private let caches = Mutex(Caches())

    private struct GridKey: Hashable {
        let field: ObjectIdentifier
        let settings: OccupancyGrid.Settings
    }

    /// Drops every cached grid (and the references to their fields).
    public func clearCaches() {
        caches.withLock { $0 = Caches() }
    }

    public init(context: ComputeContext) { self.context = context }

    /// The occupancy grid of `field` for `settings`, built on first use and kept (the field must not change).
    /// A ``HashGridField`` with a density grid (a trained or loaded instant-ngp snapshot) uses that grid
    /// unless `settings.useFieldDensityGrid` is false.
    public func occupancyGrid(for field: RadianceField, settings: OccupancyGrid.Settings = .init()) throws -> OccupancyGrid {
        let key = GridKey(field: ObjectIdentifier(field), settings: settings)
        if let grid = caches.withLock({ $0.grids[key] }) { return grid }
        let grid: OccupancyGrid
        if settings.useFieldDensityGrid, let hashGrid = field as? HashGridField, let density = hashGrid.densityGrid {
            grid = try density.occupancyGrid(bounds: field.bounds, levels: settings.levels)
        } else {
            grid = try OccupancyGrid.build(from: field, on: context, settings: settings)
        }
        caches.withLock { $0.grids[key] = grid; $0.fields[key.field] = field }
        return grid
    }

    /// Replaces the grid used for `field` (e.g. the density grid loaded with a snapshot).
    public func setOccupancyGrid(_ grid: OccupancyGrid, for field: RadianceField) {
        let key = GridKey(field: ObjectIdentifier(field), settings: grid.settings)
        caches.withLock { $0.grids[key] = grid; $0.fields[key.field] = field }
    }

    /// The grid's words on the context's device, uploaded once per grid (the context's ``ResidentCache``,
    /// keyed by the grid object: a replaced grid gets its own upload).
    func deviceWords(of grid: OccupancyGrid) throws -> Tensor<UInt32> {
        try context.resident.value(for: grid) {
            ResidentOccupancyWords(words: try context.residentTensor(grid.words, shape: [grid.words.count]))
        }.words
    }

    /// Throws unless ``render(field:camera:options:)`` can render `camera` (for callers that check a list
    /// of cameras before rendering any).
    public static func validate(_ camera: Camera) throws {
        guard camera.width > 0, camera.height > 0, let pixels = checkedProduct([camera.width, camera.height]), pixels <= maximumPixels,
              camera.focalX.isFinite, camera.focalY.isFinite, camera.focalX != 0, camera.focalY != 0,
              camera.principalX.isFinite, camera.principalY.isFinite,
              camera.distortion.coefficients.allSatisfy(\.isFinite) else {
            throw KernelError.invalidParameter(op: "render", name: "camera (at most \(maximumPixels) pixels, finite non-zero focal lengths)",
                                               value: "\(camera.width)×\(camera.height), focal \(camera.focalX), \(camera.focalY), principal point \(camera.principalX), \(camera.principalY), \(camera.distortion)")
        }
        if let problem = camera.cameraToWorld.degeneracy {
            throw KernelError.invalidParameter(op: "render", name: "camera pose", value: "the camera-to-world matrix \(problem)")
        }
    }

    /// The most pixels (width × height) one frame may have.
    public static let maximumPixels = 1 << 24

    /// Renders one frame. Throws ``KernelError`` for invalid options, a camera with no pixels or more than
    /// ``maximumPixels``, non-finite intrinsics, or a non-finite or singular pose.
    public func render(field: RadianceField, camera: Camera, options: RenderOptions = RenderOptions()) throws -> RenderedImage {
        try options.validate()
        try Self.validate(camera)
        let grid = options.skipEmptySpace ? try occupancyGrid(for: field, settings: options.occupancy) : OccupancyGrid.full(bounds: field.bounds)
        let (minimum, maximum, ratio) = options.resolvedStep(for: field.bounds).parameters
        let parameters = MarchParameters(grid: grid, useGrid: options.skipEmptySpace, minimumStep: minimum, maximumStep: maximum, stepRatio: ratio)
        let start = monotonicSeconds()
        var frame = switch context.backend {
        case .vulkan: try renderOnVulkan(field: field, camera: camera, options: options, parameters: parameters)
        case .cpu: try renderOnCPU(field: field, camera: camera, options: options, parameters: parameters)
        }
        frame.seconds = monotonicSeconds() - start
        return frame
    }

    /// Averages each pixel's rays into the image.
    static func resolve(width: Int, height: Int, samplesPerPixel spp: Int, background: SIMD3<Float>,
                        colour: (Int) -> SIMD4<Float>, depthSum: (Int) -> Float, samples: (Int) -> UInt32) -> RenderedImage {
        let pixels = width * height
        var rgb = [Float](repeating: 0, count: 3 * pixels)
        var opacity = [Float](repeating: 0, count: pixels)
        var depth = [Float](repeating: 0, count: pixels)
        var perRay = [Float](repeating: 0, count: pixels)
        var total = 0
        let scale = 1 / Float(spp)
        for pixel in 0..<pixels {
            var c = SIMD3<Float>(repeating: 0)
            var a: Float = 0, d: Float = 0, s: Float = 0
            for ray in (pixel * spp)..<(pixel * spp + spp) {
                let value = colour(ray)
                let alpha = 1 - value.w
                c += SIMD3(value.x, value.y, value.z) + value.w * background
                a += alpha
                d += alpha > 1e-6 ? depthSum(ray) / alpha : 0
                let count = samples(ray)
                s += Float(count)
                total += Int(count)
            }
            rgb[3 * pixel] = c.x * scale; rgb[3 * pixel + 1] = c.y * scale; rgb[3 * pixel + 2] = c.z * scale
            opacity[pixel] = a * scale
            depth[pixel] = d * scale
            perRay[pixel] = s * scale
        }
        return RenderedImage(width: width, height: height, rgb: rgb, opacity: opacity, depth: depth, samplesPerRay: perRay,
                             rayCount: pixels * spp, sampleCount: total, rounds: 0, seconds: 0)
    }

    /// Steps per ray for the next round with `live` rays alive.
    static func stepsPerRound(live: Int, rays: Int, options: RenderOptions) -> Int {
        let budget = min(options.maxSamplesPerRound, max(2 * rays, 1 << 16))
        return max(1, min(options.maxStepsPerRound, budget / max(live, 1), options.maxSamplesPerRound / max(live, 1)))
    }
}

/// An occupancy grid's bitfield on one context.
struct ResidentOccupancyWords: Sendable {
    let words: Tensor<UInt32>
}
