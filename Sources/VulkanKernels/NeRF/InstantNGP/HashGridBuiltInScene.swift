import Glibc

/// The analytic scene behind the built-in hash-grid field "ngp-blobs", in instant-ngp's unit cube
/// (+z up): a striped orange sphere and a checkered teal sphere standing on a gridded slab, with a
/// view-dependent sheen (brighter when seen from above). Densities have smooth edges about 0.02 wide.
public enum NGPBlobsScene {
    public static let peakDensity: Float = 80
    /// Log-density floor: σ = e^−9 ≈ 1e-4 in empty space (a ray crossing the cube picks up < 0.02 % opacity).
    public static let logDensityFloor: Float = -9
    static let edge: Float = 0.012

    /// Signed distances (negative inside) and base colours of the three objects at p.
    static func objects(_ p: SIMD3<Float>) -> [(distance: Float, color: SIMD3<Float>)] {
        let a = SIMD3<Float>(0.36, 0.42, 0.40), b = SIMD3<Float>(0.68, 0.62, 0.34)
        let stripes = 0.5 + 0.5 * sinf(45 * p.z)
        let orange = SIMD3<Float>(0.9, 0.45, 0.1) * (1 - stripes) + SIMD3<Float>(0.92, 0.88, 0.8) * stripes
        let check = sinf(28 * p.x) * sinf(28 * p.y) * sinf(28 * p.z)
        let teal = check > 0 ? SIMD3<Float>(0.1, 0.6, 0.65) : SIMD3<Float>(0.15, 0.25, 0.7)
        let teal2 = teal * (0.75 + 0.25 * min(max(check * 4, -1), 1))
        // A rounded slab: |x − 0.5| ≤ 0.4, |y − 0.5| ≤ 0.4, z ∈ [0.1, 0.16].
        let q = SIMD3<Float>(abs(p.x - 0.5) - 0.38, abs(p.y - 0.5) - 0.38, abs(p.z - 0.13) - 0.01)
        let outside = SIMD3<Float>(max(q.x, 0), max(q.y, 0), max(q.z, 0))
        let slab = (outside * outside).sum().squareRoot() + min(max(q.x, max(q.y, q.z)), 0) - 0.02
        let lines = max(0, cosf(40 * p.x)) * max(0, cosf(40 * p.y))
        let ground = SIMD3<Float>(0.55, 0.6, 0.45) * (0.6 + 0.4 * lines)
        return [(length(p - a) - 0.17, orange), (length(p - b) - 0.13, teal2), (slab, ground)]
    }

    /// σ(p): the peak density times a smooth step across each object's surface, the maximum over objects.
    public static func density(_ p: SIMD3<Float>) -> Float {
        objects(p).map { occupancy($0.distance) }.max()! * peakDensity
    }

    static func occupancy(_ distance: Float) -> Float {
        let t = min(max(0.5 - distance / (2 * edge), 0), 1)
        return t * t * (3 - 2 * t)
    }

    /// The base (view-independent) colour: occupancy-weighted mix of the objects' colours.
    public static func baseColor(_ p: SIMD3<Float>) -> SIMD3<Float> {
        var sum = SIMD3<Float>(repeating: 0), weight: Float = 1e-6
        for object in objects(p) {
            let w = occupancy(object.distance - 2 * edge)
            sum += w * object.color
            weight += w
        }
        return weight > 1e-3 ? sum / weight : SIMD3(0.5, 0.5, 0.5)
    }

    /// Brightening seen from above: a term linear in the direction, i.e. in degree-1 spherical harmonics.
    public static func sheen(_ d: SIMD3<Float>) -> Float { -0.7 * d.z + 0.2 * d.x }

    /// Colour seen along unit direction d: sigmoid(logit(base) + sheen(d)).
    public static func color(_ p: SIMD3<Float>, _ d: SIMD3<Float>) -> SIMD3<Float> {
        let logit = logit(baseColor(p)) + sheen(d)
        return 1 / (1 + SIMD3(expf(-logit.x), expf(-logit.y), expf(-logit.z)))
    }

    static func logit(_ c: SIMD3<Float>) -> SIMD3<Float> {
        let clamped = SIMD3<Float>(min(max(c.x, 0.02), 0.98), min(max(c.y, 0.02), 0.98), min(max(c.z, 0.02), 0.98))
        return SIMD3(logf(clamped.x / (1 - clamped.x)), logf(clamped.y / (1 - clamped.y)), logf(clamped.z / (1 - clamped.z)))
    }

