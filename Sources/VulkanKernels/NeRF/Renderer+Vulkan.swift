/// The Vulkan path of ``Renderer``: generate_rays once, then rounds of march_rays → the field's
/// `encodeEvaluate` → composite_rays, one submit per round; the host reads the live count between
/// rounds to size the next one (so every dispatch covers exactly the live rays and placed samples).
extension Renderer {
    func renderOnVulkan(field: RadianceField, camera: Camera, options: RenderOptions, parameters: MarchParameters) throws -> RenderedImage {
        let spp = options.samplesPerPixel
        let rays = camera.width * camera.height * spp
        let info = context.deviceInfo!
        // The largest per-ray buffer (vec4 per ray) and the sample buffer must fit one storage binding.
        guard rays * 16 <= info.maxStorageBufferRange else {
            throw KernelError.exceedsDeviceLimit(op: "render", what: "rays per frame × 16 bytes", value: rays * 16,
                                                 limit: info.maxStorageBufferRange)
        }
        let capacity = min(options.maxSamplesPerRound, rays * options.maxStepsPerRound, info.maxStorageBufferRange / 32)
        let origins = try context.empty(Float.self, shape: [rays, 4])
        let directions = try context.empty(Float.self, shape: [rays, 4])
        let accumulation = try context.empty(Float.self, shape: [rays, 4])
        let bookkeeping = try context.empty(UInt32.self, shape: [rays, 4])
        var liveRays = try context.empty(UInt32.self, shape: [rays])
        var nextLive = try context.empty(UInt32.self, shape: [rays])
        let liveCount = try context.empty(UInt32.self, shape: [1])
        let sampleCount = try context.empty(UInt32.self, shape: [1])
        let samples = try context.empty(Float.self, shape: [capacity, 8])
        let steps = try context.empty(Float.self, shape: [capacity, 2])
        let radiance = try context.empty(Float.self, shape: [capacity, 4])
        let occupancy = try deviceWords(of: parameters.grid, field: field)

        let bounds = field.bounds
        try context.batch { batch in
            try Self.encodeGenerateRays(into: batch, camera: camera, samplesPerPixel: spp, bounds: bounds, origins: origins,
                                        directions: directions, accumulation: accumulation, bookkeeping: bookkeeping,
                                        liveRays: liveRays, liveCount: liveCount)
        }
        var live = Int(try liveCount.toArray()[0])
        let grid = parameters.grid
        let marchSpec = KernelSpec(shader: EmbeddedShader.nerf_march_rays, bindings: Array(repeating: .storageBuffer, count: 8),
                                   pushConstantBytes: 56, specialization: [64, 32])
        let compositeSpec = KernelSpec(shader: EmbeddedShader.nerf_composite_rays, bindings: Array(repeating: .storageBuffer, count: 9),
                                       pushConstantBytes: 8, specialization: [64])
        let marchConstants: [UInt32] = [UInt32(grid.settings.resolution), UInt32(grid.settings.levels), parameters.useGrid ? 1 : 0]
            + [parameters.minimumStep, parameters.maximumStep, parameters.stepRatio,
               bounds.lower.x, bounds.lower.y, bounds.lower.z, bounds.upper.x, bounds.upper.y, bounds.upper.z].map(\.bitPattern)
        var rounds = 0
        while live > 0 {
            rounds += 1
            let k = min(Self.stepsPerRound(live: live, rays: rays, options: options), max(1, capacity / live))
            let groups = ((live + 63) / 64, 1, 1)
            try context.batch { batch in
                try batch.fill(sampleCount.storage, word: 0)
                try batch.fill(liveCount.storage, word: 0)
                try batch.dispatch(marchSpec, [BufferBinding(liveRays.storage, .storageRead, byteCount: live * 4),
                                               BufferBinding(origins.storage, .storageReadWrite), BufferBinding(directions.storage, .storageRead),
                                               BufferBinding(occupancy.storage, .storageRead), BufferBinding(sampleCount.storage, .storageReadWrite),
                                               BufferBinding(samples.storage, .storageWrite, byteCount: live * k * 32),
                                               BufferBinding(steps.storage, .storageWrite, byteCount: live * k * 8),
                                               BufferBinding(bookkeeping.storage, .storageReadWrite)],
                                   push: [UInt32(live), UInt32(k)] + marchConstants, groups: groups)
                try field.encodeEvaluate(into: batch, samples: samples, sampleCount: sampleCount, capacity: live * k, output: radiance)
                try batch.dispatch(compositeSpec, [BufferBinding(liveRays.storage, .storageRead, byteCount: live * 4),
                                                   BufferBinding(origins.storage, .storageRead), BufferBinding(directions.storage, .storageRead),
                                                   BufferBinding(steps.storage, .storageRead, byteCount: live * k * 8),
                                                   BufferBinding(radiance.storage, .storageRead, byteCount: live * k * 16),
                                                   BufferBinding(accumulation.storage, .storageReadWrite),
                                                   BufferBinding(bookkeeping.storage, .storageReadWrite),
                                                   BufferBinding(nextLive.storage, .storageWrite), BufferBinding(liveCount.storage, .storageReadWrite)],
                                   push: [UInt32(live), options.terminationThreshold.bitPattern], groups: groups)
            }
            live = Int(try liveCount.toArray()[0])
            swap(&liveRays, &nextLive)
        }
        let colour = try accumulation.toArray()
        let book = try bookkeeping.toArray()
        var image = Self.resolve(width: camera.width, height: camera.height, samplesPerPixel: spp, background: options.background,
                                 colour: { SIMD4(colour[4 * $0], colour[4 * $0 + 1], colour[4 * $0 + 2], colour[4 * $0 + 3]) },
                                 depthSum: { Float(bitPattern: book[4 * $0 + 3]) }, samples: { book[4 * $0 + 2] })
        image.rounds = rounds
        return image
    }

