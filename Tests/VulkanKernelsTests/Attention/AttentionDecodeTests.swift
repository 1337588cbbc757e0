import VulkanKernels
import XCTest

/// The decode path: one query row at a time against a KV cache filled in place, equal to the rows of
/// a causal prefill over the same data.
final class AttentionDecodeTests: XCTestCase {
    func testDecodeFromCacheEqualsPrefillRows() throws {
        for layout in [AttentionLayout.batchHeadSequence, .batchSequenceHead] {
            onEveryBackend { context in try checkDecodeEqualsPrefill(layout: layout, on: context) }
        }
    }

    private func checkDecodeEqualsPrefill(layout: AttentionLayout, on context: ComputeContext) throws {
        let batch = 2, heads = 4, kvHeads = 2, length = 70, prefix = 60, capacity = 96, d = 32
        func shape(_ h: Int, _ s: Int) -> [Int] { layout == .batchHeadSequence ? [batch, h, s, d] : [batch, s, h, d] }
        // Element (b, h, s, e) of a tensor with sequence length `total` in this layout.
        func index(_ b: Int, _ h: Int, _ s: Int, _ e: Int, heads hs: Int, total: Int) -> Int {
            layout == .batchHeadSequence ? ((b * hs + h) * total + s) * d + e : ((b * total + s) * hs + h) * d + e
        }
        func slice(_ values: [Float], heads hs: Int, from start: Int, count: Int) -> [Float] {
            var out = [Float](repeating: 0, count: batch * hs * count * d)
            for b in 0..<batch { for h in 0..<hs { for s in 0..<count { for e in 0..<d {
                out[index(b, h, s, e, heads: hs, total: count)] = values[index(b, h, start + s, e, heads: hs, total: length)]
            } } } }
            return out
        }
        let q = [Float].random(count: batch * heads * length * d, seed: 40)
        let k = [Float].random(count: batch * kvHeads * length * d, seed: 41)
        let v = [Float].random(count: batch * kvHeads * length * d, seed: 42)
        let prefill = try context.attention(q: context.tensor(q, shape: shape(heads, length)), k: context.tensor(k, shape: shape(kvHeads, length)),
                                            v: context.tensor(v, shape: shape(kvHeads, length)), mask: .causal(), layout: layout).toArray()

        // The unused part of the cache holds NaN: decoding must never read past the filled length.
        let cacheK = try context.tensor([Float](repeating: .nan, count: batch * kvHeads * capacity * d), shape: shape(kvHeads, capacity))
        let cacheV = try context.tensor([Float](repeating: .nan, count: batch * kvHeads * capacity * d), shape: shape(kvHeads, capacity))
        try context.appendToCache(context.tensor(slice(k, heads: kvHeads, from: 0, count: prefix), shape: shape(kvHeads, prefix)),
                                  cache: cacheK, at: 0, layout: layout)
        try context.appendToCache(context.tensor(slice(v, heads: kvHeads, from: 0, count: prefix), shape: shape(kvHeads, prefix)),
                                  cache: cacheV, at: 0, layout: layout)
        for position in prefix..<length {
            let split: AttentionSplit = position % 2 == 0 ? .none : .count(3)
            let row = try context.batch { batch -> Tensor<Float> in
                try batch.appendToCache(context.tensor(slice(k, heads: kvHeads, from: position, count: 1), shape: shape(kvHeads, 1)),
                                        cache: cacheK, at: position, layout: layout)
                try batch.appendToCache(context.tensor(slice(v, heads: kvHeads, from: position, count: 1), shape: shape(kvHeads, 1)),
                                        cache: cacheV, at: position, layout: layout)
                let query = try context.tensor(slice(q, heads: heads, from: position, count: 1), shape: shape(heads, 1))
                let out = try context.empty(Float.self, shape: shape(heads, 1))
                try batch.attention(q: query, k: cacheK, v: cacheV, into: out,
                                    mask: AttentionMask(isCausal: true, keyLengths: [position + 1, position + 1]), layout: layout, split: split)
                return out
            }.toArray()
            let expected = slice(prefill, heads: heads, from: position, count: 1)
            // Same keys, same fp32 arithmetic in another order (tile and split boundaries move).
            for (got, want) in zip(row, expected) {
                XCTAssertEqual(got, want, accuracy: 2e-6, "\(context.backendDescription) \(layout) position \(position)")
            }
        }
    }

    func testAppendToCacheRejectsOverflowAndMismatch() throws {
        onEveryBackend { context in
            let cache = try context.zeros(Float.self, shape: [1, 2, 8, 32])
            let new = try context.zeros(Float.self, shape: [1, 2, 3, 32])
            XCTAssertThrowsError(try context.appendToCache(new, cache: cache, at: 6))
            XCTAssertThrowsError(try context.appendToCache(context.zeros(Float.self, shape: [1, 3, 1, 32]), cache: cache, at: 0))
            try context.appendToCache(new, cache: cache, at: 5)
        }
    }
}
