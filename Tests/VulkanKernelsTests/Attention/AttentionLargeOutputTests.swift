@testable import VulkanKernels
import XCTest

/// Attention outputs larger than one storage-buffer binding (lavapipe: maxStorageBufferRange = 128 MiB)
/// are written by several dispatches, each binding one window of the output.
final class AttentionLargeOutputTests: XCTestCase {
    /// Every (query tile, batch·kvHead) workgroup lands in exactly one window, and every window's output
    /// range holds all the elements its workgroups write and fits the limit — for both layouts, grouped
    /// heads and tiles that straddle two heads, under limits small enough to force tile runs.
    func testOutputWindowsCoverEveryWorkgroupOnceWithinTheLimit() throws {
        for layout in [AttentionLayout.batchHeadSequence, .batchSequenceHead] {
            for (heads, kvHeads, queryLength) in [(4, 4, 40), (6, 2, 13), (3, 1, 1), (8, 8, 100)] {
                let dims = layout == .batchHeadSequence ? [2, heads, queryLength, 12] : [2, queryLength, heads, 12]
                let kv = layout == .batchHeadSequence ? [2, kvHeads, 7, 12] : [2, 7, kvHeads, 12]
                let s = try AttentionShape(op: "test", q: dims, k: kv, v: kv, output: dims, layout: layout)
                let plan = AttentionKernelPlan(tileQueries: 16)
                let total = dims.reduce(1, *)
                for limitElements in [total, total / 2, total / 5, 12 * heads * 3 + 16, 16] {
                    let windows = try plan.outputWindows(s, elementBytes: 4, alignment: 16, limit: limitElements * 4)
                    if limitElements < total { XCTAssertGreaterThan(windows.count, 1) }
                    var seen = Set<[Int]>()
                    for window in windows {
                        XCTAssertLessThanOrEqual((window.endElement - window.firstElement) * 4, limitElements * 4)
                        XCTAssertEqual(window.firstElement % 4, 0, "vec4-aligned start")
                        for z in window.z {
                            for tile in window.tiles {
                                // Every row the window stores lies inside the window's range, and is stored once.
                                for row in tile * 16..<min(tile * 16 + 16, s.group * queryLength) where window.rows.contains(row) {
                                    XCTAssert(seen.insert([z, row]).inserted, "row \(row) of index \(z) in two windows")
                                    let b = z / kvHeads, h = (z % kvHeads) * s.group + row / queryLength, i = row % queryLength
                                    let o = s.outputStrides
                                    let start = b * o.batch + h * o.head + i * o.sequence
                                    XCTAssert(window.firstElement <= start && start + 12 <= window.endElement,
                                              "\(layout): row (\(b), \(h), \(i)) outside its window")
                                }
                            }
                        }
                    }
                    XCTAssertEqual(seen.count, s.group * queryLength * 2 * kvHeads, "\(layout) \(heads)/\(kvHeads): every row stored")
                }
            }
        }
    }

    /// A 134 MB output (over 128 MiB) in both layouts with grouped heads: V's head dim is 256 while Q
    /// and K's is 4, so the output is large and the arithmetic small. Output is first filled with NaN, so
    /// a row no window writes fails; sampled rows are checked against float64.
    func testOutputLargerThanOneStorageBufferRange() throws {
        try onVulkan { context in
            let limit = context.deviceInfo!.maxStorageBufferRange
            let heads = 4, kvHeads = 2, keyLength = 8, dk = 4, dv = 256
            let queryLength = limit / (heads * dv * 4) + 100
            XCTAssertGreaterThan(heads * queryLength * dv * 4, limit)
            for layout in [AttentionLayout.batchHeadSequence, .batchSequenceHead] {
                let qShape = layout == .batchHeadSequence ? [1, heads, queryLength, dk] : [1, queryLength, heads, dk]
                let kShape = layout == .batchHeadSequence ? [1, kvHeads, keyLength, dk] : [1, keyLength, kvHeads, dk]
                let vShape = layout == .batchHeadSequence ? [1, kvHeads, keyLength, dv] : [1, keyLength, kvHeads, dv]
                let oShape = layout == .batchHeadSequence ? [1, heads, queryLength, dv] : [1, queryLength, heads, dv]
                let qValues = [Float].random(count: qShape.reduce(1, *), seed: 70)
                let kValues = [Float].random(count: kShape.reduce(1, *), seed: 71)
                let vValues = [Float].random(count: vShape.reduce(1, *), seed: 72)
                let output = try context.empty(Float.self, shape: oShape)
                try context.batch { batch in
                    try batch.fill(output.storage, word: Float.nan.bitPattern)
                    try batch.attention(q: context.tensor(qValues, shape: qShape), k: context.tensor(kValues, shape: kShape),
                                        v: context.tensor(vValues, shape: vShape), into: output, layout: layout)
                }
                let result = try output.toArray()
                XCTAssertFalse(result.contains { $0.isNaN }, "\(layout): rows left unwritten")
                func index(_ h: Int, _ i: Int, _ d: Int, dim: Int, length: Int, headCount: Int) -> Int {
                    layout == .batchHeadSequence ? (h * length + i) * dim + d : (i * headCount + h) * dim + d
                }
                // Softmax over 8 keys of |scores| ≤ dk/2, then sums of 8 products: a few fp32 roundings of O(1) values.
                let tolerance = 1e-5
                for h in 0..<heads {
                    for i in Array(stride(from: h, to: queryLength, by: 4099)) + [queryLength - 1] {
                        let kvh = h / (heads / kvHeads)
                        let scores = (0..<keyLength).map { j in
                            (0..<dk).reduce(0.0) { $0 + Double(qValues[index(h, i, $1, dim: dk, length: queryLength, headCount: heads)])
                                * Double(kValues[index(kvh, j, $1, dim: dk, length: keyLength, headCount: kvHeads)]) } / 2
                        }
                        let top = scores.max()!, weights = scores.map { exp($0 - top) }, sum = weights.reduce(0, +)
                        for d in [0, 1, 127, dv - 1] {
                            let expected = (0..<keyLength).reduce(0.0) {
                                $0 + weights[$1] / sum * Double(vValues[index(kvh, $1, d, dim: dv, length: keyLength, headCount: kvHeads)])
                            }
                            let got = Double(result[index(h, i, d, dim: dv, length: queryLength, headCount: heads)])
                            XCTAssertEqual(got, expected, accuracy: tolerance, "\(layout) head \(h) row \(i) dim \(d)")
                        }
                    }
                }
            }
        }
    }
}
