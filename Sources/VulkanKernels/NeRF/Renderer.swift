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
    private let lock = NSLockLike()
    private var grids: [GridKey: OccupancyGrid] = [:]
    private var deviceGrids: [GridKey: Tensor<UInt32>] = [:]
    /// The fields the caches describe, kept alive so that their identities are never reused.
    private var fields: [ObjectIdentifier: RadianceField] = [:]

    private struct GridKey: Hashable {
        let field: ObjectIdentifier
        let settings: OccupancyGrid.Settings
    }

    /// Drops every cached grid (and the references to their fields).
    public func clearCaches() {
        lock.withLock { grids.removeAll(); deviceGrids.removeAll(); fields.removeAll() }
    }

    public init(context: ComputeContext) { self.context = context }

    /// The occupancy grid of `field` for `settings`, built on first use and kept (the field must not change).
    public func occupancyGrid(for field: RadianceField, settings: OccupancyGrid.Settings = .init()) throws -> OccupancyGrid {
        let key = GridKey(field: ObjectIdentifier(field), settings: settings)
        if let grid = lock.withLock({ grids[key] }) { return grid }
        let grid = try OccupancyGrid.build(from: field, on: context, settings: settings)
        lock.withLock { grids[key] = grid; fields[key.field] = field }
        return grid
    }

    /// Replaces the grid used for `field` (e.g. the density grid loaded with a snapshot).
    public func setOccupancyGrid(_ grid: OccupancyGrid, for field: RadianceField) {
        let key = GridKey(field: ObjectIdentifier(field), settings: grid.settings)
        lock.withLock { grids[key] = grid; deviceGrids[key] = nil; fields[key.field] = field }
    }

    func deviceWords(of grid: OccupancyGrid, field: RadianceField) throws -> Tensor<UInt32> {
        let key = GridKey(field: ObjectIdentifier(field), settings: grid.settings)
        if let cached = lock.withLock({ deviceGrids[key] }), grids[key] === grid { return cached }
        let tensor = try context.tensor(grid.words, shape: [grid.words.count])
        lock.withLock { deviceGrids[key] = tensor }
        return tensor
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
        var frame = context.isVulkan
            ? try renderOnVulkan(field: field, camera: camera, options: options, parameters: parameters)
            : try renderOnCPU(field: field, camera: camera, options: options, parameters: parameters)
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

    // MARK: CPU

    private func renderOnCPU(field: RadianceField, camera: Camera, options: RenderOptions, parameters: MarchParameters) throws -> RenderedImage {
        let spp = options.samplesPerPixel
        let rayCount = camera.width * camera.height * spp
        let bounds = field.bounds
        var states = [RayState?](repeating: nil, count: rayCount)
        states.withUnsafeMutableBufferPointer { buffer in
            let shared = UncheckedSendable(buffer)
            CPUParallel.forEachChunk(rayCount, costPerItem: 100) { range in
                for i in range {
                    shared.value[i] = MarchParameters.generateRay(index: i, camera: camera, samplesPerPixel: spp, bounds: bounds)
                }
            }
        }
        var live = states.indices.filter { states[$0] != nil }
        var rounds = 0
        while !live.isEmpty {
            rounds += 1
            let k = Self.stepsPerRound(live: live.count, rays: rayCount, options: options)
            // March every live ray (in parallel), each into its own list of steps.
            var stepLists = [[(Float, Float)]](repeating: [], count: live.count)
            states.withUnsafeMutableBufferPointer { stateBuffer in
                stepLists.withUnsafeMutableBufferPointer { lists in
                    let shared = UncheckedSendable((stateBuffer, lists, live))
                    CPUParallel.forEachChunk(live.count, costPerItem: 200 * k) { range in
                        let (stateBuffer, lists, live) = shared.value
                        for j in range {
                            var state = stateBuffer[live[j]]!
                            var steps: [(Float, Float)] = []
                            steps.reserveCapacity(k)
                            parameters.march(&state, maxSteps: k, into: &steps)
                            stateBuffer[live[j]] = state
                            lists[j] = steps
                        }
                    }
                }
            }
            // One batch of samples for the field, rays' samples contiguous.
            var offsets = [Int](repeating: 0, count: live.count + 1)
            for j in live.indices { offsets[j + 1] = offsets[j] + stepLists[j].count }
            let total = offsets[live.count]
            var samples = [Float](repeating: 0, count: 8 * total)
            for j in live.indices {
                let state = states[live[j]]!
                for (n, (t, _)) in stepLists[j].enumerated() {
                    let p = state.origin + t * state.direction, base = 8 * (offsets[j] + n)
                    samples[base] = p.x; samples[base + 1] = p.y; samples[base + 2] = p.z
                    samples[base + 4] = state.direction.x; samples[base + 5] = state.direction.y; samples[base + 6] = state.direction.z
                }
            }
            // Four spare floats so the pointer below exists even when no ray placed a sample.
            let radiance = field.evaluate(samples: samples) + [0, 0, 0, 0]
            var next: [Int] = []
            next.reserveCapacity(live.count)
            radiance.withUnsafeBufferPointer { radiance in
                for j in live.indices {
                    var state = states[live[j]]!
                    let alive = MarchParameters.composite(&state, steps: stepLists[j][...], radiance: radiance.baseAddress! + 4 * offsets[j],
                                                          threshold: options.terminationThreshold)
                    states[live[j]] = state
                    if alive { next.append(live[j]) }
                }
            }
            live = next
        }
        var image = Self.resolve(width: camera.width, height: camera.height, samplesPerPixel: spp, background: options.background,
                                 colour: { i in states[i].map { SIMD4($0.colour, $0.transmittance) } ?? SIMD4(0, 0, 0, 1) },
                                 depthSum: { states[$0]?.depthSum ?? 0 }, samples: { states[$0]?.samples ?? 0 })
        image.rounds = rounds
        return image
    }
}
