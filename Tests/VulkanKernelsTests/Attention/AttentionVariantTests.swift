import VulkanKernels
import XCTest

/// Issue 17's mask and score variants (sinks, chunked local attention, per-(batch, head) ALiBi, ggml's
/// max_bias, left-padded caches, packed sequences) against the float64 reference on every backend, in
/// fp32 and fp16. Tolerances are checkAttention's (derived there): each output is still a combination of
/// V values in [-1, 1] with weights summing to at most 1 (less with a sink), so the same bounds hold.
/// d = 64 and 2 heads where possible so that few pipelines serve many cases.
final class AttentionVariantTests: XCTestCase {
    /// Sinks: rows sum to < 1; rows with no key (key length 0, and the first rows of a bottom-right causal
    /// mask with Lq > Lk) output zeros with the sink as their log-sum-exp (finite).
    func testSinksJoinTheDenominatorAndFullyMaskedRowsStayFinite() throws {
        onEveryBackend { context in
            let sinks: [Float] = [1.5, -0.75]
            try checkAttention(AttentionCase(batch: 3, queryLength: 20, keyLength: 45,
                                             mask: AttentionMask(isCausal: true, queryLengths: [20, 7, 20], keyLengths: [45, 1, 0], sinks: sinks),
                                             seed: 31), Float.self, on: context)
            try checkAttention(AttentionCase(queryLength: 30, keyLength: 12, mask: AttentionMask(isCausal: true, sinks: sinks), seed: 32),
                               Float16.self, on: context)
            // A sink far above every score: weights near 0, output near 0 but not exactly.
            try checkAttention(AttentionCase(queryLength: 9, keyLength: 40, mask: AttentionMask(sinks: [8, -30]), seed: 33), Float.self, on: context)
        }
    }

    /// Split-KV decode adds the sink once (split 0's share): the same answer for 1, 3 and 7 key splits.
    func testSinksWithSplitKeysCountOnce() throws {
        onEveryBackend { context in
            let c = AttentionCase(batch: 2, heads: 4, kvHeads: 2, queryLength: 1, keyLength: 300,
                                  mask: AttentionMask(isCausal: true, keyLengths: [300, 0], sinks: [0.5, 2, -1, 3]), seed: 34)
            for split in [AttentionSplit.none, .count(3), .count(7)] {
                try checkAttention(c, Float.self, on: context, split: split)
            }
            try checkAttention(c, Float16.self, on: context, split: .count(5))
        }
    }

    /// Chunks smaller than the query tile (16 rows) and the key tile (32 keys), in both alignments, with
    /// Lq > Lk bottom-right (negative diagonal positions form chunks of their own), causal and windows.
    func testChunkedLocalAttention() throws {
        onEveryBackend { context in
            let masks: [(AttentionMask, Int, Int)] = [
                (AttentionMask(isCausal: true, chunk: 5), 40, 40),
                (AttentionMask(isCausal: true, alignment: .topLeft, chunk: 7), 33, 50),
                (AttentionMask(chunk: 6), 45, 20),
                (AttentionMask(isCausal: true, window: .init(left: 3, right: 0), chunk: 8), 37, 70),
                (AttentionMask(chunk: 64), 70, 150),          // wider than a key tile: interior tiles inside chunks
            ]
            for (index, (mask, lq, lk)) in masks.enumerated() {
                try checkAttention(AttentionCase(queryLength: lq, keyLength: lk, mask: mask, seed: UInt64(40 + index)), Float.self, on: context)
            }
            try checkAttention(AttentionCase(heads: 4, kvHeads: 1, queryLength: 21, keyLength: 44, mask: AttentionMask(isCausal: true, chunk: 4),
                                             seed: 46), Float16.self, on: context)
            // Decode in a chunk, keys split among workgroups (the chunk bounds every split's range).
            try checkAttention(AttentionCase(heads: 4, kvHeads: 2, queryLength: 1, keyLength: 300, mask: AttentionMask(isCausal: true, chunk: 128),
                                             seed: 47), Float.self, on: context, split: .count(3))
        }
    }

