import Foundation
@testable import VulkanKernels
import XCTest

/// Float64 re-implementation of ``HashGridNetwork``'s forward pass (encoding, density MLP, SH, colour MLP,
/// activations), written from the formulas, for finite-difference references.
struct Float64Network {
    let configuration: HashGridConfiguration
    var parameters: [Double]

    func sh(_ d: SIMD3<Double>) -> [Double] {
        let x = d.x, y = d.y, z = d.z, xx = x * x, yy = y * y, zz = z * z
        return [0.28209479177387814, -0.48860251190291987 * y, 0.48860251190291987 * z, -0.48860251190291987 * x,
                1.0925484305920792 * x * y, -1.0925484305920792 * y * z, 0.94617469575755997 * zz - 0.31539156525251999,
                -1.0925484305920792 * x * z, 0.54627421529603959 * (xx - yy), 0.59004358992664352 * y * (yy - 3 * xx),
                2.8906114426405538 * x * y * z, 0.45704579946446572 * y * (1 - 5 * zz), 0.3731763325901154 * z * (5 * zz - 3),
                0.45704579946446572 * x * (1 - 5 * zz), 1.4453057213202769 * z * (xx - yy), 0.59004358992664352 * x * (3 * yy - xx)]
    }

    /// (corner table entry, weight) for the 8 corners of each level at unit position `x`.
    func corners(_ x: SIMD3<Double>) -> [[(Int, Double)]] {
        configuration.levelGeometry.map { level in
            let p = x * Double(level.scale) + 0.5
            let cell = p.rounded(.down), t = p - cell
            return (0..<8).map { corner in
                let d = SIMD3<Int>(corner & 1, (corner >> 1) & 1, corner >> 2)
                let w = (d.x == 1 ? t.x : 1 - t.x) * (d.y == 1 ? t.y : 1 - t.y) * (d.z == 1 ? t.z : 1 - t.z)
                let v = SIMD3<UInt32>(UInt32(cell.x) + UInt32(d.x), UInt32(cell.y) + UInt32(d.y), UInt32(cell.z) + UInt32(d.z))
                let size = UInt32(level.tableSize)
                let entry: UInt32 = level.isDense
                    ? (v.x &+ v.y &* UInt32(level.resolution) &+ v.z &* UInt32(level.resolution) &* UInt32(level.resolution)) % size
                    : (v.x ^ (v.y &* 2_654_435_761) ^ (v.z &* 805_459_861)) % size
                return (level.tableOffset + Int(entry), w)
            }
        }
    }

    func encode(_ x: SIMD3<Double>) -> [Double] {
        let c = configuration
        var out = [Double](repeating: 0, count: c.encodingWidth)
        for (l, level) in corners(x).enumerated() {
            for (entry, w) in level {
                for f in 0..<c.featuresPerLevel { out[l * c.featuresPerLevel + f] += w * parameters[c.gridParameterOffset + entry * c.featuresPerLevel + f] }
            }
        }
        return out
    }

    func layer(_ input: [Double], _ shape: (outputs: Int, inputs: Int), _ offset: inout Int, relu: Bool) -> [Double] {
        var out = [Double](repeating: 0, count: shape.outputs)
        for o in 0..<shape.outputs {
            var s = 0.0
            for i in 0..<shape.inputs { s += parameters[offset + o * shape.inputs + i] * input[i] }
            out[o] = relu ? max(s, 0) : s
        }
        offset += shape.outputs * shape.inputs
        return out
    }

    /// (rgb, σ) at unit position x seen along unit direction d.
    func evaluate(_ x: SIMD3<Double>, _ d: SIMD3<Double>) -> (SIMD3<Double>, Double) {
        let c = configuration
        var h = encode(x)
        var offset = 0
        for (k, shape) in c.densityLayers.enumerated() { h = layer(h, shape, &offset, relu: k < c.densityLayers.count - 1) }
        let sigma = exp(h[0])
        var g = h + sh(d)
        for (k, shape) in c.colorLayers.enumerated() { g = layer(g, shape, &offset, relu: k < c.colorLayers.count - 1) }
        func sigmoid(_ v: Double) -> Double { 1 / (1 + exp(-v)) }
        return (SIMD3(sigmoid(g[0]), sigmoid(g[1]), sigmoid(g[2])), sigma)
    }
}