    /// Records generate_rays: every ray of the frame (origins/directions vec4 with t near/far), zeroed
    /// accumulation and bookkeeping, and the compact list of rays that hit `bounds` with its count.
    static func encodeGenerateRays(into batch: CommandBatch, camera: Camera, samplesPerPixel spp: Int, bounds: AABB,
                                   origins: Tensor<Float>, directions: Tensor<Float>, accumulation: Tensor<Float>,
                                   bookkeeping: Tensor<UInt32>, liveRays: Tensor<UInt32>, liveCount: Tensor<UInt32>) throws {
        let rays = camera.width * camera.height * spp
        let rotation = camera.cameraToWorld.rotation, translation = camera.cameraToWorld.translation
        let cameraPush: [Float] = [rotation.0.x, rotation.0.y, rotation.0.z, rotation.1.x, rotation.1.y, rotation.1.z,
                                   rotation.2.x, rotation.2.y, rotation.2.z, translation.x, translation.y, translation.z,
                                   camera.focalX, camera.focalY, camera.principalX, camera.principalY,
                                   bounds.lower.x, bounds.lower.y, bounds.lower.z, bounds.upper.x, bounds.upper.y, bounds.upper.z]
            + camera.distortion.coefficients
        try batch.fill(liveCount.storage, word: 0)
        let spec = KernelSpec(shader: EmbeddedShader.nerf_generate_rays, bindings: Array(repeating: .storageBuffer, count: 6),
                              pushConstantBytes: 128, specialization: [64])
        try batch.dispatch(spec, [BufferBinding(origins.storage, .storageWrite), BufferBinding(directions.storage, .storageWrite),
                                  BufferBinding(accumulation.storage, .storageWrite), BufferBinding(bookkeeping.storage, .storageWrite),
                                  BufferBinding(liveRays.storage, .storageWrite), BufferBinding(liveCount.storage, .storageReadWrite)],
                           push: [UInt32(camera.width), UInt32(camera.height), UInt32(spp), UInt32(rays)] + cameraPush.map(\.bitPattern),
                           groups: ((rays + 63) / 64, 1, 1))
    }

    /// The rays generate_rays produces for `camera` (one per pixel, row-major, pixel centres), as the
    /// renderer would march them: origin and unit direction per ray (tests compare them with ``Camera/ray(u:v:)``).
    func generateRaysOnVulkan(camera: Camera, bounds: AABB) throws -> (origins: [Float], directions: [Float]) {
        let rays = camera.width * camera.height
        let origins = try context.empty(Float.self, shape: [rays, 4]), directions = try context.empty(Float.self, shape: [rays, 4])
        let accumulation = try context.empty(Float.self, shape: [rays, 4]), bookkeeping = try context.empty(UInt32.self, shape: [rays, 4])
        let liveRays = try context.empty(UInt32.self, shape: [rays]), liveCount = try context.empty(UInt32.self, shape: [1])
        try context.batch { batch in
            try Self.encodeGenerateRays(into: batch, camera: camera, samplesPerPixel: 1, bounds: bounds, origins: origins,
                                        directions: directions, accumulation: accumulation, bookkeeping: bookkeeping,
                                        liveRays: liveRays, liveCount: liveCount)
        }
        return (try origins.toArray(), try directions.toArray())
    }
}