    /// ALiBi slopes per (batch, head), with lengths and GQA.
    func testALiBiSlopesPerBatchAndHead() throws {
        onEveryBackend { context in
            let slopes: [Float] = [0.5, 0.25, 0.125, 0.0625, 1, 0.03, 0.2, 0.7, 0.01, 0.3, 0.45, 0.09]
            try checkAttention(AttentionCase(batch: 3, heads: 4, kvHeads: 2, queryLength: 13, keyLength: 29,
                                             mask: AttentionMask(isCausal: true, keyLengths: [29, 17, 5], alibiSlopes: slopes), seed: 50),
                               Float.self, on: context)
            try checkAttention(AttentionCase(batch: 3, heads: 4, kvHeads: 2, queryLength: 13, keyLength: 29,
                                             mask: AttentionMask(alibiSlopes: slopes), seed: 51), Float16.self, on: context)
        }
    }

    /// ggml's max_bias: the bias scaled per head by ggml's slope (5 heads: a non-power-of-two count uses
    /// both m0 and m1), with and without softcap.
    func testMaxBiasScalesTheBiasPerHead() throws {
        onEveryBackend { context in
            for (index, softcap) in [nil, Float(4)].enumerated() {
                try checkAttention(AttentionCase(heads: 5, kvHeads: 5, queryLength: 11, keyLength: 37, mask: AttentionMask(isCausal: true, maxBias: 8),
                                                 biasShape: [1, 1, 11, 37], softcap: softcap, seed: UInt64(60 + index)), Float.self, on: context)
            }
            try checkAttention(AttentionCase(heads: 5, kvHeads: 5, queryLength: 11, keyLength: 37, mask: AttentionMask(maxBias: 0),
                                             biasShape: [5, 11, 37], seed: 62), Float16.self, on: context)
        }
    }

    /// Left-padded caches: each batch's keys start at an offset and end at its key length; the diagonal
    /// counts from the first valid key. Also with sinks and a split decode.
    func testLeftPaddedKeyCache() throws {
        onEveryBackend { context in
            try checkAttention(AttentionCase(batch: 3, queryLength: 6, keyLength: 50,
                                             mask: AttentionMask(isCausal: true, keyLengths: [50, 30, 12], keyStarts: [7, 30, 0]), seed: 70),
                               Float.self, on: context)
            try checkAttention(AttentionCase(batch: 2, heads: 4, kvHeads: 2, queryLength: 1, keyLength: 260,
                                             mask: AttentionMask(isCausal: true, sinks: [0, 1, -1, 2], keyStarts: [100, 3]), seed: 71),
                               Float16.self, on: context, split: .count(4))
            try checkAttention(AttentionCase(batch: 2, queryLength: 9, keyLength: 40, layout: .batchSequenceHead,
                                             mask: AttentionMask(window: .init(left: 4, right: 2), keyStarts: [5, 39]), seed: 72),
                               Float.self, on: context)
        }
    }

    /// Packed sequences (cu_seqlens): ragged lengths, an empty query sequence, an empty key sequence,
    /// both layouts, GQA, with causal, chunk, sinks and per-sequence ALiBi.
    func testPackedVariableLengthSequences() throws {
        onEveryBackend { context in
            let packed = AttentionMask.PackedSequences(queryOffsets: [0, 17, 17, 20, 41], keyOffsets: [0, 30, 45, 45, 90])
            try checkAttention(AttentionCase(batch: 1, queryLength: 41, keyLength: 90, layout: .batchSequenceHead,
                                             mask: AttentionMask(isCausal: true, packed: packed), seed: 80), Float.self, on: context)
            try checkAttention(AttentionCase(batch: 1, heads: 4, kvHeads: 2, queryLength: 41, keyLength: 90,
                                             mask: AttentionMask(isCausal: true, alibiSlopes: (0..<16).map { Float($0 + 1) / 32 }, chunk: 6,
                                                                 sinks: [0.5, -1, 1, 0], packed: packed), seed: 81),
                               Float16.self, on: context)
            // Single-row sequences (packed decode).
            try checkAttention(AttentionCase(batch: 1, queryLength: 3, keyLength: 100, layout: .batchSequenceHead,
                                             mask: AttentionMask(packed: .init(queryOffsets: [0, 1, 2, 3], keyOffsets: [0, 64, 65, 100])), seed: 82),
                               Float.self, on: context)
        }
    }

