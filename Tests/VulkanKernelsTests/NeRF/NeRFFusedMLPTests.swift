import CKernels
@testable import VulkanKernels
import XCTest

/// The fused, tile-by-tile MLP kernels of nerf_mlp.c (``HashGridNetwork/forward`` and ``backward``) on
/// every CPU path this machine runs, against a float64 evaluation of the same network: every kept
/// activation, RGB, σ, every matrix gradient and dL/d(encoding), for sample counts around the tile size.
///
/// The reference takes the kernel's own encoding rows and SH coefficients as its inputs (both come from
/// the unchanged C loops vkk_hashgrid_encode / vkk_density_head, checked against float64 in
/// HashGridTests and NeRFTrainingGradientTests), and in the backward pass the kernel's own ReLU masks
/// (activation > 0): a pre-activation within rounding of 0 may fall on either side in float32 and
/// float64, and the test is of the GEMMs' arithmetic, not of which side of a kink a sample sits.
final class NeRFFusedMLPTests: XCTestCase {
    /// Error bound, relative to the magnitude M of each value (the same computation on |weights| and
    /// |inputs|: a float32 dot product of K terms is off by at most K·2^-24·Σ|terms|, Higham 3.1). At most
    /// 6 layers are chained (colour 3 + density 2 + the encoding gradient), K ≤ 128, and each layer's
    /// error carries through the next one's magnitudes: 6·128·2^-24 ≈ 4.6e-5. The logistic and exp add a
    /// few ulps relative to the value (2^-24·4 ≈ 2.4e-7).
    static let magnitudeTolerance = 6.0 * 128 * 0x1p-24
    static let valueTolerance = 4 * 0x1p-24

    override func tearDown() {
        vkk_cpu_set_path(-1)
        super.tearDown()
    }

    /// The base configuration, and two that take the other code branches: 16 and 128 wide layers (one and
    /// two 64-column blocks), 2 density and 3 colour hidden layers, a 16-wide encoding.
    let configurations: [HashGridConfiguration] = [
        HashGridConfiguration(log2TableSize: 12),
        HashGridConfiguration(levels: 4, featuresPerLevel: 4, log2TableSize: 10, densityWidth: 16, densityHiddenLayers: 2,
                              colorWidth: 128, colorHiddenLayers: 1),
        HashGridConfiguration(levels: 16, featuresPerLevel: 2, log2TableSize: 10, densityWidth: 128, densityHiddenLayers: 1,
                              colorWidth: 32, colorHiddenLayers: 3),
    ]

    /// 1, a tile less one, a tile plus one, several tiles with a remainder, and (base configuration and the
    /// best path only, to keep the float64 reference quick: the grouping is the Swift side's, the same on
    /// every path, and the kernels' remainders are covered by the other counts) enough for more than 64
    /// tiles: backward groups of two tiles, the last one short.
    func counts(_ configuration: Int) -> [Int] {
        let tile = Int(VKK_MLP_TILE)
        return [1, tile - 1, tile + 1, 3 * tile + 5] + (configuration == 0 ? [65 * tile + 7] : [])
    }

    func randomNetwork(_ c: HashGridConfiguration, seed: UInt64) throws -> HashGridNetwork {
        try hashGridNetworkWithRandomGrid(c, seed: seed, gridSeed: seed ^ 0x5a5a)
    }

    func randomInputs(_ n: Int, seed: UInt64) -> (positions: [Float], directions: [Float]) {
        var generator = SeededGenerator(seed: seed)
        var p: [Float] = [], d: [Float] = []
        for _ in 0..<n {
            p += [generator.unitFloat(), generator.unitFloat(), generator.unitFloat()]
            var v = SIMD3<Float>(generator.unitFloat() * 2 - 1, generator.unitFloat() * 2 - 1, generator.unitFloat() * 2 - 1)
            v /= max((v * v).sum().squareRoot(), 1e-3)
            d += [v.x, v.y, v.z]
        }
        return (p, d)
    }

    /// value ± magnitude, in float64.
    struct Tracked { var value: [Double]; var magnitude: [Double] }

    /// y = W x (W outputs × inputs at `offset`, the first `rows` rows), with magnitudes |W| |x|.
    static func dense(_ x: Tracked, _ w: [Float], _ offset: Int, rows: Int, inputs: Int, relu: Bool) -> Tracked {
        var y = Tracked(value: [Double](repeating: 0, count: rows), magnitude: [Double](repeating: 0, count: rows))
        for o in 0..<rows {
            var s = 0.0, m = 0.0
            for i in 0..<inputs {
                let weight = Double(w[offset + o * inputs + i])
                s += weight * x.value[i]; m += abs(weight) * x.magnitude[i]
            }
            y.value[o] = relu ? max(s, 0) : s
            y.magnitude[o] = m
        }
        return y
    }