final class NeRFTrainingGradientTests: XCTestCase {
    /// Dense and hashed levels (4³ fits the 64-entry tables, 6³… do not), instant-ngp's MLP depths
    /// (density: 1 hidden layer, colour: 2), 16 wide to keep the float64 finite differences quick.
    let small = HashGridConfiguration(levels: 4, featuresPerLevel: 2, log2TableSize: 6, baseResolution: 4, perLevelScale: 1.5,
                                      densityWidth: 16, densityHiddenLayers: 1, colorWidth: 16, colorHiddenLayers: 2)

    /// Central-difference step in float64: truncation error ~h²·f''' ≈ 1e-12 and rounding ~1e-16/h ≈ 1e-11,
    /// both far below the float32 errors being checked.
    let step = 1e-5
    /// float32 analytic gradients against float64 references, relative to the largest reference
    /// gradient of the set: each entry is a sum of at most a few hundred float32 products of O(1) terms
    /// (≤ 2^9·2^-24 ≈ 3e-5 relative even if every rounding adds up), plus float32 activations feeding
    /// them (≈1e-6 relative); 2e-4 leaves a margin of several times the worst case.
    let gradientTolerance = 2e-4

    func randomInputs(_ count: Int, seed: UInt64) -> (positions: [Float], directions: [Float]) {
        var generator = SeededGenerator(seed: seed)
        var p: [Float] = [], d: [Float] = []
        for _ in 0..<count {
            p += [generator.unitFloat() * 0.98 + 0.01, generator.unitFloat() * 0.98 + 0.01, generator.unitFloat() * 0.98 + 0.01]
            var v = SIMD3<Float>(generator.unitFloat() * 2 - 1, generator.unitFloat() * 2 - 1, generator.unitFloat() * 2 - 1)
            v /= (v * v).sum().squareRoot()
            d += [v.x, v.y, v.z]
        }
        return (p, d)
    }

    /// Random parameters of a useful scale: grid features ±1 (so the encoding, not just the weights,
    /// matters), MLP weights Xavier-uniform as the trainer initialises them.
    func randomNetwork(_ c: HashGridConfiguration, seed: UInt64) throws -> HashGridNetwork {
        try hashGridNetworkWithRandomGrid(c, seed: seed, gridSeed: seed ^ 0xabc)
    }

