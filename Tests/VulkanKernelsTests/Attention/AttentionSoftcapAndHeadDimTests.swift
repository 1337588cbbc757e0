import VulkanKernels
import XCTest

/// Softcap, head dims that are not multiples of 4, V's head dim differing from Q/K's, boolean and
/// broadcast masks, and the fixed diagonal offset, each against the float64 reference
/// (AttentionReference.swift) on every backend.
final class AttentionSoftcapAndHeadDimTests: XCTestCase {
    func testSoftcapMatchesReferenceIncludingLargeLogits() throws {
        onEveryBackend { context in
            try checkAttention(AttentionCase(queryLength: 19, keyLength: 45, mask: .causal(), softcap: 2, seed: 30), Float.self, on: context)
            // Scores of ±64 000 before capping: tanh saturates, nothing overflows; ties stay ties (integer inputs).
            try checkAttention(AttentionCase(queryLength: 20, keyLength: 40, scale: 1000, softcap: 30, seed: 31, integerInputs: true),
                               Float.self, on: context)
            // Softcap before the additive terms: a bias and ALiBi on top of capped scores.
            try checkAttention(AttentionCase(queryLength: 9, keyLength: 33, mask: AttentionMask(alibiSlopes: [0.5, 0.25]),
                                             biasShape: [1, 2, 9, 33], softcap: 0.5, seed: 32), Float.self, on: context)
        }
    }

    func testSoftcapOnTheSplitDecodePath() throws {
        onEveryBackend { context in
            let c = AttentionCase(heads: 4, kvHeads: 2, queryLength: 1, keyLength: 300, softcap: 1.5, seed: 33)
            try checkAttention(c, Float.self, on: context, split: .count(3))
            try checkAttention(c, Float16.self, on: context, split: .count(4))
        }
    }

    func testHeadDimsThatAreNotMultiplesOfFour() throws {
        onEveryBackend { context in
            for (index, (dk, dv)) in [(1, 1), (3, 5), (10, 10), (8, 10), (10, 8), (33, 7), (255, 256)].enumerated() {
                try checkAttention(AttentionCase(queryLength: 11, keyLength: 37, headDim: dk, mask: .causal(), valueHeadDim: dv,
                                                 seed: UInt64(40 + index)), Float.self, on: context)
            }
        }
    }

    func testValueHeadDimDiffersFromQueryKeyHeadDim() throws {
        onEveryBackend { context in
            try checkAttention(AttentionCase(heads: 4, kvHeads: 2, queryLength: 19, keyLength: 45, headDim: 64, valueHeadDim: 32, seed: 50),
                               Float.self, on: context)
            try checkAttention(AttentionCase(batch: 2, heads: 4, kvHeads: 1, queryLength: 13, keyLength: 29, headDim: 8,
                                             layout: .batchSequenceHead, valueHeadDim: 12, seed: 51), Float.self, on: context)
            try checkAttention(AttentionCase(queryLength: 17, keyLength: 40, headDim: 8, mask: .causal(), valueHeadDim: 10, seed: 52),
                               Float16.self, on: context)
            // Decode with splits and an odd V head dim: the merge writes scalar elements.
            try checkAttention(AttentionCase(heads: 2, kvHeads: 1, queryLength: 1, keyLength: 260, headDim: 12, valueHeadDim: 10, seed: 53),
                               Float.self, on: context, split: .count(3))
            try checkAttention(AttentionCase(heads: 2, kvHeads: 1, queryLength: 1, keyLength: 260, headDim: 12, valueHeadDim: 10, seed: 54),
                               Float16.self, on: context, split: .count(3))
        }
    }

    func testAdditiveMasksBroadcastInEveryRank() throws {
        onEveryBackend { context in
            // [Lq, Lk], [heads|1, Lq, Lk] (3D: the first axis is heads), [Lk] rows shared, [batch, 1, 1, Lk] padding-style.
            for (index, shape) in [[21, 35], [2, 21, 35], [1, 21, 35], [35], [2, 1, 1, 35], [2, 2, 21, 1]].enumerated() {
                try checkAttention(AttentionCase(batch: 2, queryLength: 21, keyLength: 35, biasShape: shape, seed: UInt64(60 + index)),
                                   Float.self, on: context)
            }
        }
    }

