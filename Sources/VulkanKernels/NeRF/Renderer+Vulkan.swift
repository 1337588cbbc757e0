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
        let occupancy = try deviceWords(of: parameters.grid)

        let bounds = field.bounds
        try context.batch { batch in
            try Self.encodeGenerateRays(into: batch, camera: camera, samplesPerPixel: spp, bounds: bounds, origins: origins,
                                        directions: directions, accumulation: accumulation, bookkeeping: bookkeeping,
                                        liveRays: liveRays, liveCount: liveCount)
        }
        var live = Int(try liveCount.toArray()[0])
        let grid = parameters.grid
        let march = Kernel<Shader.nerf_march_rays>(.base, specialization: [64, 32])
        let composite = Kernel<Shader.nerf_composite_rays>(.base, specialization: [64])
        // liveCount and maxSteps are set per round.
        var marchPush = Shader.nerf_march_rays.PushConstants(
            liveCount: 0, maxSteps: 0, resolution: UInt32(grid.settings.resolution), levels: UInt32(grid.settings.levels),
            useGrid: parameters.useGrid ? 1 : 0, minimumStep: parameters.minimumStep, maximumStep: parameters.maximumStep,
            stepRatio: parameters.stepRatio, lx: bounds.lower.x, ly: bounds.lower.y, lz: bounds.lower.z,
            ux: bounds.upper.x, uy: bounds.upper.y, uz: bounds.upper.z)
        var rounds = 0
        while live > 0 {
            rounds += 1
            let k = min(Self.stepsPerRound(live: live, rays: rays, options: options), max(1, capacity / live))
            let groups = ((live + 63) / 64, 1, 1)
            try context.batch { batch in
                try batch.fill(sampleCount.storage, word: 0)
                try batch.fill(liveCount.storage, word: 0)
                marchPush.liveCount = UInt32(live)
                marchPush.maxSteps = UInt32(k)
                try batch.dispatch(march, .init(liveRays: BufferBinding(liveRays.storage, .storageRead, byteCount: live * 4),
                                                origins: BufferBinding(origins.storage, .storageReadWrite),
                                                directions: BufferBinding(directions.storage, .storageRead),
                                                occupancy: BufferBinding(occupancy.storage, .storageRead),
                                                sampleCount: BufferBinding(sampleCount.storage, .storageReadWrite),
                                                samples: BufferBinding(samples.storage, .storageWrite, byteCount: live * k * 32),
                                                sampleSteps: BufferBinding(steps.storage, .storageWrite, byteCount: live * k * 8),
                                                bookkeeping: BufferBinding(bookkeeping.storage, .storageReadWrite)),
                                   push: marchPush, groups: groups)
                try field.encodeEvaluate(into: batch, samples: samples, sampleCount: sampleCount, capacity: live * k, output: radiance)
                try batch.dispatch(composite, .init(liveRays: BufferBinding(liveRays.storage, .storageRead, byteCount: live * 4),
                                                    origins: BufferBinding(origins.storage, .storageRead),
                                                    directions: BufferBinding(directions.storage, .storageRead),
                                                    sampleSteps: BufferBinding(steps.storage, .storageRead, byteCount: live * k * 8),
                                                    radiance: BufferBinding(radiance.storage, .storageRead, byteCount: live * k * 16),
                                                    accumulation: BufferBinding(accumulation.storage, .storageReadWrite),
                                                    bookkeeping: BufferBinding(bookkeeping.storage, .storageReadWrite),
                                                    nextLive: BufferBinding(nextLive.storage, .storageWrite),
                                                    nextCount: BufferBinding(liveCount.storage, .storageReadWrite)),
                                   push: .init(liveCount: UInt32(live), threshold: options.terminationThreshold), groups: groups)
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
        let (lower, upper, d) = (bounds.lower, bounds.upper, camera.distortion)
        // Rows of the camera-to-world rotation are r0, r1, r2 (Camera.swift's convention).
        let push = Shader.nerf_generate_rays.PushConstants(
            width: UInt32(camera.width), height: UInt32(camera.height), samplesPerPixel: UInt32(spp), rayCount: UInt32(rays),
            r0x: rotation.0.x, r0y: rotation.0.y, r0z: rotation.0.z, r1x: rotation.1.x, r1y: rotation.1.y, r1z: rotation.1.z,
            r2x: rotation.2.x, r2y: rotation.2.y, r2z: rotation.2.z, tx: translation.x, ty: translation.y, tz: translation.z,
            fx: camera.focalX, fy: camera.focalY, cx: camera.principalX, cy: camera.principalY,
            lx: lower.x, ly: lower.y, lz: lower.z, ux: upper.x, uy: upper.y, uz: upper.z,
            k1: d.k1, k2: d.k2, k3: d.k3, k4: d.k4, p1: d.p1, p2: d.p2)
        try batch.fill(liveCount.storage, word: 0)
        try batch.dispatch(Kernel<Shader.nerf_generate_rays>(.base, specialization: [64]),
                           .init(origins: BufferBinding(origins.storage, .storageWrite), directions: BufferBinding(directions.storage, .storageWrite),
                                 accumulation: BufferBinding(accumulation.storage, .storageWrite),
                                 bookkeeping: BufferBinding(bookkeeping.storage, .storageWrite),
                                 liveRays: BufferBinding(liveRays.storage, .storageWrite),
                                 liveCount: BufferBinding(liveCount.storage, .storageReadWrite)),
                           push: push, groups: ((rays + 63) / 64, 1, 1))
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