    static func logDensity(_ p: SIMD3<Float>) -> Float { max(logf(max(density(p), 1e-30)), logDensityFloor) }
}

extension HashGridField {
    /// Names of the built-in hash-grid scenes.
    public static let builtInSceneNames = ["ngp-blobs"]

    /// A built-in scene by name (see ``builtInSceneNames``).
    public static func builtInScene(named name: String) throws -> HashGridField {
        guard name == "ngp-blobs" else {
            throw KernelError.invalidParameter(op: "hashgrid", name: "scene", value: "\(name) (built-in: \(builtInSceneNames.joined(separator: ", ")))")
        }
        return try ngpBlobs()
    }

    /// "ngp-blobs": instant-ngp's base network (8 levels × 4 features, T = 2^19, N_min = 16, b = 2, MLPs
    /// 64 wide) holding ``NGPBlobsScene`` in the unit cube, made without image training:
    /// 1. the dense coarse levels (16³, 32³, 64³ vertices) store (log σ, logit r, logit g, logit b) of the
    ///    scene at their vertices; the hashed fine levels are zero;
    /// 2. both MLPs' hidden layers are fixed to pass each input through as the ReLU pair (x⁺, x⁻) (and the
    ///    colour MLP's second hidden layer is the identity), so each network is linear in its input;
    /// 3. the last layer of each MLP is fitted by (ridge) least squares to the scene at random points
    ///    (colour weighted by occupancy), in float64, then rounded to fp16.
    /// The result carries a 128³ density grid sampled from the analytic density. Takes about a second.
    public static func ngpBlobs(samples: Int = 12000, seed: UInt64 = 7) throws -> HashGridField {
        let c = HashGridConfiguration()
        let geometry = c.levelGeometry
        let features = c.featuresPerLevel
        var parameters = [Float16](repeating: 0, count: c.parameterCount)
        // 1. Dense levels from the scene.
        for level in geometry where level.isDense {
            let r = level.resolution
            for k in 0..<r { for j in 0..<r { for i in 0..<r {
                let p = (SIMD3<Float>(Float(i), Float(j), Float(k)) - 0.5) / level.scale
                let clamped = SIMD3<Float>(min(max(p.x, 0), 1), min(max(p.y, 0), 1), min(max(p.z, 0), 1))
                let logit = NGPBlobsScene.logit(NGPBlobsScene.baseColor(clamped))
                let base = c.gridParameterOffset + (level.tableOffset + i + j * r + k * r * r) * features
                parameters[base] = Float16(NGPBlobsScene.logDensity(clamped))
                parameters[base + 1] = Float16(logit.x); parameters[base + 2] = Float16(logit.y); parameters[base + 3] = Float16(logit.z)
            } } }
        }
        // 2. Pass-through hidden layers.
        let densityW0 = 0, densityW1 = c.densityWidth * c.encodingWidth
        let colorW0 = c.densityParameterCount, colorW1 = colorW0 + c.colorWidth * c.colorInputWidth
        let colorW2 = colorW1 + c.colorWidth * c.colorWidth
        for k in 0..<32 {
            parameters[densityW0 + (2 * k) * c.encodingWidth + k] = 1
            parameters[densityW0 + (2 * k + 1) * c.encodingWidth + k] = -1
            parameters[colorW0 + (2 * k) * c.colorInputWidth + k] = 1
            parameters[colorW0 + (2 * k + 1) * c.colorInputWidth + k] = -1
        }
        for k in 0..<c.colorWidth { parameters[colorW1 + k * c.colorWidth + k] = 1 }

        // 3. Least squares for the output layers, on features computed by the field itself.
        var generator = SeededGenerator(seed: seed)
        var points: [SIMD3<Float>] = []
        var directions: [SIMD3<Float>] = []
        while points.count < samples {
            let p = SIMD3<Float>(generator.unitFloat(), generator.unitFloat(), generator.unitFloat())
            // Half the samples where the scene has content, so the fit spends its effort there.
            if points.count % 2 == 1 && NGPBlobsScene.density(p) < 1 { continue }
            var d = SIMD3<Float>(generator.unitFloat() * 2 - 1, generator.unitFloat() * 2 - 1, generator.unitFloat() * 2 - 1)
            while length(d) < 0.1 || length(d) > 1 { d = SIMD3(generator.unitFloat() * 2 - 1, generator.unitFloat() * 2 - 1, generator.unitFloat() * 2 - 1) }
            points.append(p)
            directions.append(normalized(d))
        }
        let provisional = try HashGridField(name: "ngp-blobs", configuration: c, parameters: parameters)
        let hidden: [[Double]] = points.map { p in
            provisional.encoding(at: p).flatMap { [Double(max($0, 0)), Double(max(-$0, 0))] }
        }
        let occupancy = points.map { Double(min(NGPBlobsScene.density($0) / 10, 1)) + 0.01 }
        let targets = points.map { NGPBlobsScene.logit(NGPBlobsScene.baseColor($0)) }
        let logDensity = points.map { Double(NGPBlobsScene.logDensity($0)) }
        let rows: [([Double], [Double])] = [
            (logDensity, occupancy.map { _ in 1 }),
            (targets.map { Double($0.x) }, occupancy), (targets.map { Double($0.y) }, occupancy), (targets.map { Double($0.z) }, occupancy),
        ]
        var densityOutputs = [[Double]](repeating: [Double](repeating: 0, count: 16), count: points.count)
        for (row, (target, weight)) in rows.enumerated() {
            let w = leastSquares(hidden, target, weight)
            for i in 0..<c.densityWidth { parameters[densityW1 + row * c.densityWidth + i] = Float16(Float(w[i])) }
            let rounded = (0..<c.densityWidth).map { Double(parameters[densityW1 + row * c.densityWidth + $0]) }
            for s in 0..<points.count { densityOutputs[s][row] = zip(rounded, hidden[s]).reduce(0) { $0 + $1.0 * $1.1 } }
        }
        // Colour MLP: its hidden activations are (x⁺, x⁻) of [density outputs, SH(direction)].
        let colorHidden: [[Double]] = (0..<points.count).map { s in
            var input = densityOutputs[s]
            sphericalHarmonicsDegree4(directions[s]) { _, value in input.append(Double(value)) }
            return input.flatMap { [max($0, 0), max(-$0, 0)] }
        }
        for channel in 0..<3 {
            let target = (0..<points.count).map { Double(targets[$0][channel] + NGPBlobsScene.sheen(directions[$0])) }
            let w = leastSquares(colorHidden, target, occupancy)
            for i in 0..<c.colorWidth { parameters[colorW2 + channel * c.colorWidth + i] = Float16(Float(w[i])) }
        }
        let grid = try NGPDensityGrid.sampling(resolution: 128, cascades: 1, subsamples: 1) { NGPBlobsScene.density($0) }
        return try HashGridField(name: "ngp-blobs", configuration: c, parameters: parameters, densityGrid: grid)
    }
}