    /// Checks |got − want| ≤ magnitudeTolerance·M + valueTolerance·|want|.
    func check(_ got: Float, _ want: Double, _ magnitude: Double, _ what: @autoclosure () -> String) {
        let bound = Self.magnitudeTolerance * magnitude + Self.valueTolerance * abs(want) + 1e-30
        if abs(Double(got) - want) > bound {
            XCTFail("\(what()): got \(got), float64 \(want), bound \(bound)")
        }
    }

    func testFusedForwardAndBackwardMatchFloat64OnEveryPathAndTileRemainder() throws {
        let best = vkk_cpu_best_path_for(vkk_cpu_features())
        for (ci, c) in configurations.enumerated() {
            let network = try randomNetwork(c, seed: UInt64(10 + ci))
            for n in counts(ci) {
                let (positions, directions) = randomInputs(n, seed: UInt64(100 * ci + n))
                var generator = SeededGenerator(seed: UInt64(7 * n + ci))
                let rgbGradient = (0..<(3 * n)).map { _ in generator.unitFloat() * 2 - 1 }
                let sigmaGradient = (0..<n).map { _ in (generator.unitFloat() * 2 - 1) * 0.1 }
                var scalarEncoding: [Float] = []
                for path in Int32(VKK_PATH_SCALAR)...best where n <= 64 * Int(VKK_MLP_TILE) || path == best {
                    vkk_cpu_set_path(path)
                    let label = "config \(ci), n \(n), \(String(cString: vkk_cpu_path_name(path)))"
                    let activations = HashGridActivations()
                    activations.setInputs(positions: positions, directions: directions, configuration: c)
                    network.forward(activations)
                    // The vectorised corner computation does the scalar one's operations in its order.
                    let encoding = Array(activations.encoded[0..<(n * c.encodingWidth)])
                    if scalarEncoding.isEmpty { scalarEncoding = encoding } else {
                        XCTAssertEqual(encoding, scalarEncoding, "\(label): encoding differs from the scalar path's")
                    }
                    var gradients = [Float](repeating: 0, count: c.parameterCount)
                    let scratch = HashGridBackwardScratch()
                    gradients.withUnsafeMutableBufferPointer { g in
                        network.backward(activations, rgbGradient: rgbGradient, sigmaGradient: sigmaGradient, gradients: g.baseAddress!,
                                         scratch: scratch)
                    }
                    try compare(network, activations, scratch, gradients, rgbGradient, sigmaGradient, label)
                }
            }
        }
    }

