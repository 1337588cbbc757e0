/// instant-ngp's density grid as its snapshots store it (`density_grid_binary`, fp16): `cascades` grids of
/// `resolution`³ cells (instant-ngp: 128³, `density_grid_size`), each in Morton (Z-curve) order.
///
/// A cell holds an **optical thickness per step**, σ·Δt_min with Δt_min = √3/1024 (instant-ngp's
/// `STEPSIZE()`, the finest march step across the unit cube), not σ; −1 marks cells no training camera
/// sees. instant-ngp keeps the grid in float and rounds it to fp16 when saving. A cell is occupied when
/// its value exceeds min(0.01, mean of max(value, 0) over cascade 0) (`grid_to_bitfield`), and each
/// coarser cascade's occupancy also ORs in the finer one's (`bitfield_max_pool`).
///
/// Cascade c covers the cube of side 2^c centred on (0.5, 0.5, 0.5) in instant-ngp's coordinates, so
/// cascade 0 is the unit cube and each further cascade doubles the extent (instant-ngp's `NERF_CASCADES`);
/// a scene with `aabb_scale` s (a power of two ≤ 128) has 1 + log2 s cascades.
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

    /// The optical thickness σ·Δt_min stored for cell (x, y, z) of `cascade` (−1: unseen).
    public func density(x: Int, y: Int, z: Int, cascade: Int = 0) -> Float {
        Float(values[cascade * resolution * resolution * resolution + Self.mortonIndex(x, y, z)])
    }

    /// The box cascade `cascade` covers, in instant-ngp coordinates.
    public static func cascadeBounds(_ cascade: Int) -> AABB {
        let half = Float(1 << cascade) / 2
        return AABB(lower: SIMD3(repeating: 0.5 - half), upper: SIMD3(repeating: 0.5 + half))
    }

    /// instant-ngp's finest step, √3/1024: stored values are σ times this.
    public static let minimumStep: Float = Float(3).squareRoot() / 1024

    /// A grid filled from a density function σ(p) of instant-ngp-space points (the maximum over
    /// `subsamples`³ points per cell, so that thin structures are not missed), stored as instant-ngp
    /// stores it: σ·Δt_min.
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
                values[cascade * cells + mortonIndex(x, y, z)] = Float16(min(best * minimumStep, 65504))
            } } }
        }
        return try NGPDensityGrid(resolution: resolution, cascades: cascades, values: values)
    }

    /// instant-ngp's occupancy threshold: min(0.01, mean of max(value, 0) over cascade 0).
    public var occupancyThreshold: Float {
        let cells = resolution * resolution * resolution
        var sum: Double = 0
        for i in 0..<cells { sum += Double(max(Float(values[i]), 0)) }
        return min(0.01, Float(sum / Double(cells)))
    }

    /// Each cascade's occupancy bits (value > ``occupancyThreshold``), coarser cascades OR-ing in the finer
    /// cascade's cells they cover, as instant-ngp builds its bitfield; Morton order like ``values``.
    public func occupancy() -> [Bool] {
        let threshold = occupancyThreshold
        var bits = values.map { Float($0) > threshold }
        let r = resolution, perCascade = r * r * r
        if cascades > 1 {
            for cascade in 1..<cascades {
                for z in 0..<r { for y in 0..<r { for x in 0..<r where bits[(cascade - 1) * perCascade + Self.mortonIndex(x, y, z)] {
                    bits[cascade * perCascade + Self.mortonIndex(x / 2 + r / 4, y / 2 + r / 4, z / 2 + r / 4)] = true
                } } }
            }
        }
        return bits
    }

    /// The renderer's ``OccupancyGrid`` for this density grid over `bounds`, which must be the coarsest
    /// cascade's box (instant-ngp's aabb for the scene's aabb_scale). Each grid cell takes the occupancy of
    /// the finest cascade containing it (the cascade instant-ngp's marcher consults there at its finest
    /// step); level 0 has max(8, min(512, resolution · 2^(cascades − 1))) cells per axis, so it resolves cascade 0
    /// exactly for aabb_scale ≤ 4 and ORs cells of finer cascades beyond.
    public func occupancyGrid(bounds: AABB, levels: Int = 5) throws -> OccupancyGrid {
        let box = Self.cascadeBounds(cascades - 1)
        func far(_ a: SIMD3<Float>, _ b: SIMD3<Float>) -> Float { let d = a - b; return Swift.max(Swift.abs(d.x), Swift.abs(d.y), Swift.abs(d.z)) }
        guard far(bounds.lower, box.lower) <= 1e-5 * box.size.x, far(bounds.upper, box.upper) <= 1e-5 * box.size.x else {
            throw KernelError.invalidParameter(op: "density grid", name: "bounds",
                                               value: "\(bounds), but \(cascades) cascades cover \(box) (instant-ngp's aabb for aabb_scale \(1 << (cascades - 1)))")
        }
        let r = resolution, perCascade = r * r * r
        let n = max(8, min(512, r << (cascades - 1)))
        let bits = occupancy()
        var occupied = [Bool](repeating: false, count: n * n * n)
        let coarsest = cascades - 1
        for cascade in stride(from: coarsest, through: 0, by: -1) {
            // Cascade cells per axis of the whole box at this cascade's cell size, and the box cell where
            // this cascade's grid starts.
            let across = r << (coarsest - cascade)
            let start = (across - r) / 2
            for z in 0..<r { for y in 0..<r { for x in 0..<r {
                if cascade > 0, (r / 4..<(3 * r / 4)).contains(x), (r / 4..<(3 * r / 4)).contains(y), (r / 4..<(3 * r / 4)).contains(z) {
                    continue  // a finer cascade decides inside its own box
                }
                let on = bits[cascade * perCascade + Self.mortonIndex(x, y, z)]
                let (gx, gy, gz) = (start + x, start + y, start + z)
                if across <= n {
                    let k = n / across
                    for dz in 0..<k { for dy in 0..<k { for dx in 0..<k {
                        occupied[(gx * k + dx) + n * ((gy * k + dy) + n * (gz * k + dz))] = on
                    } } }
                } else if on {
                    let m = across / n
                    occupied[gx / m + n * (gy / m + n * (gz / m))] = true
                }
            } } }
        }
        var settings = OccupancyGrid.Settings()
        settings.resolution = n
        settings.levels = Swift.max(1, Swift.min(levels, n.trailingZeroBitCount - 2))
        settings.useFieldDensityGrid = true
        return OccupancyGrid(bounds: bounds, settings: settings, levelZero: occupied)
    }
}
