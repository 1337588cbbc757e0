import VulkanKernels
import XCTest

/// Fused attention against the float64 reference (AttentionReference.swift) on every backend. Most
/// cases use d = 64 and 2 heads so that one pipeline serves many of them (pipeline creation dominates
/// the time of small cases on lavapipe).
final class AttentionTests: XCTestCase {
    func testEveryCommonHeadDimMatchesReference() throws {
        onEveryBackend { context in
            for (index, d) in [32, 64, 80, 96, 128, 256].enumerated() {
                try checkAttention(AttentionCase(queryLength: 19, keyLength: 45, headDim: d, seed: UInt64(index)), Float.self, on: context)
            }
        }
    }

    /// 1, the query tile (16) and key tile (32 keys on 8 lanes) ± 1, primes.
    func testLengthsAroundTheTilesAndPrimes() throws {
        let lengths = [(1, 1), (1, 31), (2, 33), (5, 3), (15, 33), (16, 32), (17, 31), (31, 29), (33, 97), (53, 61)]
        onEveryBackend { context in
            for (index, (lq, lk)) in lengths.enumerated() {
                try checkAttention(AttentionCase(queryLength: lq, keyLength: lk, mask: .causal(), seed: UInt64(10 + index)), Float.self, on: context)
            }
        }
    }

    func testCausalMaskIgnoresFutureKeysInBothAlignments() throws {
        onEveryBackend { context in
            for alignment in [AttentionMask.DiagonalAlignment.bottomRight, .topLeft] {
                // Lq > Lk bottom-right leaves the first Lq − Lk rows with no key at all: zeros, lse −∞.
                for (lq, lk) in [(20, 45), (45, 20), (33, 33)] {
                    try checkAttention(AttentionCase(queryLength: lq, keyLength: lk, mask: .causal(alignment), seed: 3), Float.self, on: context)
                }
            }
        }
    }

    func testPerSequenceLengthsSkipPaddingAndOutputZerosForPaddedRows() throws {
        onEveryBackend { context in
            let mask = AttentionMask(isCausal: true, queryLengths: [20, 7, 20], keyLengths: [45, 1, 0])
            try checkAttention(AttentionCase(batch: 3, queryLength: 20, keyLength: 45, mask: mask, seed: 4), Float.self, on: context)
            try checkAttention(AttentionCase(batch: 3, queryLength: 20, keyLength: 45,
                                             mask: AttentionMask(keyLengths: [3, 45, 33]), seed: 5), Float.self, on: context)
        }
    }

    func testSlidingWindowKeepsOnlyTheBand() throws {
        onEveryBackend { context in
            try checkAttention(AttentionCase(queryLength: 40, keyLength: 70, mask: AttentionMask(isCausal: true, window: .init(left: 5, right: 0)), seed: 6),
                               Float.self, on: context)
            try checkAttention(AttentionCase(queryLength: 40, keyLength: 40,
                                             mask: AttentionMask(alignment: .topLeft, window: .init(left: 3, right: 4)), seed: 7),
                               Float.self, on: context)
        }
    }

    /// Bands wide enough that a 16-row tile has checked key tiles at both ends and unchecked (interior)
    /// ones between: the Vulkan kernel runs those in separate loops, so a band edge placed one tile
    /// wrong shows up as keys that should have been masked (or ones that were dropped).
    func testWideBandsMixCheckedAndInteriorKeyTiles() throws {
        onEveryBackend { context in
            for (window, causal, alignment) in [(AttentionMask.SlidingWindow(left: 90, right: 70), false, AttentionMask.DiagonalAlignment.topLeft),
                                                (AttentionMask.SlidingWindow(left: 100, right: 0), true, .bottomRight),
                                                (AttentionMask.SlidingWindow(left: 37, right: 101), false, .offset(-45))] {
                let mask = AttentionMask(isCausal: causal, alignment: alignment, window: window)
                try checkAttention(AttentionCase(queryLength: 150, keyLength: 333, mask: mask, seed: 31), Float.self, on: context)
            }
            // Causal only, longer than a few tiles: every tile but the diagonal ones runs unchecked.
            try checkAttention(AttentionCase(queryLength: 257, keyLength: 300, mask: .causal(.bottomRight), seed: 32), Float.self, on: context)
        }
    }

    func testALiBiSlopesPenaliseDistance() throws {
        onEveryBackend { context in
            let mask = AttentionMask(isCausal: true, alibiSlopes: AttentionMask.standardALiBiSlopes(heads: 2))
            try checkAttention(AttentionCase(queryLength: 23, keyLength: 50, mask: mask, seed: 8), Float.self, on: context)
            try checkAttention(AttentionCase(queryLength: 23, keyLength: 50, mask: AttentionMask(alibiSlopes: [0.5, 0.125]), seed: 9),
                               Float.self, on: context)
        }
    }