/// Weighted ridge least squares: argmin_w Σ_s weight_s (features_s · w − target_s)² + λ|w|², by the
/// normal equations and a Cholesky factorisation in float64. The ridge λ (1e-6 of the mean diagonal)
/// only resolves the exact redundancy of the (x⁺, x⁻) feature pairs.
func leastSquares(_ features: [[Double]], _ target: [Double], _ weight: [Double]) -> [Double] {
    let n = features[0].count
    var normal = [Double](repeating: 0, count: n * n)
    var right = [Double](repeating: 0, count: n)
    for (s, row) in features.enumerated() {
        let w = weight[s]
        for i in 0..<n where row[i] != 0 {
            let wi = w * row[i]
            right[i] += wi * target[s]
            for j in i..<n { normal[i * n + j] += wi * row[j] }
        }
    }
    let trace = (0..<n).reduce(0) { $0 + normal[$1 * n + $1] }
    for i in 0..<n {
        normal[i * n + i] += 1e-6 * trace / Double(n) + 1e-12
        for j in 0..<i { normal[i * n + j] = normal[j * n + i] }
    }
    // Cholesky: normal = L Lᵀ.
    var l = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
        for j in 0...i {
            var sum = normal[i * n + j]
            for k in 0..<j { sum -= l[i * n + k] * l[j * n + k] }
            l[i * n + j] = i == j ? sum.squareRoot() : sum / l[j * n + j]
        }
    }
    var y = [Double](repeating: 0, count: n)
    for i in 0..<n {
        var sum = right[i]
        for k in 0..<i { sum -= l[i * n + k] * y[k] }
        y[i] = sum / l[i * n + i]
    }
    var x = [Double](repeating: 0, count: n)
    for i in stride(from: n - 1, through: 0, by: -1) {
        var sum = y[i]
        for k in (i + 1)..<n { sum -= l[k * n + i] * x[k] }
        x[i] = sum / l[i * n + i]
    }
    return x
}