    /// The variants in bf16 storage (bf16 Q/K/V/O, fp32 bias): sinks with split decode in a left-padded
    /// cache, chunk + per-sequence ALiBi + sinks on packed sequences, and max_bias with softcap. bf16 only
    /// changes loads and the output's rounding, so checkAttention's bf16 bound (2⁻⁹ + 2e-5) applies.
    func testVariantsInBFloat16Storage() throws {
        onEveryBackend { context in
            try checkAttention(AttentionCase(batch: 2, heads: 4, kvHeads: 2, queryLength: 1, keyLength: 260,
                                             mask: AttentionMask(isCausal: true, sinks: [0, 1, -1, 2], keyStarts: [100, 3]), seed: 90),
                               BFloat16.self, on: context, split: .count(4))
            let packed = AttentionMask.PackedSequences(queryOffsets: [0, 17, 17, 20, 41], keyOffsets: [0, 30, 45, 45, 90])
            try checkAttention(AttentionCase(batch: 1, heads: 4, kvHeads: 2, queryLength: 41, keyLength: 90, layout: .batchSequenceHead,
                                             mask: AttentionMask(isCausal: true, alibiSlopes: (0..<16).map { Float($0 + 1) / 32 }, chunk: 6,
                                                                 sinks: [0.5, -1, 1, 0], packed: packed), seed: 91),
                               BFloat16.self, on: context)
            try checkAttention(AttentionCase(heads: 5, kvHeads: 5, queryLength: 11, keyLength: 37, mask: AttentionMask(isCausal: true, maxBias: 8),
                                             biasShape: [1, 1, 11, 37], softcap: 4, seed: 92), BFloat16.self, on: context)
        }
    }

    func testBadVariantParametersThrowClearErrors() throws {
        onEveryBackend { context in
            let q = try context.zeros(Float.self, shape: [2, 2, 4, 32]), k = try context.zeros(Float.self, shape: [2, 2, 6, 32])
            func expect(_ mask: AttentionMask, _ text: String, line: UInt = #line) {
                XCTAssertThrowsError(try context.attention(q: q, k: k, v: k, mask: mask), line: line) { error in
                    XCTAssert(error is KernelError && "\(error)".contains(text), "\(error) does not mention \(text)", line: line)
                }
            }
            expect(AttentionMask(sinks: [1]), "mask.sinks")
            expect(AttentionMask(sinks: [1, .infinity]), "mask.sinks")
            expect(AttentionMask(chunk: 0), "mask.chunk")
            expect(AttentionMask(maxBias: -1), "mask.maxBias")
            expect(AttentionMask(maxBias: .nan), "mask.maxBias")
            expect(AttentionMask(alibiSlopes: [1, 1, 1]), "mask.alibiSlopes")
            expect(AttentionMask(keyStarts: [1]), "mask.keyStarts")
            expect(AttentionMask(keyLengths: [6, 2], keyStarts: [0, 3]), "mask.keyStarts")
            expect(AttentionMask(packed: .init(queryOffsets: [0, 4], keyOffsets: [0, 6])), "batch 1")
            let q1 = try context.zeros(Float.self, shape: [1, 2, 4, 32]), k1 = try context.zeros(Float.self, shape: [1, 2, 6, 32])
            func expectPacked(_ mask: AttentionMask, _ text: String, line: UInt = #line) {
                XCTAssertThrowsError(try context.attention(q: q1, k: k1, v: k1, mask: mask), line: line) { error in
                    XCTAssert(error is KernelError && "\(error)".contains(text), "\(error) does not mention \(text)", line: line)
                }
            }
            expectPacked(AttentionMask(packed: .init(queryOffsets: [0, 2, 5], keyOffsets: [0, 3, 6])), "queryOffsets")
            expectPacked(AttentionMask(packed: .init(queryOffsets: [0, 2, 1], keyOffsets: [0, 3, 6])), "queryOffsets")
            expectPacked(AttentionMask(packed: .init(queryOffsets: [1, 2], keyOffsets: [0, 3])), "queryOffsets")
            expectPacked(AttentionMask(packed: .init(queryOffsets: [0, 2, 4], keyOffsets: [0, 6])), "keyOffsets")
            expectPacked(AttentionMask(keyLengths: [3], packed: .init(queryOffsets: [0, 4], keyOffsets: [0, 6])), "keyLengths")
            let lse = try context.zeros(Float.self, shape: [2, 2, 2])
            XCTAssertThrowsError(try context.attention(q: q1, k: k1, v: k1, mask: AttentionMask(packed: .init(queryOffsets: [0, 2, 4], keyOffsets: [0, 3, 6])),
                                                       logSumExp: lse)) { XCTAssert("\($0)".contains("logSumExp"), "\($0)") }
        }
    }
}
