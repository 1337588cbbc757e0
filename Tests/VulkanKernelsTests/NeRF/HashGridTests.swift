import Foundation
import VulkanKernels
import XCTest

/// A field with random fp16 parameters: grid features uniform in [−1, 1), MLP weights uniform in
/// ±1/√inputs (so activations stay O(1) through the layers, as in a trained network).
func randomHashGridField(_ c: HashGridConfiguration, seed: UInt64,
                         bounds: AABB = AABB(lower: SIMD3(-1, -0.5, 0), upper: SIMD3(1, 1.5, 2))) throws -> HashGridField {
    var generator = SeededGenerator(seed: seed)
    var parameters: [Float16] = []
    for layer in c.densityLayers + c.colorLayers {
        let limit = 1 / Float(layer.inputs).squareRoot() * 2
        for _ in 0..<(layer.outputs * layer.inputs) { parameters.append(Float16(Float.random(in: -limit..<limit, using: &generator))) }
    }
    for _ in 0..<c.gridParameterCount { parameters.append(Float16(Float.random(in: -1..<1, using: &generator))) }
    return try HashGridField(configuration: c, parameters: parameters, bounds: bounds)
}

/// Samples in the layout of ``RadianceField``: positions spread over (and a little beyond) `bounds`,
/// random unit directions.
func randomSamples(count: Int, bounds: AABB, seed: UInt64, margin: Float = 0.05) -> [Float] {
    var generator = SeededGenerator(seed: seed)
    var samples: [Float] = []
    for _ in 0..<count {
        let t = SIMD3<Float>(Float.random(in: -margin..<(1 + margin), using: &generator), Float.random(in: -margin..<(1 + margin), using: &generator),
                             Float.random(in: -margin..<(1 + margin), using: &generator))
        let p = bounds.lower + t * bounds.size
        var d = SIMD3<Float>(Float.random(in: -1..<1, using: &generator), Float.random(in: -1..<1, using: &generator), Float.random(in: -1..<1, using: &generator))
        d = d / (d * d).sum().squareRoot()
        samples += [p.x, p.y, p.z, 0, d.x, d.y, d.z, 0]
    }
    return samples
}

final class HashGridTests: XCTestCase {
    /// A grid whose coarse levels are dense and finer ones hashed: 4³ = 64 vertices fit the 64-entry
    /// table, 6³, 9³ and 14³ do not.
    let tiny = HashGridConfiguration(levels: 4, featuresPerLevel: 2, log2TableSize: 6, baseResolution: 4, perLevelScale: 1.5,
                                     densityWidth: 16, densityHiddenLayers: 1, colorWidth: 16, colorHiddenLayers: 1)

    func testLevelGeometryMatchesInstantNGP() throws {
        // instant-ngp base.json (8 levels × 4 features, T = 2^19, N_min = 16) at aabb_scale 1: b = (2048/16)^(1/7) = 2.
        let base = HashGridConfiguration()
        XCTAssertEqual(base.perLevelScale, 2, accuracy: 1e-6)
        XCTAssertEqual(base.levelGeometry.map(\.resolution), [16, 32, 64, 128, 256, 512, 1024, 2048])
        XCTAssertEqual(base.levelGeometry.map(\.isDense), [true, true, true, false, false, false, false, false])
        XCTAssertEqual(base.gridParameterCount, (4096 + 32768 + 262144 + 5 * 524288) * 4)
        XCTAssertEqual(base.densityParameterCount, 64 * 32 + 16 * 64)
        XCTAssertEqual(base.colorParameterCount, 64 * 32 + 64 * 64 + 16 * 64)
        // The paper's 16 levels × 2 features: a real snapshot of that network holds 12,196,240 grid parameters.
        let paper = HashGridConfiguration(levels: 16, featuresPerLevel: 2)
        XCTAssertEqual(paper.gridParameterCount, 12_196_240)
        XCTAssertEqual(paper.parameterCount, 12_206_480)
    }