    /// The float64 forward and backward of every sample, compared as it goes; the matrix gradients summed
    /// over the samples and compared at the end.
    func compare(_ network: HashGridNetwork, _ a: HashGridActivations, _ scratch: HashGridBackwardScratch, _ gradients: [Float],
                 _ rgbGradient: [Float], _ sigmaGradient: [Float], _ label: String) throws {
        let c = network.configuration, w = network.parameters, n = a.count
        let layers = c.densityLayers + c.colorLayers
        var offsets: [Int] = [], offset = 0
        for layer in layers { offsets.append(offset); offset += layer.outputs * layer.inputs }
        var gradientSum = [Double](repeating: 0, count: offset), gradientMagnitude = gradientSum
        var failures = 0
        for i in 0..<n where failures == 0 {
            let before = testRun?.failureCount ?? 0
            // Forward.
            let encoded = Array(a.encoded[(i * c.encodingWidth)..<((i + 1) * c.encodingWidth)]).map(Double.init)
            var inputs: [Tracked] = [Tracked(value: encoded, magnitude: encoded.map(abs))]
            for l in 0..<c.densityHiddenLayers {
                let y = Self.dense(inputs.last!, w, offsets[l], rows: c.densityWidth, inputs: layers[l].inputs, relu: true)
                for k in 0..<c.densityWidth { check(a.densityHidden[l][i * c.densityWidth + k], y.value[k], y.magnitude[k], "\(label): density hidden \(l)[\(i), \(k)]") }
                inputs.append(y)
            }
            let densityOut = Self.dense(inputs.last!, w, offsets[c.densityHiddenLayers], rows: 16, inputs: c.densityWidth, relu: false)
            for k in 0..<16 { check(a.colorInput[i * 32 + k], densityOut.value[k], densityOut.magnitude[k], "\(label): density output [\(i), \(k)]") }
            check(a.sigma[i], exp(densityOut.value[0]), exp(densityOut.value[0]) * densityOut.magnitude[0], "\(label): σ[\(i)]")
            let sh = (16..<32).map { Double(a.colorInput[i * 32 + $0]) }
            inputs.append(Tracked(value: densityOut.value + sh, magnitude: densityOut.magnitude + sh.map(abs)))
            let colorBase = c.densityLayers.count
            for l in 0..<c.colorHiddenLayers {
                let y = Self.dense(inputs.last!, w, offsets[colorBase + l], rows: c.colorWidth, inputs: layers[colorBase + l].inputs, relu: true)
                for k in 0..<c.colorWidth { check(a.colorHidden[l][i * c.colorWidth + k], y.value[k], y.magnitude[k], "\(label): colour hidden \(l)[\(i), \(k)]") }
                inputs.append(y)
            }
            let logits = Self.dense(inputs.last!, w, offsets[layers.count - 1], rows: 3, inputs: c.colorWidth, relu: false)
            var upstream = Tracked(value: [], magnitude: [])
            for k in 0..<3 {
                check(a.colorLogits[3 * i + k], logits.value[k], logits.magnitude[k], "\(label): logit [\(i), \(k)]")
                let rgb = 1 / (1 + exp(-logits.value[k]))
                // The logistic's slope is at most 1/4: the logit's error reaches RGB at most so scaled.
                check(a.rgb[3 * i + k], rgb, logits.magnitude[k] / 4, "\(label): rgb [\(i), \(k)]")
                let g = Double(rgbGradient[3 * i + k])
                upstream.value.append(g * rgb * (1 - rgb)); upstream.magnitude.append(abs(g) * rgb * (1 - rgb))
            }
            // Backward, layer by layer from the last; masks are the kernel's (see the class comment).
            func backwardLayer(_ l: Int, _ input: Tracked, _ rows: Int, _ outputWidth: Int, mask: ((Int) -> Bool)?) -> Tracked {
                let width = layers[l].inputs
                for o in 0..<rows {
                    for k in 0..<width {
                        gradientSum[offsets[l] + o * width + k] += upstream.value[o] * input.value[k]
                        gradientMagnitude[offsets[l] + o * width + k] += upstream.magnitude[o] * input.magnitude[k]
                    }
                }
                var down = Tracked(value: [Double](repeating: 0, count: outputWidth), magnitude: [Double](repeating: 0, count: outputWidth))
                for k in 0..<outputWidth where mask?(k) ?? true {
                    for o in 0..<rows {
                        let weight = Double(w[offsets[l] + o * width + k])
                        down.value[k] += upstream.value[o] * weight; down.magnitude[k] += upstream.magnitude[o] * abs(weight)
                    }
                }
                return down
            }
            var rows = 3
            for h in stride(from: c.colorHiddenLayers, through: 0, by: -1) {
                let l = colorBase + h
                let input = inputs[c.densityHiddenLayers + 1 + h]
                if h > 0 {
                    upstream = backwardLayer(l, input, rows, c.colorWidth) { a.colorHidden[h - 1][i * c.colorWidth + $0] > 0 }
                    rows = c.colorWidth
                } else {
                    upstream = backwardLayer(l, input, rows, 16, mask: nil)
                    rows = 16
                }
            }
            let derivative = exp(min(max(Double(a.colorInput[i * 32]), -15), 15))
            upstream.value[0] += Double(sigmaGradient[i]) * derivative
            upstream.magnitude[0] += abs(Double(sigmaGradient[i])) * derivative
            for h in stride(from: c.densityHiddenLayers, through: 0, by: -1) {
                if h > 0 {
                    upstream = backwardLayer(h, inputs[h], rows, c.densityWidth) { a.densityHidden[h - 1][i * c.densityWidth + $0] > 0 }
                    rows = c.densityWidth
                } else {
                    upstream = backwardLayer(0, inputs[0], rows, c.encodingWidth, mask: nil)
                }
            }
            for k in 0..<c.encodingWidth {
                check(scratch.encodingGradient[i * c.encodingWidth + k], upstream.value[k], upstream.magnitude[k], "\(label): dL/d(encoding)[\(i), \(k)]")
            }
            failures += (testRun?.failureCount ?? 0) - before
        }
        // Matrix gradients: sums over n samples add a further n·2^-24 relative to their magnitude (the
        // groups' and tiles' partial sums; n ≤ 65 tiles + 7 here, ≤ 5e-4 · M at 128-sample tiles).
        let sumTolerance = Double(n) * 0x1p-24
        var reported = 0
        for j in 0..<offset where reported < 5 {
            let lastLayer = layers.count - 1
            let isPadding = j >= offsets[lastLayer] + 3 * layers[lastLayer].inputs
            if isPadding {
                if gradients[j] != 0 { XCTFail("\(label): padding row gradient [\(j)] = \(gradients[j]), expected exactly 0"); reported += 1 }
                continue
            }
            let bound = (Self.magnitudeTolerance + sumTolerance) * gradientMagnitude[j] + 1e-30
            if abs(Double(gradients[j]) - gradientSum[j]) > bound {
                XCTFail("\(label): dL/dW[\(j)] = \(gradients[j]), float64 \(gradientSum[j]), bound \(bound)")
                reported += 1
            }
        }
    }