    func testBooleanMasksBroadcastAndFullyMaskedRowsGiveZeros() throws {
        onEveryBackend { context in
            for (index, shape) in [[21, 35], [2, 21, 35], [2, 2, 21, 35], [2, 1, 1, 35]].enumerated() {
                try checkAttention(AttentionCase(batch: 2, queryLength: 21, keyLength: 35, allowedShape: shape, seed: UInt64(70 + index)),
                                   Float.self, on: context)
            }
            // Together with causal, a bias and a softcap; rows that lose every key output zeros.
            try checkAttention(AttentionCase(batch: 2, queryLength: 20, keyLength: 20, mask: .causal(), biasShape: [20, 20], softcap: 3,
                                             allowedShape: [2, 1, 20, 20], allowedFraction: 0.3, seed: 75), Float.self, on: context)
            let none = try checkAttention(AttentionCase(queryLength: 5, keyLength: 9, allowedShape: [5, 9], allowedFraction: 0, seed: 76),
                                          Float.self, on: context)
            XCTAssert(none.allSatisfy { $0 == 0 })
        }
    }

    func testNegativeInfinityInAdditiveMasksIsNeverNaN() throws {
        onEveryBackend { context in
            // Row 0 fully masked by -inf, row 1 keeps one key, the rest keep every other key.
            let (lq, lk) = (6, 10)
            var bias = [Float](repeating: 0, count: lq * lk)
            for i in 0..<lq { for j in 0..<lk where i == 0 || (i == 1 && j != 3) || (i > 1 && j % 2 == 1) { bias[i * lk + j] = -.infinity } }
            for softcap in [nil, 0.5] as [Float?] {
                let q = try context.tensor([Float].random(count: lq * 8, seed: 80), shape: [1, 1, lq, 8])
                let k = try context.tensor([Float].random(count: lk * 8, seed: 81), shape: [1, 1, lk, 8])
                let v = try context.tensor([Float].random(count: lk * 8, seed: 82), shape: [1, 1, lk, 8])
                let out = try context.attention(q: q, k: k, v: v, mask: AttentionMask(bias: context.tensor(bias, shape: [lq, lk])), softcap: softcap)
                let values = try out.toArray(), vs = try v.toArray()
                XCTAssert(values.allSatisfy(\.isFinite), "\(context.backendDescription): NaN/inf in \(values)")
                XCTAssertEqual(Array(values[0..<8]), [Float](repeating: 0, count: 8))
                for e in 0..<8 { XCTAssertEqual(values[8 + e], vs[3 * 8 + e], accuracy: 1e-6) }
            }
        }
    }

    func testFixedDiagonalOffsetWithAPastPrefix() throws {
        onEveryBackend { context in
            // ONNX with a past of 12 keys and 6 new ones, 4 queries: query i sees keys 0 ... 12 + i.
            try checkAttention(AttentionCase(queryLength: 4, keyLength: 18, headDim: 8, mask: .init(isCausal: true, alignment: .offset(12)),
                                             valueHeadDim: 10, seed: 90), Float.self, on: context)
            try checkAttention(AttentionCase(heads: 4, kvHeads: 2, queryLength: 20, keyLength: 50,
                                             mask: .init(isCausal: true, alignment: .offset(25), keyLengths: [40]), seed: 91),
                               Float.self, on: context)
        }
    }

    func testBadSoftcapAndMaskShapesThrow() throws {
        onEveryBackend { context in
            let q = try context.zeros(Float.self, shape: [1, 2, 4, 8]), k = try context.zeros(Float.self, shape: [1, 2, 6, 8])
            for softcap in [0, -1, .infinity, .nan] as [Float] {
                XCTAssertThrowsError(try context.attention(q: q, k: k, v: k, softcap: softcap)) { XCTAssert("\($0)".contains("softcap"), "\($0)") }
            }
            for shape in [[4, 5], [3, 4, 6], [2, 2, 4, 6], [1, 1, 1, 4, 6], [5]] {
                let bias = try context.zeros(Float.self, shape: shape)
                XCTAssertThrowsError(try context.attention(q: q, k: k, v: k, mask: AttentionMask(bias: bias))) {
                    XCTAssert("\($0)".contains("mask.bias"), "\($0)")
                }
                let allowed = try context.zeros(UInt8.self, shape: shape)
                XCTAssertThrowsError(try context.attention(q: q, k: k, v: k, mask: AttentionMask(allowed: allowed))) {
                    XCTAssert("\($0)".contains("mask.allowed"), "\($0)")
                }
            }
            XCTAssertThrowsError(try context.attention(q: q, k: k, v: try context.zeros(Float.self, shape: [1, 2, 6, 577]))) {
                XCTAssert("\($0)".contains("value headDim"), "\($0)")
            }
            XCTAssertThrowsError(try context.attention(q: q, k: k, v: try context.zeros(Float.self, shape: [1, 2, 5, 8]))) {
                XCTAssert("\($0)".contains("K vs V"), "\($0)")
            }
        }
    }
}
