/// A multi-level occupancy bitfield over a field's bounding box, for skipping empty space.
///
/// Level 0 has `resolution`³ cells; level l has (resolution >> l)³ cells, each bit the OR of its eight
/// children (max-pooling of the occupancy), so a ray in a large empty region skips it in one step.
/// Bits are stored level after level, cell (x, y, z) of a level at bit x + n·(y + n·z), 32 per word.
///
/// Built from any ``RadianceField`` by max-pooling density: each cell's density is the maximum over a
/// lattice of `samplesPerAxis + 1` points per axis spanning the closed cell (corners included, shared
/// with neighbours), optionally dilated by `dilation` cells. The grid is conservative for density
/// features wider than the lattice spacing: a slab of density thicker than a cell's lattice diagonal
/// that touches a cell contains one of its lattice points.
public final class OccupancyGrid: @unchecked Sendable {
    public struct Settings: Sendable, Hashable {
        /// Cells per axis of level 0 (a power of two, 8...512).
        public var resolution = 256
        /// Number of levels (1...8, and resolution >> (levels − 1) ≥ 1).
        public var levels = 5
        /// Cells whose pooled density is at most this are empty.
        public var densityThreshold: Float = 0.01
        /// Lattice intervals per cell and axis when pooling (1: the cell's 8 corners). The lattice
        /// spacing, cell size / samplesPerAxis, bounds the thinnest feature the grid is sure to see.
        public var samplesPerAxis = 1
        /// Cells by which occupied cells grow (safety margin for features thinner than the lattice).
        public var dilation = 0
        /// Use the field's own density grid when it has one (an instant-ngp snapshot's, see
        /// ``NGPDensityGrid/occupancyGrid(bounds:levels:)``) instead of building a grid from its density;
        /// `resolution`, `densityThreshold`, `samplesPerAxis` and `dilation` then do not apply.
        public var useFieldDensityGrid = true
        public init() {}

        func validate() throws {
            let op = "OccupancyGrid"
            guard (8...512).contains(resolution), resolution & (resolution - 1) == 0 else {
                throw KernelError.invalidParameter(op: op, name: "resolution", value: "\(resolution) (a power of two in 8...512)")
            }
            guard (1...8).contains(levels), resolution >> (levels - 1) >= 1 else {
                throw KernelError.invalidParameter(op: op, name: "levels", value: "\(levels)")
            }
            guard densityThreshold.isFinite, densityThreshold >= 0 else {
                throw KernelError.invalidParameter(op: op, name: "densityThreshold", value: "\(densityThreshold)")
            }
            guard (1...8).contains(samplesPerAxis), (0...4).contains(dilation) else {
                throw KernelError.invalidParameter(op: op, name: "samplesPerAxis/dilation", value: "\(samplesPerAxis)/\(dilation)")
            }
        }
    }

    public let bounds: AABB
    public let settings: Settings
    /// All levels' bits.
    public let words: [UInt32]
    let levelWordOffsets: [Int]

    init(bounds: AABB, settings: Settings, levelZero: [Bool]) {
        self.bounds = bounds
        self.settings = settings
        var words: [UInt32] = []
        var offsets: [Int] = []
        var current = levelZero
        var n = settings.resolution
        for level in 0..<settings.levels {
            if level > 0 {
                let half = n / 2
                var pooled = [Bool](repeating: false, count: half * half * half)
                for z in 0..<half { for y in 0..<half { for x in 0..<half {
                    var any = false
                    for dz in 0..<2 { for dy in 0..<2 { for dx in 0..<2 where current[(2 * x + dx) + n * ((2 * y + dy) + n * (2 * z + dz))] {
                        any = true
                    } } }
                    pooled[x + half * (y + half * z)] = any
                } } }
                current = pooled
                n = half
            }
            offsets.append(words.count)
            var levelWords = [UInt32](repeating: 0, count: (current.count + 31) / 32)
            for (index, occupied) in current.enumerated() where occupied { levelWords[index >> 5] |= 1 << UInt32(index & 31) }
            words += levelWords
        }
        self.words = words
        levelWordOffsets = offsets
    }

    /// Cells per axis of `level`.
    public func resolution(level: Int) -> Int { settings.resolution >> level }

    public func isOccupied(level: Int, x: Int, y: Int, z: Int) -> Bool {
        let n = resolution(level: level)
        let bit = x + n * (y + n * z)
        return words[levelWordOffsets[level] + bit >> 5] & (1 << UInt32(bit & 31)) != 0
    }