    func testAdditiveBiasBroadcasts() throws {
        onEveryBackend { context in
            for shape in [[2, 2, 21, 35], [1, 1, 21, 35], [1, 2, 21, 35], [2, 1, 21, 35]] {
                try checkAttention(AttentionCase(batch: 2, queryLength: 21, keyLength: 35, biasShape: shape, seed: 10), Float.self, on: context)
            }
        }
    }

    func testBlockSparseLayoutAlignedAndUnaligned() throws {
        onEveryBackend { context in
            // Tile-aligned blocks (16 rows × 32 keys): whole tiles are skipped.
            let lq = 40, lk = 90
            var generator = SeededGenerator(seed: 11)
            let aligned = AttentionMask.BlockLayout(blockRows: 16, blockColumns: 32, headCount: 2,
                                                    blocks: (0..<(2 * 3 * 3)).map { _ in UInt8.random(in: 0...1, using: &generator) })
            try checkAttention(AttentionCase(queryLength: lq, keyLength: lk, mask: AttentionMask(blockLayout: aligned), seed: 12), Float.self, on: context)
            let unaligned = AttentionMask.BlockLayout(blockRows: 7, blockColumns: 5, headCount: 1,
                                                      blocks: (0..<(6 * 18)).map { _ in UInt8.random(in: 0...1, using: &generator) })
            try checkAttention(AttentionCase(queryLength: lq, keyLength: lk, mask: AttentionMask(blockLayout: unaligned), seed: 13), Float.self, on: context)
        }
    }

    func testEveryMaskKindCombined() throws {
        onEveryBackend { context in
            var generator = SeededGenerator(seed: 14)
            let layout = AttentionMask.BlockLayout(blockRows: 8, blockColumns: 8, headCount: 1,
                                                   blocks: (0..<(4 * 8)).map { _ in UInt8.random(in: 0...3, using: &generator) == 0 ? 0 : 1 })
            let mask = AttentionMask(isCausal: true, window: .init(left: 20, right: 0), queryLengths: [30, 11], keyLengths: [60, 41],
                                     alibiSlopes: [0.25, 0.0625], blockLayout: layout)
            try checkAttention(AttentionCase(batch: 2, queryLength: 30, keyLength: 60, mask: mask, biasShape: [2, 2, 30, 60], seed: 15),
                               Float.self, on: context)
        }
    }

    func testGroupedAndMultiQueryHeads() throws {
        onEveryBackend { context in
            for kvHeads in [8, 4, 2, 1] {
                try checkAttention(AttentionCase(heads: 8, kvHeads: kvHeads, queryLength: 18, keyLength: 40, mask: .causal(), seed: 16),
                                   Float.self, on: context)
            }
        }
    }

    func testSequenceMajorLayout() throws {
        onEveryBackend { context in
            try checkAttention(AttentionCase(batch: 2, heads: 4, kvHeads: 2, queryLength: 19, keyLength: 33,
                                             layout: .batchSequenceHead, mask: .causal(), seed: 17), Float.self, on: context)
        }
    }

    func testFloat16StorageAccumulatesInFloat32() throws {
        onEveryBackend { context in
            try checkAttention(AttentionCase(queryLength: 19, keyLength: 45, mask: .causal(), seed: 18), Float16.self, on: context)
            try checkAttention(AttentionCase(heads: 4, kvHeads: 1, queryLength: 1, keyLength: 300, seed: 19), Float16.self, on: context, split: .count(3))
        }
    }

    /// Scores of ±64 000 (integer inputs make every dot product exact, so ties stay ties): no overflow, no NaN.
    func testExtremeLogitsStayFinite() throws {
        onEveryBackend { context in
            try checkAttention(AttentionCase(queryLength: 20, keyLength: 40, scale: 1000, integerInputs: true), Float.self, on: context)
            try checkAttention(AttentionCase(queryLength: 20, keyLength: 40, mask: .causal(), scale: -1000, integerInputs: true), Float.self, on: context)
        }
    }

    func testFullyMaskedRowsOutputZeros() throws {
        onEveryBackend { context in
            let empty = AttentionMask.BlockLayout(blockRows: 16, blockColumns: 16, blocks: [UInt8](repeating: 0, count: 2 * 3))
            let out = try checkAttention(AttentionCase(queryLength: 20, keyLength: 40, mask: AttentionMask(blockLayout: empty), seed: 20),
                                         Float.self, on: context)
            XCTAssert(out.allSatisfy { $0 == 0 })
        }
    }

    func testSplitKeysMatchUnsplit() throws {
        onEveryBackend { context in
            for (lq, splits) in [(1, 7), (3, 4), (20, 2)] {
                let c = AttentionCase(heads: 4, kvHeads: 2, queryLength: lq, keyLength: 400, mask: AttentionMask(isCausal: true, keyLengths: [380]), seed: 21)
                let whole = try checkAttention(c, Float.self, on: context, split: .none)
                let split = try checkAttention(c, Float.self, on: context, split: .count(splits))
                // Same data, different summation order across splits: a few fp32 ulps of values ≤ 1.
                for (a, b) in zip(whole, split) { XCTAssertEqual(a, b, accuracy: 2e-6) }
            }
        }
    }
}