    /// Float64 re-implementation of the encoding, written from the paper's definition: per level, the
    /// 8 vertices around x·scale + ½, dense index x + y·R + z·R² or the XOR-prime hash, modulo the table.
    func referenceEncoding(_ field: HashGridField, _ p: SIMD3<Double>) -> [Double] {
        let c = field.configuration
        let lower = SIMD3<Double>(field.bounds.lower), size = SIMD3<Double>(field.bounds.size)
        let x = (p - lower) / size
        var out: [Double] = []
        for level in c.levelGeometry {
            let position = x * Double(level.scale) + 0.5
            let cell = position.rounded(.down)
            let t = position - cell
            var features = [Double](repeating: 0, count: c.featuresPerLevel)
            for dz in 0...1 { for dy in 0...1 { for dx in 0...1 {
                let v = [UInt64(cell.x) + UInt64(dx), UInt64(cell.y) + UInt64(dy), UInt64(cell.z) + UInt64(dz)]
                let r = UInt64(level.resolution)
                let index: UInt64 = level.isDense
                    ? (v[0] + v[1] * r + v[2] * r * r) & 0xffff_ffff
                    : (v[0] ^ ((v[1] * 2_654_435_761) & 0xffff_ffff) ^ ((v[2] * 805_459_861) & 0xffff_ffff))
                let entry = Int(index % UInt64(level.tableSize))
                let weight = (dx == 1 ? t.x : 1 - t.x) * (dy == 1 ? t.y : 1 - t.y) * (dz == 1 ? t.z : 1 - t.z)
                for f in 0..<c.featuresPerLevel {
                    features[f] += weight * Double(field.parameters[c.gridParameterOffset + (level.tableOffset + entry) * c.featuresPerLevel + f])
                }
            } } }
            out += features
        }
        return out
    }

    func testHashEncodingMatchesFloat64Reference() throws {
        // fp32 interpolation of fp16 features |f| ≤ 1 with 8 weights summing to 1: error ≲ 8·2⁻²⁴ plus the
        // fp32 rounding of x·scale (≲ 2⁻²³·14 cells); 1e-5 leaves a margin and still catches a wrong corner.
        let tolerance = 1e-5
        let field = try randomHashGridField(tiny, seed: 1)
        XCTAssertEqual(tiny.levelGeometry.map(\.isDense), [true, false, false, false])
        let samples = randomSamples(count: 500, bounds: field.bounds, seed: 2, margin: 0)
        var worst = 0.0
        for i in 0..<500 {
            let p = SIMD3<Float>(samples[8 * i], samples[8 * i + 1], samples[8 * i + 2])
            let got = field.encoding(at: p)
            let want = referenceEncoding(field, SIMD3<Double>(p))
            XCTAssertEqual(got.count, want.count)
            for (g, w) in zip(got, want) { worst = max(worst, abs(Double(g) - w)) }
        }
        XCTAssertLessThan(worst, tolerance)
        // The hash itself, by hand: 1 ⊕ (2·2654435761 mod 2³²) ⊕ (3·805459861 mod 2³²) = 2892625372.
        XCTAssertEqual(UInt32(1) ^ (UInt32(2) &* 2_654_435_761) ^ (UInt32(3) &* 805_459_861), 2_892_625_372)
    }

    /// Float64 forward pass of the whole network (encoding, both MLPs, SH, activations).
    func referenceEvaluate(_ field: HashGridField, position: SIMD3<Double>, direction d: SIMD3<Double>) -> [Double] {
        let c = field.configuration
        let x = (position - SIMD3<Double>(field.bounds.lower)) / SIMD3<Double>(field.bounds.size)
        if x.min() < 0 || x.max() > 1 { return [0, 0, 0, 0] }
        var activations = referenceEncoding(field, position) + [Double](repeating: 0, count: c.encodingWidth - c.levels * c.featuresPerLevel)
        var offset = 0
        func apply(_ layers: [(outputs: Int, inputs: Int)]) {
            for (index, layer) in layers.enumerated() {
                var next = [Double](repeating: 0, count: layer.outputs)
                for o in 0..<layer.outputs {
                    var sum = 0.0
                    for i in 0..<layer.inputs { sum += Double(field.parameters[offset + o * layer.inputs + i]) * activations[i] }
                    next[o] = index == layers.count - 1 ? sum : max(sum, 0)
                }
                offset += layer.outputs * layer.inputs
                activations = next
            }
        }
        apply(c.densityLayers)
        let sigma = exp(activations[0])
        let (x1, y1, z1) = (d.x, d.y, d.z)
        // Real SH, l ≤ 3, with the Condon–Shortley phase: Y_l^m normalisations √((2l+1)/4π·(l−|m|)!/(l+|m|)!).
        let pi = Double.pi
        let sh: [Double] = [
            0.5 * (1 / pi).squareRoot(),
            -(3 / (4 * pi)).squareRoot() * y1, (3 / (4 * pi)).squareRoot() * z1, -(3 / (4 * pi)).squareRoot() * x1,
            0.5 * (15 / pi).squareRoot() * x1 * y1, -0.5 * (15 / pi).squareRoot() * y1 * z1,
            0.25 * (5 / pi).squareRoot() * (3 * z1 * z1 - 1), -0.5 * (15 / pi).squareRoot() * x1 * z1,
            0.25 * (15 / pi).squareRoot() * (x1 * x1 - y1 * y1),
            -0.25 * (35 / (2 * pi)).squareRoot() * y1 * (3 * x1 * x1 - y1 * y1), 0.5 * (105 / pi).squareRoot() * x1 * y1 * z1,
            -0.25 * (21 / (2 * pi)).squareRoot() * y1 * (5 * z1 * z1 - 1), 0.25 * (7 / pi).squareRoot() * z1 * (5 * z1 * z1 - 3),
            -0.25 * (21 / (2 * pi)).squareRoot() * x1 * (5 * z1 * z1 - 1), 0.25 * (105 / pi).squareRoot() * z1 * (x1 * x1 - y1 * y1),
            -0.25 * (35 / (2 * pi)).squareRoot() * x1 * (x1 * x1 - 3 * y1 * y1),
        ]
        activations = Array(activations[0..<16]) + sh
        apply(c.colorLayers)
        if field.colorActivation == .exponential { return activations[0..<3].map { exp(min(max($0, -10), 10)) } + [sigma] }
        return activations[0..<3].map { 1 / (1 + exp(-$0)) } + [sigma]
    }

