import Glibc

/// The shape of an instant-ngp NeRF network: a multiresolution hash encoding (Müller et al. 2022, §3)
/// feeding a density MLP, whose 16 outputs together with the degree-4 spherical-harmonics encoding of the
/// view direction feed a colour MLP. Defaults are instant-ngp's `configs/nerf/base.json`.
///
/// The flat parameter array (fp16, as instant-ngp's snapshot stores it) is laid out as instant-ngp's
/// `NerfNetwork` does: density-MLP weights, colour-MLP weights, then the hash-grid tables. Each MLP layer
/// is a row-major `outputs × inputs` matrix without bias (tiny-cuda-nn's FullyFusedMLP), its input and
/// output widths padded to multiples of 16; each grid level is `entries × featuresPerLevel`, interleaved.
public struct HashGridConfiguration: Sendable, Equatable {
    /// Number of resolution levels L.
    public var levels: Int
    /// Features per level F: 1, 2, 4 or 8.
    public var featuresPerLevel: Int
    /// log2 of the hash-table size T per level.
    public var log2TableSize: Int
    /// Resolution N_min of the coarsest level.
    public var baseResolution: Int
    /// Growth factor b between levels (instant-ngp's `per_level_scale`).
    public var perLevelScale: Float
    /// Hidden width of the density MLP (16, 32, 64 or 128) and its number of hidden layers (≥ 1).
    public var densityWidth: Int
    public var densityHiddenLayers: Int
    /// Hidden width of the colour MLP and its number of hidden layers (≥ 1).
    public var colorWidth: Int
    public var colorHiddenLayers: Int

    /// Outputs of the density MLP: the first is log-density, all 16 feed the colour MLP (instant-ngp fixes 16).
    public static let densityOutputs = 16
    /// Degree-4 spherical harmonics: 16 coefficients.
    public static let directionFeatures = 16

    public init(levels: Int = 8, featuresPerLevel: Int = 4, log2TableSize: Int = 19, baseResolution: Int = 16,
                perLevelScale: Float? = nil, densityWidth: Int = 64, densityHiddenLayers: Int = 1,
                colorWidth: Int = 64, colorHiddenLayers: Int = 2, aabbScale: Float = 1) {
        self.levels = levels
        self.featuresPerLevel = featuresPerLevel
        self.log2TableSize = log2TableSize
        self.baseResolution = baseResolution
        // instant-ngp's rule when `per_level_scale` is absent (or ≤ 0): the finest level reaches 2048 cells
        // across the unit cube times aabb_scale, computed as its testbed does, in single precision
        // (`std::exp(std::log(2048.0f * (float)aabb_scale / (float)base_resolution) / (n_levels - 1))`).
        self.perLevelScale = perLevelScale.flatMap { $0 > 0 ? $0 : nil } ?? Self.defaultPerLevelScale(
            levels: levels, baseResolution: baseResolution, aabbScale: aabbScale)

        self.densityWidth = densityWidth
        self.densityHiddenLayers = densityHiddenLayers
        self.colorWidth = colorWidth
        self.colorHiddenLayers = colorHiddenLayers
    }

    /// instant-ngp's `per_level_scale` when its config leaves it out, in Float arithmetic as its testbed
    /// computes it (expf/logf of Float operands; the division by L − 1 in Float).
    public static func defaultPerLevelScale(levels: Int, baseResolution: Int, aabbScale: Float) -> Float {
        expf(logf(Float(2048) * aabbScale / Float(baseResolution)) / Float(max(levels - 1, 1)))
    }

    /// Throws unless every parameter is one the evaluators (and instant-ngp) support.
    public func validate() throws {
        func check(_ ok: Bool, _ name: String, _ value: Any) throws {
            if !ok { throw KernelError.invalidParameter(op: "hashgrid", name: name, value: "\(value)") }
        }
        try check((1...32).contains(levels), "levels", levels)
        try check([1, 2, 4, 8].contains(featuresPerLevel), "featuresPerLevel (1, 2, 4 or 8)", featuresPerLevel)
        try check((4...26).contains(log2TableSize), "log2TableSize (4…26)", log2TableSize)
        try check((2...(1 << 16)).contains(baseResolution), "baseResolution", baseResolution)
        try check(perLevelScale.isFinite && perLevelScale >= 1 && perLevelScale <= 16, "perLevelScale (1…16)", perLevelScale)
        try check([16, 32, 64, 128].contains(densityWidth), "densityWidth (16, 32, 64 or 128)", densityWidth)
        try check([16, 32, 64, 128].contains(colorWidth), "colorWidth (16, 32, 64 or 128)", colorWidth)
        try check((1...8).contains(densityHiddenLayers), "densityHiddenLayers (1…8)", densityHiddenLayers)
        try check((1...8).contains(colorHiddenLayers), "colorHiddenLayers (1…8)", colorHiddenLayers)
        // In Double before any level geometry is formed: b^(L−1)·N_min from a file can be far beyond Int's
        // range (16^31 · 65536), where `Int(scale)` would trap.
        let finest = pow(Double(perLevelScale), Double(levels - 1)) * Double(baseResolution) - 1
        try check(finest.isFinite && finest < Double(1 << 24), "finest resolution (perLevelScale^(levels-1) · baseResolution < 2^24)", finest)
    }