    /// The vectorised scatter computes each level's corners 16 samples at a time with the scalar loop's
    /// operations and adds in the same sample and corner order: its grid gradient equals the scalar
    /// path's bit for bit, dense and hashed levels, positions on the cube's faces and outside it included.
    func testHashGridScatterIsBitIdenticalOnEveryPath() throws {
        let c = HashGridConfiguration(levels: 8, featuresPerLevel: 4, log2TableSize: 14)
        XCTAssertTrue(c.levelGeometry.contains { $0.isDense } && c.levelGeometry.contains { !$0.isDense })
        let network = try randomNetwork(c, seed: 21)
        for n in [1, 15, 17, 1000] {
            var (positions, directions) = randomInputs(n, seed: UInt64(n))
            if n > 10 { positions[0] = 0; positions[4] = 1; positions[6] = -0.25; positions[8] = 1.5 }
            let activations = HashGridActivations()
            activations.setInputs(positions: positions, directions: directions, configuration: c)
            var generator = SeededGenerator(seed: 99)
            let encodingGradient = (0..<(n * c.encodingWidth)).map { _ in generator.unitFloat() * 2 - 1 }
            var scalar: [Float] = []
            for path in Int32(VKK_PATH_SCALAR)...vkk_cpu_best_path_for(vkk_cpu_features()) {
                vkk_cpu_set_path(path)
                var grid = [Float](repeating: 0, count: c.gridParameterCount)
                encodingGradient.withUnsafeBufferPointer { e in
                    grid.withUnsafeMutableBufferPointer { network.scatterEncodingGradient(activations, e.baseAddress!, $0.baseAddress!) }
                }
                XCTAssertTrue(grid.contains { $0 != 0 })
                if path == VKK_PATH_SCALAR { scalar = grid } else {
                    XCTAssertEqual(grid, scalar, "n \(n), \(String(cString: vkk_cpu_path_name(path))): scatter differs from the scalar path's")
                }
            }
        }
    }

    func testZeroSamplesZeroTheMatrixGradientsAndLeaveTheGrid() throws {
        let c = configurations[0]
        let network = try randomNetwork(c, seed: 3)
        let activations = HashGridActivations()
        activations.setInputs(positions: [], directions: [], configuration: c)
        network.forward(activations)
        XCTAssertEqual(activations.count, 0)
        var gradients = [Float](repeating: 1, count: c.parameterCount)
        gradients.withUnsafeMutableBufferPointer { g in
            network.backward(activations, rgbGradient: [], sigmaGradient: [], gradients: g.baseAddress!, scratch: HashGridBackwardScratch())
        }
        XCTAssertTrue(gradients[0..<c.gridParameterOffset].allSatisfy { $0 == 0 })
        XCTAssertTrue(gradients[c.gridParameterOffset...].allSatisfy { $0 == 1 }, "the grid part is the caller's")
    }

    /// The backward pass's split into groups (whose partial sums are added in group order) depends on the
    /// count alone, with at most 64 groups of whole tiles.
    func testBackwardGroupsAreAFunctionOfTheCountAlone() {
        let tile = Int(VKK_MLP_TILE)
        XCTAssertEqual(HashGridNetwork.backwardGroups(1).groups, 1)
        XCTAssertEqual(HashGridNetwork.backwardGroups(64 * tile).size, tile)
        let (groups, size) = HashGridNetwork.backwardGroups(65 * tile + 7)
        XCTAssertEqual(size, 2 * tile)
        XCTAssertEqual(groups, 33)
        XCTAssertLessThanOrEqual(groups, 64)
    }
}
