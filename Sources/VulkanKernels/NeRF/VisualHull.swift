/// A view of an object: a camera and the object's binary mask in that camera's image.
public struct Silhouette: Sendable {
    public var camera: Camera
    /// camera.width × camera.height flags, row-major, top row first: true where the object covers the pixel.
    public var mask: [Bool]

    public init(camera: Camera, mask: [Bool]) throws {
        guard mask.count == camera.width * camera.height else {
            throw KernelError.invalidShape(op: "Silhouette", operand: "mask", shape: [mask.count],
                                           expected: "[\(camera.width) × \(camera.height)] (the camera's pixels)")
        }
        self.camera = camera
        self.mask = mask
    }

    /// The mask of a PNG with alpha (NeRF-synthetic's RGBA training images): pixels whose alpha exceeds
    /// `alphaThreshold` (in [0, 1]). The image must have the camera's size.
    public init(alphaOf path: String, camera: Camera, alphaThreshold: Float = 0.5) throws {
        let image = try PNG.read8(path)
        guard image.channels == 2 || image.channels == 4 else {
            throw PNGError(path: path, message: "no alpha channel (\(image.channels) channels)")
        }
        guard image.width == camera.width, image.height == camera.height else {
            throw PNGError(path: path, message: "\(image.width)×\(image.height), the camera is \(camera.width)×\(camera.height)")
        }
        let threshold = alphaThreshold * 255
        let channels = image.channels
        var mask = [Bool](repeating: false, count: image.width * image.height)
        image.values.withUnsafeBufferPointer { values in
            for pixel in mask.indices { mask[pixel] = Float(values[channels * pixel + channels - 1]) > threshold }
        }
        try self.init(camera: camera, mask: mask)
    }

    /// Whether image point `point` (from ``Camera/project(_:)``) falls on a masked pixel; false outside the image.
    public func covers(_ point: SIMD2<Float>) -> Bool {
        guard point.x >= 0, point.y >= 0, point.x < Float(camera.width), point.y < Float(camera.height) else { return false }
        return mask[Int(point.y) * camera.width + Int(point.x)]
    }
}

extension OccupancyGrid {
    /// The visual hull of `silhouettes` (space carving, Laurentini 1994): a level-0 cell of a grid over
    /// `bounds` is occupied when its centre projects (``Camera/project(_:)``, the inverse of the
    /// renderer's rays) onto a masked pixel in every view. A centre behind a camera or outside its image
    /// is carved, so every view must see the whole object. Coarser levels pool the cells as in
    /// ``build(from:on:settings:)``; `densityThreshold`, `samplesPerAxis` and `dilation` are not used.
    ///
    /// The hull contains the object up to the cell size (a cell whose centre is outside the object but
    /// whose corner is inside may be carved; dilate the result for a strictly conservative grid), so it can
    /// seed empty-space skipping for a real capture before any density is known. Cost: one projection
    /// per surviving cell per view (views carve in turn and skip cells already carved), on all cores.
    public static func visualHull(of silhouettes: [Silhouette], bounds: AABB, settings: Settings = Settings()) throws -> OccupancyGrid {
        try settings.validate()
        guard !silhouettes.isEmpty else { throw KernelError.invalidParameter(op: "visualHull", name: "silhouettes", value: "none") }
        guard bounds.size.min() > 0, bounds.size.max().isFinite else {
            throw KernelError.invalidParameter(op: "visualHull", name: "bounds", value: "\(bounds)")
        }
        let n = settings.resolution
        let cellSize = bounds.size / Float(n)
        var survivors = [Int32](0..<Int32(n * n * n))
        for view in silhouettes {
            // Camera-space position of cell (x, y, z)'s centre = along[0][x] + along[1][y] + along[2][z]:
            // R⁻¹(p − t) is affine in each index, so three tables of n entries replace the 3×3 product.
            let inverse = view.camera.cameraToWorld.inverseRotationRows
            func cameraSpace(_ p: SIMD3<Float>) -> SIMD3<Float> { SIMD3(dot(inverse.0, p), dot(inverse.1, p), dot(inverse.2, p)) }
            let origin = cameraSpace(bounds.lower + 0.5 * cellSize - view.camera.cameraToWorld.translation)
            var along = [SIMD3<Float>](repeating: SIMD3(repeating: 0), count: 3 * n)
            for axis in 0..<3 {
                for i in 0..<n {
                    var step = SIMD3<Float>(repeating: 0)
                    step[axis] = Float(i) * cellSize[axis]
                    along[axis * n + i] = cameraSpace(step) + (axis == 0 ? origin : SIMD3(repeating: 0))
                }
            }
            var keep = [Bool](repeating: false, count: survivors.count)
            let camera = view.camera, width = Float(camera.width), height = Float(camera.height)
            // Raw buffers: this loop runs millions of times, also in unoptimised (debug) builds.
            keep.withUnsafeMutableBufferPointer { keep in
                survivors.withUnsafeBufferPointer { survivors in
                    along.withUnsafeBufferPointer { along in
                        view.mask.withUnsafeBufferPointer { mask in
                            let shared = UncheckedSendable((keep, survivors, along, mask))
                            CPUParallel.forEachChunk(survivors.count, costPerItem: 50) { range in
                                let (keep, survivors, along, mask) = shared.value
                                for i in range {
                                    let cell = Int(survivors[i])
                                    let local = along[cell % n] + along[n + (cell / n) % n] + along[2 * n + cell / (n * n)]
                                    guard let pixel = camera.project(cameraSpace: local),
                                          pixel.x >= 0, pixel.y >= 0, pixel.x < width, pixel.y < height else { continue }
                                    keep[i] = mask[Int(pixel.y) * camera.width + Int(pixel.x)]
                                }
                            }
                        }
                    }
                }
            }
            var kept = 0
            for i in survivors.indices where keep[i] { survivors[kept] = survivors[i]; kept += 1 }
            survivors.removeLast(survivors.count - kept)
            if survivors.isEmpty { break }
        }
        var occupied = [Bool](repeating: false, count: n * n * n)
        for cell in survivors { occupied[Int(cell)] = true }
        return OccupancyGrid(bounds: bounds, settings: settings, levelZero: occupied)
    }
}