    func testCPUEvaluatorMatchesFloat64Reference() throws {
        // fp32 dot products of ≤ 32 terms of size O(1): relative error ≲ 32·2⁻²⁴ ≈ 2e-6 per layer, a few
        // layers deep and through exp: 2e-5 relative on σ and 1e-5 absolute on the sigmoid colours.
        for (index, c) in [tiny,
                           HashGridConfiguration(levels: 2, featuresPerLevel: 8, log2TableSize: 8, baseResolution: 3, perLevelScale: 2,
                                                 densityWidth: 32, densityHiddenLayers: 2, colorWidth: 16, colorHiddenLayers: 3)].enumerated() {
            let logistic = try randomHashGridField(c, seed: 10 + UInt64(index))
            // The same network with HDR colours, e^clamp(x, −10, 10): relative 2e-5 like σ.
            let hdr = try HashGridField(configuration: c, parameters: logistic.parameters, bounds: logistic.bounds, colorActivation: .exponential)
            // Samples reach 5% past the box on every side (those must come out empty); 300 of them span
            // several tiles of the fused kernels and a partial last tile.
            let samples = randomSamples(count: 300, bounds: logistic.bounds, seed: 20)
            for field in [logistic, hdr] {
                let output = field.evaluate(samples: samples)
                for i in 0..<300 {
                    let s = samples[(8 * i)..<(8 * i + 8)].map(Double.init)
                    let want = referenceEvaluate(field, position: SIMD3(s[0], s[1], s[2]), direction: SIMD3(s[4], s[5], s[6]))
                    for channel in 0..<3 {
                        let accuracy = field.colorActivation == .exponential ? 2e-5 * want[channel] + 1e-12 : 1e-5
                        XCTAssertEqual(Double(output[4 * i + channel]), want[channel], accuracy: accuracy, "sample \(i) \(field.colorActivation)")
                    }
                    XCTAssertEqual(Double(output[4 * i + 3]), want[3], accuracy: 2e-5 * want[3] + 1e-12, "sample \(i) σ")
                }
            }
        }
    }