    /// dL/dθ for L = Σ a·rgb + b·σ over the samples, from the float32 backward pass.
    func analyticGradient(_ network: HashGridNetwork, positions: [Float], directions: [Float], a: [Float], b: [Float]) -> [Float] {
        let activations = HashGridActivations()
        activations.setInputs(positions: positions, directions: directions, configuration: network.configuration)
        network.forward(activations)
        var gradients = [Float](repeating: 0, count: network.configuration.parameterCount)
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                gradients.withUnsafeMutableBufferPointer { g in
                    network.backward(activations, rgbGradient: a.baseAddress!, sigmaGradient: b.baseAddress!, gradients: g.baseAddress!,
                                     scratch: HashGridBackwardScratch())
                }
            }
        }
        return gradients
    }

    func float64Loss(_ reference: Float64Network, positions: [Float], directions: [Float], a: [Float], b: [Float]) -> Double {
        var total = 0.0
        for i in 0..<(positions.count / 3) {
            let x = SIMD3<Double>(Double(positions[3 * i]), Double(positions[3 * i + 1]), Double(positions[3 * i + 2]))
            let d = SIMD3<Double>(Double(directions[3 * i]), Double(directions[3 * i + 1]), Double(directions[3 * i + 2]))
            let (rgb, sigma) = reference.evaluate(x, d)
            total += Double(a[3 * i]) * rgb.x + Double(a[3 * i + 1]) * rgb.y + Double(a[3 * i + 2]) * rgb.z + Double(b[i]) * sigma
        }
        return total
    }

    func testForwardMatchesFloat64ReferenceAndFP16Field() throws {
        let network = try randomNetwork(small, seed: 3)
        let (positions, directions) = randomInputs(64, seed: 4)
        let activations = HashGridActivations()
        activations.setInputs(positions: positions, directions: directions, configuration: small)
        network.forward(activations)
        let reference = Float64Network(configuration: small, parameters: network.parameters.map(Double.init))
        for i in 0..<64 {
            let (rgb, sigma) = reference.evaluate(SIMD3(Double(positions[3 * i]), Double(positions[3 * i + 1]), Double(positions[3 * i + 2])),
                                                  SIMD3(Double(directions[3 * i]), Double(directions[3 * i + 1]), Double(directions[3 * i + 2])))
            // float32 sums of ≤ 32 O(1) products: ~1e-6 absolute on logits, σ relative the same.
            for c in 0..<3 { XCTAssertEqual(Double(activations.rgb[3 * i + c]), rgb[c], accuracy: 1e-5) }
            XCTAssertEqual(Double(activations.sigma[i]), sigma, accuracy: 1e-5 * sigma)
        }
    }

    /// Every MLP layer, the hash tables (dense and hashed levels) and the σ/RGB activations, through
    /// the whole backward pass: analytic float32 gradient vs float64 central differences.
    func testNetworkBackwardMatchesFloat64FiniteDifferences() throws {
        let network = try randomNetwork(small, seed: 11)
        let n = 24
        let (positions, directions) = randomInputs(n, seed: 12)
        var generator = SeededGenerator(seed: 13)
        let a = (0..<(3 * n)).map { _ in generator.unitFloat() * 2 - 1 }
        let b = (0..<n).map { _ in generator.unitFloat() * 2 - 1 }
        let analytic = analyticGradient(network, positions: positions, directions: directions, a: a, b: b)
        var reference = Float64Network(configuration: small, parameters: network.parameters.map(Double.init))

        // Parameter ranges: each MLP layer, then each grid level.
        var ranges: [(String, Range<Int>)] = []
        var offset = 0
        for (k, shape) in small.densityLayers.enumerated() { ranges.append(("density layer \(k)", offset..<(offset + shape.outputs * shape.inputs))); offset += shape.outputs * shape.inputs }
        for (k, shape) in small.colorLayers.enumerated() {
            // The last layer's rows 3…15 are padding (always 0 gradient): check the RGB rows.
            let rows = k == small.colorLayers.count - 1 ? 3 : shape.outputs
            ranges.append(("colour layer \(k)", offset..<(offset + rows * shape.inputs))); offset += shape.outputs * shape.inputs
        }
        for (l, level) in small.levelGeometry.enumerated() {
            let start = small.gridParameterOffset + level.tableOffset * small.featuresPerLevel
            ranges.append(("grid level \(l)\(level.isDense ? " (dense)" : " (hashed)")", start..<(start + level.tableSize * small.featuresPerLevel)))
        }
        for (name, range) in ranges {
            // Up to 24 parameters per range, spread over it.
            let picks = Swift.stride(from: range.lowerBound, to: range.upperBound, by: max(1, range.count / 24))
            var worst = 0.0, scale = 0.0
            var pairs: [(Double, Double)] = []
            for i in picks {
                let saved = reference.parameters[i]
                reference.parameters[i] = saved + step
                let plus = float64Loss(reference, positions: positions, directions: directions, a: a, b: b)
                reference.parameters[i] = saved - step
                let minus = float64Loss(reference, positions: positions, directions: directions, a: a, b: b)
                reference.parameters[i] = saved
                let numeric = (plus - minus) / (2 * step)
                pairs.append((Double(analytic[i]), numeric))
                scale = max(scale, abs(numeric))
            }
            XCTAssertGreaterThan(scale, 1e-6, "\(name): no gradient reached these parameters")
            for (g, numeric) in pairs { worst = max(worst, abs(g - numeric)) }
            XCTAssertLessThanOrEqual(worst, gradientTolerance * scale, "\(name): worst |analytic − FD| \(worst), scale \(scale)")
        }
        // The last colour layer's padding rows get exactly zero.
        let last = small.colorLayers.last!
        let lastStart = small.gridParameterOffset - last.outputs * last.inputs
        XCTAssertTrue(analytic[(lastStart + 3 * last.inputs)..<small.gridParameterOffset].allSatisfy { $0 == 0 })
    }

    /// The trainer's compaction (``HashGridActivations/compact``): dropping each ray's samples past its
    /// early termination — whose upstream gradients are 0 — leaves every parameter's gradient unchanged.
    /// 40 rays of 0–15 samples, each keeping a random prefix (some none, some all). The two backward
    /// passes add the same nonzero terms in the same sample order; only the GEMMs' blocking (which
    /// depends on the row count) may reorder the float32 sums of ≤ n = 300 products: ≤ 300·2^-24 ≈ 2e-5
    /// relative to the sum of magnitudes, so 1e-4 of the largest gradient of each part is a safe bound,
    /// while a row moved to the wrong place changes gradients by O(1) of their scale.
    func testCompactedBackwardEqualsFullBackward() throws {
        let network = try randomNetwork(small, seed: 31)
        var generator = SeededGenerator(seed: 32)
        var starts: [Int] = [], counts: [Int] = [], keep: [Int] = []
        var n = 0
        for r in 0..<40 {
            let count = r == 0 ? 0 : Int(generator.next() % 16)
            starts.append(n); counts.append(count)
            keep.append(r == 1 ? count : Int(generator.next() % UInt64(count + 1)))
            n += count
        }
        let (positions, directions) = randomInputs(n, seed: 33)
        var a = (0..<(3 * n)).map { _ in generator.unitFloat() * 2 - 1 }
        var b = (0..<n).map { _ in generator.unitFloat() * 2 - 1 }
        for r in starts.indices {
            for i in (starts[r] + keep[r])..<(starts[r] + counts[r]) { a[3 * i] = 0; a[3 * i + 1] = 0; a[3 * i + 2] = 0; b[i] = 0 }
        }
        let full = analyticGradient(network, positions: positions, directions: directions, a: a, b: b)

        let activations = HashGridActivations()
        activations.setInputs(positions: positions, directions: directions, configuration: small)
        network.forward(activations)
        let kept = a.withUnsafeMutableBufferPointer { a in
            b.withUnsafeMutableBufferPointer { b in
                activations.compact(starts: starts, keep: keep, configuration: small, extra: [(a.baseAddress!, 3), (b.baseAddress!, 1)])
            }
        }
        XCTAssertEqual(kept, keep.reduce(0, +))
        XCTAssertEqual(activations.count, kept)
        XCTAssertLessThan(kept, n)
        // The kept samples, in ray order.
        let order = starts.indices.flatMap { r in starts[r]..<(starts[r] + keep[r]) }
        XCTAssertEqual(Array(activations.positions[0..<(3 * kept)]), order.flatMap { positions[(3 * $0)..<(3 * $0 + 3)] })
        var compacted = [Float](repeating: 0, count: small.parameterCount)
        network.backward(activations, rgbGradient: a, sigmaGradient: b, gradients: &compacted, scratch: HashGridBackwardScratch())
        for (name, range) in [("MLPs", 0..<small.gridParameterOffset), ("grid", small.gridParameterOffset..<small.parameterCount)] {
            let scale = full[range].map(abs).max() ?? 0
            XCTAssertGreaterThan(scale, 1e-3, "\(name): no gradient")
            var worst: Float = 0
            for i in range { worst = max(worst, abs(full[i] - compacted[i])) }
            XCTAssertLessThanOrEqual(worst, 1e-4 * scale, "\(name): compacted backward differs by \(worst) (scale \(scale))")
            // Entries only dropped samples touched stay exactly 0 (Adam skips them).
            XCTAssertEqual(range.filter { (full[$0] == 0) != (compacted[$0] == 0) }.count, 0, "\(name): zero pattern differs")
        }
    }

    /// The hash-encoding scatter alone: dL/d(table) for L = Σ_i c_i·enc_i equals Σ over samples and corners
    /// of weight·c, computed in float64 — entries no sample touches stay exactly 0.
    func testHashEncodingScatterMatchesFloat64() throws {
        let c = HashGridConfiguration(levels: 6, featuresPerLevel: 4, log2TableSize: 8, baseResolution: 4, perLevelScale: 1.7,
                                      densityWidth: 16, densityHiddenLayers: 1, colorWidth: 16, colorHiddenLayers: 1)
        let network = try randomNetwork(c, seed: 21)
        let n = 300
        let (positions, directions) = randomInputs(n, seed: 22)
        let activations = HashGridActivations()
        activations.setInputs(positions: positions, directions: directions, configuration: c)
        var generator = SeededGenerator(seed: 23)
        let upstream = (0..<(n * c.encodingWidth)).map { _ in generator.unitFloat() * 2 - 1 }
        var gradient = [Float](repeating: 0, count: c.gridParameterCount)
        upstream.withUnsafeBufferPointer { u in
            gradient.withUnsafeMutableBufferPointer { g in network.scatterEncodingGradient(activations, u.baseAddress!, g.baseAddress!) }
        }
        let reference64 = Float64Network(configuration: c, parameters: network.parameters.map(Double.init))
        var expected = [Double](repeating: 0, count: c.gridParameterCount)
        for i in 0..<n {
            let x = SIMD3(Double(positions[3 * i]), Double(positions[3 * i + 1]), Double(positions[3 * i + 2]))
            for (l, level) in reference64.corners(x).enumerated() {
                for (entry, w) in level {
                    for f in 0..<c.featuresPerLevel { expected[entry * c.featuresPerLevel + f] += w * Double(upstream[i * c.encodingWidth + l * c.featuresPerLevel + f]) }
                }
            }
        }
        var worst = 0.0, worstEntry = 0, untouchedNonZero = 0
        for i in expected.indices {
            let error = abs(Double(gradient[i]) - expected[i])
            if error > worst { worst = error; worstEntry = i }
            if expected[i] == 0 && gradient[i] != 0 { untouchedNonZero += 1 }
        }
        // Each entry sums ≤ n·8 = 2400 float32 products of magnitude ≤ 1: ≤ 2400·2^-24 ≈ 1.4e-4 absolute at worst.
        XCTAssertLessThanOrEqual(worst, 2e-4, "entry \(worstEntry): \(gradient[worstEntry]) vs \(expected[worstEntry])")
        XCTAssertEqual(untouchedNonZero, 0, "entries no sample touches must stay exactly 0")
        XCTAssertGreaterThan(expected.filter { $0 != 0 }.count, 100)
    }

    func testSphericalHarmonicsGradientMatchesFiniteDifferences() {
        var generator = SeededGenerator(seed: 31)
        let reference = Float64Network(configuration: small, parameters: [])
        for _ in 0..<20 {
            var d = SIMD3<Float>(generator.unitFloat() * 2 - 1, generator.unitFloat() * 2 - 1, generator.unitFloat() * 2 - 1)
            d /= (d * d).sum().squareRoot()
            let upstream = (0..<16).map { _ in generator.unitFloat() * 2 - 1 }
            let analytic = upstream.withUnsafeBufferPointer { sphericalHarmonicsDegree4Gradient(d, coefficientGradient: $0.baseAddress!) }
            for axis in 0..<3 {
                var plus = SIMD3<Double>(Double(d.x), Double(d.y), Double(d.z)), minus = plus
                plus[axis] += step; minus[axis] -= step
                let fPlus = zip(reference.sh(plus), upstream).map { $0 * Double($1) }.reduce(0, +)
                let fMinus = zip(reference.sh(minus), upstream).map { $0 * Double($1) }.reduce(0, +)
                // 16 float32 terms of magnitude ≤ ~3: ~1e-6 absolute.
                XCTAssertEqual(Double(analytic[axis]), (fPlus - fMinus) / (2 * step), accuracy: 1e-5)
            }
        }
    }

    func composite64(rgb: [Double], sigma: [Double], dt: [Double], background: SIMD3<Double>) -> SIMD3<Double> {
        var colour = SIMD3<Double>(repeating: 0), t = 1.0
        for i in sigma.indices {
            let alpha = 1 - exp(-sigma[i] * dt[i])
            let c = SIMD3<Double>(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2])
            let weight: Double = t * alpha
            colour += weight * c
            t *= 1 - alpha
        }
        return colour + t * background
    }

    func testCompositingBackwardMatchesFloat64FiniteDifferences() {
        var generator = SeededGenerator(seed: 41)
        let n = 40
        let rgb = (0..<(3 * n)).map { _ in generator.unitFloat() }
        let sigma = (0..<n).map { _ in generator.unitFloat() * 30 }
        let dt = (0..<n).map { _ in 0.005 + generator.unitFloat() * 0.01 }
        let background = SIMD3<Float>(0.2, 0.7, 0.4)
        let upstream = SIMD3<Float>(0.3, -0.8, 0.5)
        var rgbGradient = [Float](repeating: 0, count: 3 * n), sigmaGradient = [Float](repeating: 0, count: n)
        let result = VolumeCompositing.forward(rgb: rgb, sigma: sigma, dt: dt, count: n, background: background, threshold: 0)
        VolumeCompositing.backward(rgb: rgb, sigma: sigma, dt: dt, count: n, result: result, colourGradient: upstream,
                                   rgbGradient: &rgbGradient, sigmaGradient: &sigmaGradient)
        let r64 = rgb.map(Double.init), s64 = sigma.map(Double.init), d64 = dt.map(Double.init)
        let b64 = SIMD3<Double>(0.2, 0.7, 0.4), u64 = SIMD3<Double>(0.3, -0.8, 0.5)
        let exact = composite64(rgb: r64, sigma: s64, dt: d64, background: b64)
        for c in 0..<3 { XCTAssertEqual(Double(result.colour[c]), exact[c], accuracy: 1e-5) }
        // Gradients are O(dt) ≈ 1e-2 and sums of ≤ 40 float32 terms: 1e-6 absolute is ~1e-4 relative.
        let compositingTolerance = 1e-6
        for i in 0..<n {
            var plus = s64, minus = s64
            plus[i] += step; minus[i] -= step
            let difference: SIMD3<Double> = composite64(rgb: r64, sigma: plus, dt: d64, background: b64) - composite64(rgb: r64, sigma: minus, dt: d64, background: b64)
            let numeric = (difference * u64).sum() / (2 * step)
            XCTAssertEqual(Double(sigmaGradient[i]), numeric, accuracy: compositingTolerance, "dσ[\(i)]")
            for c in 0..<3 {
                var p = r64, m = r64
                p[3 * i + c] += step; m[3 * i + c] -= step
                let colourDifference: SIMD3<Double> = composite64(rgb: p, sigma: s64, dt: d64, background: b64) - composite64(rgb: m, sigma: s64, dt: d64, background: b64)
                let numericColour = (colourDifference * u64).sum() / (2 * step)
                XCTAssertEqual(Double(rgbGradient[3 * i + c]), numericColour, accuracy: compositingTolerance, "dc[\(i)][\(c)]")
            }
        }
        // Early termination: samples after the ray stopped get no weight and no gradient.
        let stopped = VolumeCompositing.forward(rgb: rgb, sigma: sigma, dt: dt, count: n, background: background, threshold: 0.5)
        XCTAssertLessThan(stopped.used, n)
        VolumeCompositing.backward(rgb: rgb, sigma: sigma, dt: dt, count: n, result: stopped, colourGradient: upstream,
                                   rgbGradient: &rgbGradient, sigmaGradient: &sigmaGradient)
        XCTAssertTrue(sigmaGradient[stopped.used...].allSatisfy { $0 == 0 })
        XCTAssertTrue(rgbGradient[(3 * stopped.used)...].allSatisfy { $0 == 0 })
    }

    func testLossGradientsMatchFloat64() {
        for loss in TrainingLoss.allCases {
            for (prediction, target) in [(0.5, 0.45), (0.9, 0.2), (0.1, 0.7), (0.3, 0.3 + 1e-3)] as [(Float, Float)] {
                func reference(_ p: Double) -> Double {
                    let d = p - Double(target)
                    switch loss {
                    case .l2: return d * d
                    case .huber: return abs(d) > 0.1 ? (abs(d) - 0.05) / 5 : d * d / 0.2 / 5
                    }
                }
                let (value, gradient) = loss.evaluate(prediction: prediction, target: target)
                let p = Double(prediction)
                // One or two float32 operations on O(1) values.
                XCTAssertEqual(Double(value), reference(p), accuracy: 1e-6, "\(loss) at \(prediction) vs \(target)")
                XCTAssertEqual(Double(gradient), (reference(p + step) - reference(p - step)) / (2 * step), accuracy: 1e-5,
                               "\(loss) gradient at \(prediction) vs \(target)")
            }
        }
    }
}