    // MARK: Derived layout

    /// One level of the grid: its scale (positions map to `x · scale + 0.5`), vertex resolution, and
    /// where its table sits (in entries of `featuresPerLevel` values).
    public struct Level: Sendable, Equatable {
        public var scale: Float
        public var resolution: Int
        public var tableOffset: Int
        public var tableSize: Int
        /// Coarse levels whose whole vertex grid fits the table are indexed densely, not hashed.
        public var isDense: Bool
    }

    /// Level geometry as tiny-cuda-nn computes it: scale_l = 2^(l·log2 b)·N_min − 1, resolution
    /// ⌈scale_l⌉ + 1, table size min(resolution³ rounded up to 8, T).
    public var levelGeometry: [Level] {
        var result: [Level] = []
        var offset = 0
        let log2Scale = log2f(perLevelScale)
        for level in 0..<max(levels, 0) {
            let scale = exp2f(Float(level) * log2Scale) * Float(baseResolution) - 1
            // Saturated so that an unvalidated configuration gives a refusable geometry, never a trap.
            let resolution = scale.isFinite && scale < 1e9 ? Int(ceilf(max(scale, -1))) + 1 : 1_000_000_001
            let cube = Double(resolution) * Double(resolution) * Double(resolution)
            let dense = cube > Double(UInt32.max / 2) ? Int(UInt32.max / 2) : resolution * resolution * resolution
            let size = min((dense + 7) / 8 * 8, 1 << log2TableSize)
            result.append(Level(scale: scale, resolution: resolution, tableOffset: offset, tableSize: size,
                                isDense: Double(size) >= cube))
            offset += size
        }
        return result
    }

    /// Width of the encoding (L·F) padded to 16: the density MLP's input width.
    public var encodingWidth: Int { (levels * featuresPerLevel + 15) / 16 * 16 }
    /// The colour MLP's input: the 16 density outputs, then the 16 SH coefficients.
    public var colorInputWidth: Int { Self.densityOutputs + Self.directionFeatures }

    /// (outputs, inputs) of each density-MLP layer, padded as stored.
    public var densityLayers: [(outputs: Int, inputs: Int)] {
        [(densityWidth, encodingWidth)] + Array(repeating: (densityWidth, densityWidth), count: max(densityHiddenLayers - 1, 0))
            + [(Self.densityOutputs, densityWidth)]
    }

    /// (outputs, inputs) of each colour-MLP layer; the last has 16 rows of which the first 3 are RGB.
    public var colorLayers: [(outputs: Int, inputs: Int)] {
        [(colorWidth, colorInputWidth)] + Array(repeating: (colorWidth, colorWidth), count: max(colorHiddenLayers - 1, 0)) + [(16, colorWidth)]
    }

    public var densityParameterCount: Int { densityLayers.reduce(0) { $0 + $1.outputs * $1.inputs } }
    public var colorParameterCount: Int { colorLayers.reduce(0) { $0 + $1.outputs * $1.inputs } }
    public var gridParameterCount: Int {
        let geometry = levelGeometry
        return (geometry.last.map { $0.tableOffset + $0.tableSize } ?? 0) * featuresPerLevel
    }
    /// Where the grid tables start in the flat parameter array.
    public var gridParameterOffset: Int { densityParameterCount + colorParameterCount }
    public var parameterCount: Int { gridParameterOffset + gridParameterCount }
}

/// instant-ngp's spatial hash (Müller et al. 2022, eq. 4): XOR of the coordinates times large primes,
/// in wrapping 32-bit arithmetic.
@inline(__always)
func spatialHash(_ x: UInt32, _ y: UInt32, _ z: UInt32) -> UInt32 {
    x ^ (y &* 2_654_435_761) ^ (z &* 805_459_861)
}

/// Table entry of grid vertex (x, y, z) at `level`, as tiny-cuda-nn computes it: dense row-major
/// (x fastest) when the level's vertex grid fits the table, hashed otherwise; modulo the table size.
@inline(__always)
func gridEntry(_ x: UInt32, _ y: UInt32, _ z: UInt32, level: HashGridConfiguration.Level) -> UInt32 {
    let size = UInt32(level.tableSize)
    if level.isDense {
        let r = UInt32(level.resolution)
        return (x &+ y &* r &+ z &* r &* r) % size
    }
    return spatialHash(x, y, z) % size
}