    func testVulkanEvaluationMatchesCPU() throws {
        // Same fp32 operations, different summation order in the dot products (vec4 chunks vs sequential)
        // and possibly fused multiply-adds: differences ≲ width·2⁻²⁴·Σ|terms| ≈ 1e-5 on a logit, 1e-4
        // leaves room; σ = exp(logit) inherits it as a relative error.
        let configurations = [
            tiny,
            HashGridConfiguration(levels: 4, featuresPerLevel: 4, log2TableSize: 10, baseResolution: 4, perLevelScale: 2),
            HashGridConfiguration(levels: 2, featuresPerLevel: 8, log2TableSize: 8, baseResolution: 3, perLevelScale: 2,
                                  densityWidth: 32, densityHiddenLayers: 2, colorWidth: 16, colorHiddenLayers: 3),
            HashGridConfiguration(levels: 16, featuresPerLevel: 1, log2TableSize: 9, baseResolution: 2, perLevelScale: 1.3,
                                  densityWidth: 128, colorWidth: 32),
            // instant-ngp's two standard shapes (64-wide MLPs): these run the fixed-shape shader variants.
            HashGridConfiguration(levels: 8, featuresPerLevel: 4, log2TableSize: 12, baseResolution: 4, perLevelScale: 1.6),
            HashGridConfiguration(levels: 16, featuresPerLevel: 2, log2TableSize: 11, baseResolution: 4, perLevelScale: 1.3),
        ]
        let capacity = 700, valid = 650
        onEveryBackend { context in
            for (index, c) in configurations.enumerated() {
                let field = try randomHashGridField(c, seed: 30 + UInt64(index))
                let samples = randomSamples(count: capacity, bounds: field.bounds, seed: 40 + UInt64(index))
                let expected = field.evaluate(samples: samples)
                let sampleTensor = try context.tensor(samples, shape: [capacity, 8])
                let count = try context.tensor([UInt32(valid)], shape: [1])
                let sentinel: Float = -7
                let output = try context.tensor([Float](repeating: sentinel, count: capacity * 4), shape: [capacity, 4])
                try context.batch { batch in
                    try field.encodeEvaluate(into: batch, samples: sampleTensor, sampleCount: count, capacity: capacity, output: output)
                }
                let got = try output.toArray()
                var worstColor: Float = 0, worstSigma: Float = 0
                for i in 0..<valid {
                    for channel in 0..<3 { worstColor = max(worstColor, abs(got[4 * i + channel] - expected[4 * i + channel])) }
                    worstSigma = max(worstSigma, abs(got[4 * i + 3] - expected[4 * i + 3]) / (expected[4 * i + 3] + 1e-20))
                }
                XCTAssertLessThan(worstColor, 1e-4, "\(context.backendDescription) config \(index)")
                XCTAssertLessThan(worstSigma, 1e-4, "\(context.backendDescription) config \(index)")
                XCTAssert(got[(4 * valid)...].allSatisfy { $0 == sentinel }, "samples past the count were written")
                // Samples outside the box are empty.
                let outside = (0..<valid).filter { i in
                    let p = SIMD3(samples[8 * i], samples[8 * i + 1], samples[8 * i + 2])
                    return any(p .< field.bounds.lower) || any(p .> field.bounds.upper)
                }
                XCTAssertFalse(outside.isEmpty)
                for i in outside { XCTAssertEqual(Array(got[(4 * i)..<(4 * i + 4)]), [0, 0, 0, 0]) }
            }
        }
    }

    /// More samples than 65,535 workgroups in x hold (the limit on many devices, lavapipe included): the
    /// kernel is dispatched in rows, and the last samples must still be evaluated.
    func testVulkanEvaluatesMoreSamplesThanOneRowOfWorkgroups() throws {
        try onVulkan { context in
            let field = try randomHashGridField(tiny, seed: 50)
            let capacity = 65_535 * 64 + 1000
            let bounds = field.bounds
            var samples = [Float](repeating: 0, count: capacity * 8)
            let pattern = randomSamples(count: 1024, bounds: bounds, seed: 51)
            for i in 0..<capacity { for k in 0..<8 { samples[8 * i + k] = pattern[8 * (i % 1024) + k] } }
            let expected = field.evaluate(samples: pattern)
            let sampleTensor = try context.tensor(samples, shape: [capacity, 8])
            let count = try context.tensor([UInt32(capacity)], shape: [1])
            let output = try context.zeros(Float.self, shape: [capacity, 4])
            try context.batch { try field.encodeEvaluate(into: $0, samples: sampleTensor, sampleCount: count, capacity: capacity, output: output) }
            let got = try output.toArray()
            var worst: Float = 0
            for i in Array(0..<2048) + Array((capacity - 4096)..<capacity) {
                for k in 0..<4 {
                    let want = expected[4 * (i % 1024) + k]
                    worst = max(worst, abs(got[4 * i + k] - want) / max(1, abs(want)))
                }
            }
            XCTAssertLessThan(worst, 1e-4)  // as in testVulkanEvaluationMatchesCPU
        }
    }

    func testBadParametersThrow() {
        XCTAssertThrowsError(try HashGridField(configuration: tiny, parameters: [Float16](repeating: 0, count: 5)))
        var nonFinite = [Float16](repeating: 0, count: tiny.parameterCount)
        nonFinite[17] = .infinity
        XCTAssertThrowsError(try HashGridField(configuration: tiny, parameters: nonFinite))
        var badFeatures = tiny
        badFeatures.featuresPerLevel = 3
        XCTAssertThrowsError(try badFeatures.validate())
        XCTAssertThrowsError(try HashGridField(configuration: tiny, parameters: [Float16](repeating: 0, count: tiny.parameterCount),
                                               bounds: AABB(lower: SIMD3(0, 0, 0), upper: SIMD3(1, 0, 1))))
    }
}
