/// instant-ngp's occupancy estimate as its snapshots store it: `cascades` grids of `resolution`³ cells
/// (128³ in instant-ngp), each in Morton (Z-curve) order, fp16 densities σ.
///
/// Cascade c covers the cube of side 2^c centred on (0.5, 0.5, 0.5) in instant-ngp's coordinates, so
/// cascade 0 is the unit cube and each further cascade doubles the extent (instant-ngp's `NERF_CASCADES`).
public struct NGPDensityGrid: Sendable, Equatable {
    public var resolution: Int
    public var cascades: Int
    public var values: [Float16]

    public init(resolution: Int = 128, cascades: Int, values: [Float16]) throws {
        guard resolution > 0, resolution <= 1024, resolution & (resolution - 1) == 0 else {
            throw KernelError.invalidParameter(op: "density grid", name: "resolution (a power of two ≤ 1024)", value: "\(resolution)")
        }
        guard cascades >= 1, values.count == cascades * resolution * resolution * resolution else {
            throw KernelError.invalidParameter(op: "density grid", name: "values.count",
                                               value: "\(values.count) for \(cascades) cascades of \(resolution)³")
        }
        self.resolution = resolution
        self.cascades = cascades
        self.values = values
    }

    /// Number of cascades instant-ngp uses for an `aabb_scale`: 1 + ⌈log2 aabb_scale⌉.
    public static func cascadeCount(aabbScale: Float) -> Int {
        var cascades = 1
        while Float(1 << (cascades - 1)) < aabbScale { cascades += 1 }
        return cascades
    }

    /// Interleaves the bits of x, y, z (x lowest): the index of cell (x, y, z) within a cascade.
    public static func mortonIndex(_ x: Int, _ y: Int, _ z: Int) -> Int {
        func spread(_ v: Int) -> Int {
            var v = v & 0x3ff
            v = (v | v << 16) & 0x0300_00ff
            v = (v | v << 8) & 0x0300_f00f
            v = (v | v << 4) & 0x030c_30c3
            v = (v | v << 2) & 0x0924_9249
            return v
        }
        return spread(x) | spread(y) << 1 | spread(z) << 2
    }

    /// σ of cell (x, y, z) of `cascade`.
    public func density(x: Int, y: Int, z: Int, cascade: Int = 0) -> Float {
        Float(values[cascade * resolution * resolution * resolution + Self.mortonIndex(x, y, z)])
    }

    /// The box cascade `cascade` covers, in instant-ngp coordinates.
    public static func cascadeBounds(_ cascade: Int) -> AABB {
        let half = Float(1 << cascade) / 2
        return AABB(lower: SIMD3(repeating: 0.5 - half), upper: SIMD3(repeating: 0.5 + half))
    }

    /// A grid filled from a density function of instant-ngp-space cell centres (the maximum over
    /// `subsamples`³ points per cell, so that thin structures are not missed).
    public static func sampling(resolution: Int = 128, cascades: Int = 1, subsamples: Int = 2,
                                density: (SIMD3<Float>) -> Float) throws -> NGPDensityGrid {
        let cells = resolution * resolution * resolution
        var values = [Float16](repeating: 0, count: cascades * cells)
        for cascade in 0..<cascades {
            let box = cascadeBounds(cascade)
            let cell = box.size / Float(resolution)
            for z in 0..<resolution { for y in 0..<resolution { for x in 0..<resolution {
                var best: Float = 0
                for s in 0..<(subsamples * subsamples * subsamples) {
                    let offset = (SIMD3<Float>(Float(s % subsamples), Float(s / subsamples % subsamples), Float(s / (subsamples * subsamples))) + 0.5)
                        / Float(subsamples)
                    best = max(best, density(box.lower + (SIMD3(Float(x), Float(y), Float(z)) + offset) * cell))
                }
                values[cascade * cells + mortonIndex(x, y, z)] = Float16(min(best, 65504))
            } } }
        }
        return try NGPDensityGrid(resolution: resolution, cascades: cascades, values: values)
    }
}