    /// The level-`level` cell holding `point` (clamped into the grid).
    public func cell(containing point: SIMD3<Float>, level: Int = 0) -> SIMD3<Int> {
        let n = resolution(level: level)
        let u = (point - bounds.lower) / bounds.size * Float(n)
        return SIMD3(Swift.min(Swift.max(Int(u.x.rounded(.down)), 0), n - 1), Swift.min(Swift.max(Int(u.y.rounded(.down)), 0), n - 1),
                     Swift.min(Swift.max(Int(u.z.rounded(.down)), 0), n - 1))
    }

    public func isOccupied(_ point: SIMD3<Float>) -> Bool {
        let c = cell(containing: point)
        return isOccupied(level: 0, x: c.x, y: c.y, z: c.z)
    }

    /// Fraction of occupied cells of `level`.
    public func occupiedFraction(level: Int = 0) -> Double {
        let n = resolution(level: level)
        let cells = n * n * n
        var count = 0
        for i in 0..<((cells + 31) / 32) { count += words[levelWordOffsets[level] + i].nonzeroBitCount }
        return Double(count) / Double(cells)
    }

    /// Builds the grid of `field` by evaluating its density on `context`'s backend.
    public static func build(from field: RadianceField, on context: ComputeContext, settings: Settings = Settings()) throws -> OccupancyGrid {
        try settings.validate()
        let bounds = field.bounds
        let n = settings.resolution, s = settings.samplesPerAxis
        let points = n * s + 1
        let spacing = bounds.size / Float(n * s)
        // Density on the lattice, one z-plane slab at a time (keeps the sample arrays small).
        var density = [Float](repeating: 0, count: points * points * points)
        let planesPerChunk = max(1, (1 << 20) / (points * points))
        var z0 = 0
        while z0 < points {
            let z1 = min(points, z0 + planesPerChunk)
            var samples = [Float](repeating: 0, count: 8 * points * points * (z1 - z0))
            var i = 0
            let (lx, ly, lz) = (bounds.lower.x, bounds.lower.y, bounds.lower.z)
            let (sx, sy, sz) = (spacing.x, spacing.y, spacing.z)
            for z in z0..<z1 { for y in 0..<points { for x in 0..<points {
                samples[8 * i] = lx + sx * Float(x); samples[8 * i + 1] = ly + sy * Float(y); samples[8 * i + 2] = lz + sz * Float(z)
                samples[8 * i + 6] = 1
                i += 1
            } } }
            let output = try field.evaluate(samples: samples, on: context)
            for j in 0..<i { density[z0 * points * points + j] = output[4 * j + 3] }
            z0 = z1
        }
        // Max over each closed cell's lattice points, then dilation, then the threshold.
        var cellMax = [Float](repeating: 0, count: n * n * n)
        for z in 0..<n { for y in 0..<n { for x in 0..<n {
            var m: Float = 0
            for lz in (z * s)...(z * s + s) { for ly in (y * s)...(y * s + s) { for lx in (x * s)...(x * s + s) {
                m = max(m, density[lx + points * (ly + points * lz)])
            } } }
            cellMax[x + n * (y + n * z)] = m
        } } }
        var occupied = cellMax.map { $0 > settings.densityThreshold }
        for _ in 0..<settings.dilation {
            let before = occupied
            for z in 0..<n { for y in 0..<n { for x in 0..<n where !before[x + n * (y + n * z)] {
                search: for dz in -1...1 { for dy in -1...1 { for dx in -1...1 {
                    let (a, b, c) = (x + dx, y + dy, z + dz)
                    if a >= 0, b >= 0, c >= 0, a < n, b < n, c < n, before[a + n * (b + n * c)] {
                        occupied[x + n * (y + n * z)] = true
                        break search
                    }
                } } }
            } } }
        }
        return OccupancyGrid(bounds: bounds, settings: settings, levelZero: occupied)
    }

    /// A grid with every cell occupied (uniform marching through the whole box).
    static func full(bounds: AABB) -> OccupancyGrid {
        var settings = Settings()
        settings.resolution = 8
        settings.levels = 1
        return OccupancyGrid(bounds: bounds, settings: settings, levelZero: [Bool](repeating: true, count: 512))
    }
}
