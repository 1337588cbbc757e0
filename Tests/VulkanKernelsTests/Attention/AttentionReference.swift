import Foundation
@testable import VulkanKernels
import XCTest

/// One attention problem for the tests: sizes, layout, mask description and seeded inputs. The bias
/// is described by shape (its tensor needs a context) and filled from the seed.
struct AttentionCase {
    var batch = 1, heads = 2, kvHeads = 2, queryLength = 17, keyLength = 37, headDim = 64
    var layout = AttentionLayout.batchHeadSequence
    var mask = AttentionMask()
    /// Any shape that broadcasts to [batch, heads, Lq, Lk] (NumPy rules).
    var biasShape: [Int]? = nil
    var scale: Float? = nil
    var softcap: Float? = nil
    /// V's head dim (nil: the same as Q/K's).
    var valueHeadDim: Int? = nil
    /// A seeded boolean mask of this (broadcastable) shape, about `allowedFraction` of it nonzero.
    var allowedShape: [Int]? = nil
    var allowedFraction = 0.7
    var seed: UInt64 = 1
    /// Inputs in [-magnitude, magnitude); `integerInputs` draws from {-1, 0, 1} instead (exact dot products).
    var magnitude: Float = 1
    var integerInputs = false

    var qShape: [Int] { layout == .batchHeadSequence ? [batch, heads, queryLength, headDim] : [batch, queryLength, heads, headDim] }
    var kShape: [Int] { layout == .batchHeadSequence ? [batch, kvHeads, keyLength, headDim] : [batch, keyLength, kvHeads, headDim] }
    var dv: Int { valueHeadDim ?? headDim }
    var vShape: [Int] { layout == .batchHeadSequence ? [batch, kvHeads, keyLength, dv] : [batch, keyLength, kvHeads, dv] }
    var outputShape: [Int] { layout == .batchHeadSequence ? [batch, heads, queryLength, dv] : [batch, queryLength, heads, dv] }

    func values(_ count: Int, seed: UInt64) -> [Float] {
        let raw = [Float].random(count: count, seed: seed)
        return integerInputs ? raw.map { ($0 * 1.5).rounded() } : raw.map { $0 * magnitude }
    }
    var q: [Float] { values(qShape.reduce(1, *), seed: seed) }
    var k: [Float] { values(kShape.reduce(1, *), seed: seed &+ 101) }
    var v: [Float] { [Float].random(count: vShape.reduce(1, *), seed: seed &+ 202) }
    var bias: [Float]? { biasShape.map { [Float].random(count: $0.reduce(1, *), seed: seed &+ 303).map { $0 * 3 } } }
    var allowed: [UInt8]? {
        allowedShape.map { [Float].random(count: $0.reduce(1, *), seed: seed &+ 404).map { ($0 + 1) / 2 < Float(allowedFraction) ? 1 : 0 } }
    }
}

/// Element [b, h, i, j] of a row-major array of `shape` broadcast to [batch, heads, Lq, Lk] (NumPy:
/// dimensions aligned from the right, size-1 dimensions repeated).
func broadcastElement<T>(_ values: [T], shape: [Int], _ index: [Int]) -> T {
    let padded = [Int](repeating: 1, count: 4 - shape.count) + shape
    var flat = 0
    for axis in 0..<4 { flat = flat * padded[axis] + (padded[axis] == 1 ? 0 : index[axis]) }
    return values[flat]
}

/// The naive materialised attention in float64: every score of a row, then softmax, then the
/// weighted sum. Written from the definition in AttentionMask's documentation, independently of the
/// kernels. Returns output (layout of Q) and log-sum-exp ([batch, heads, Lq]).
func referenceAttention(_ c: AttentionCase, q: [Double], k: [Double], v: [Double], bias: [Double]?) -> (output: [Double], lse: [Double]) {
    let d = c.headDim, dv = c.dv, group = c.heads / c.kvHeads
    let scale = Double(c.scale ?? 1 / Float(d).squareRoot())
    func qIndex(_ b: Int, _ h: Int, _ i: Int) -> Int {
        c.layout == .batchHeadSequence ? ((b * c.heads + h) * c.queryLength + i) * d : ((b * c.queryLength + i) * c.heads + h) * d
    }
    func kIndex(_ b: Int, _ h: Int, _ j: Int, _ d: Int) -> Int {
        c.layout == .batchHeadSequence ? ((b * c.kvHeads + h) * c.keyLength + j) * d : ((b * c.keyLength + j) * c.kvHeads + h) * d
    }
    func oIndex(_ b: Int, _ h: Int, _ i: Int) -> Int {
        c.layout == .batchHeadSequence ? ((b * c.heads + h) * c.queryLength + i) * dv : ((b * c.queryLength + i) * c.heads + h) * dv
    }
    let allowed = c.allowed
    var output = [Double](repeating: 0, count: c.outputShape.reduce(1, *))
    var lse = [Double](repeating: -.infinity, count: c.batch * c.heads * c.queryLength)
    let m = c.mask
    // ggml's max_bias slopes (ggml_soft_max_ext): n = largest power of two ≤ heads.
    var biasSlopes = [Double](repeating: 1, count: c.heads)
    if let maxBias = m.maxBias.map(Double.init), maxBias > 0 {
        var n = 1
        while n * 2 <= c.heads { n *= 2 }
        let m0 = pow(2, -maxBias / Double(n)), m1 = pow(2, -maxBias / 2 / Double(n))
        for h in 0..<c.heads { biasSlopes[h] = h < n ? pow(m0, Double(h + 1)) : pow(m1, Double(2 * (h - n) + 1)) }
    }
    // Sequences: the batch, or the packed ones (batch-1 tensors, rows from the offsets).
    let sequences = m.packed.map { $0.queryOffsets.count - 1 } ?? c.batch
    for sequence in 0..<sequences {
        let b = m.packed == nil ? sequence : 0
        let qStart = m.packed?.queryOffsets[sequence] ?? 0
        let kStart = m.packed?.keyOffsets[sequence] ?? m.keyStarts?[sequence] ?? 0
        let lq = m.packed.map { $0.queryOffsets[sequence + 1] - qStart } ?? m.queryLengths?[sequence] ?? c.queryLength
        let lk = m.packed.map { $0.keyOffsets[sequence + 1] - kStart } ?? ((m.keyLengths?[sequence] ?? c.keyLength) - kStart)
        let offset: Int = switch m.alignment {
        case .bottomRight: lk - lq
        case .topLeft: 0
        case .offset(let n): n
        }
        for h in 0..<c.heads {
            for i in 0..<lq {
                var scores = [Double](repeating: -.infinity, count: lk)
                for j in 0..<lk {
                    let diagonal = i + offset
                    if m.isCausal && j > diagonal { continue }
                    if let w = m.window, j < diagonal - w.left || j > diagonal + w.right { continue }
                    // Chunked attention: same chunk of diagonal positions (floor division).
                    if let chunk = m.chunk, Int((Double(j) / Double(chunk)).rounded(.down)) != Int((Double(diagonal) / Double(chunk)).rounded(.down)) { continue }
                    if let layout = m.blockLayout {
                        let rows = (c.queryLength + layout.blockRows - 1) / layout.blockRows
                        let cols = (c.keyLength + layout.blockColumns - 1) / layout.blockColumns
                        let head = layout.headCount == 1 ? 0 : h
                        if layout.blocks[(head * rows + i / layout.blockRows) * cols + j / layout.blockColumns] == 0 { continue }
                    }
                    if let allowed, let shape = c.allowedShape, broadcastElement(allowed, shape: shape, [b, h, i, j]) == 0 { continue }
                    var dot = 0.0
                    for e in 0..<d { dot += q[qIndex(b, h, qStart + i) + e] * k[kIndex(b, h / group, kStart + j, d) + e] }
                    var score = dot * scale
                    if let cap = c.softcap.map(Double.init) { score = cap * tanh(score / cap) }
                    if let slopes = m.alibiSlopes {
                        score -= Double(slopes.count == c.heads ? slopes[h] : slopes[sequence * c.heads + h]) * Double(abs(diagonal - j))
                    }
                    if let bias, let shape = c.biasShape { score += biasSlopes[h] * broadcastElement(bias, shape: shape, [b, h, i, j]) }
                    scores[j] = score
                }
                // A sink is one more logit in the denominator, with no value row.
                let sink = m.sinks.map { Double($0[h]) } ?? -.infinity
                let top = max(scores.max() ?? -.infinity, sink)
                if top == -.infinity { continue }
                let weights = scores.map { $0 == -.infinity ? 0 : exp($0 - top) }
                let total = weights.reduce(0, +) + (sink == -.infinity ? 0 : exp(sink - top))
                let lseIndex = m.packed == nil ? (b * c.heads + h) * c.queryLength + i : h * c.queryLength + qStart + i
                lse[lseIndex] = top + log(total)
                for j in 0..<lk where weights[j] > 0 {
                    for e in 0..<dv { output[oIndex(b, h, qStart + i) + e] += weights[j] / total * v[kIndex(b, h / group, kStart + j, dv) + e] }
                }
            }
        }
    }
    return (output, lse)
}

extension XCTestCase {
    /// Runs `c` on `context` with storage `Element` and compares output (and log-sum-exp) with the
    /// float64 reference on the same (storage-rounded) inputs.
    @discardableResult
    func checkAttention<Element: FloatingPointElement>(_ c: AttentionCase, _ type: Element.Type, on context: ComputeContext,
                                                       split: AttentionSplit = .automatic, tolerance: Double? = nil,
                                                       file: StaticString = #filePath, line: UInt = #line) throws -> [Float] {
        let q = c.q.map { Element($0) }, k = c.k.map { Element($0) }, v = c.v.map { Element($0) }
        var mask = c.mask
        if let bias = c.bias, let shape = c.biasShape { mask.bias = try context.tensor(bias, shape: shape) }
        if let allowed = c.allowed, let shape = c.allowedShape { mask.allowed = try context.tensor(allowed, shape: shape) }
        let qt = try context.tensor(q, shape: c.qShape), kt = try context.tensor(k, shape: c.kShape), vt = try context.tensor(v, shape: c.vShape)
        let lse = try context.empty(Float.self, shape: [c.batch, c.heads, c.queryLength])
        let out = try context.attention(q: qt, k: kt, v: vt, mask: mask, scale: c.scale, softcap: c.softcap, layout: c.layout,
                                        logSumExp: lse, split: split)
        let got = try out.toArray().map { Float($0) }, gotLse = try lse.toArray()
        let expected = referenceAttention(c, q: q.map { Double(Float($0)) }, k: k.map { Double(Float($0)) },
                                          v: v.map { Double(Float($0)) }, bias: c.bias?.map { Double($0) })
        // fp32: the output is a convex combination of V values in [-1, 1]; exp2 and fp32 sums over at
        // most a few hundred keys stay well inside 2e-5 per element. fp16: storage rounding of the
        // output (half an ulp of values ≤ 1 is 4.9e-4) dominates. bf16 (unit roundoff 2⁻⁸): half an
        // ulp of values below 1 is at most 2⁻⁹, plus the same fp32 arithmetic.
        let limit = tolerance ?? (Element.self == Float.self ? 2e-5 : Element.self == BFloat16.self ? 0x1p-9 + 2e-5 : 1e-3)
        var worst = 0.0, worstIndex = 0
        for index in got.indices {
            guard got[index].isFinite else { XCTFail("\(context.backendDescription): non-finite output at \(index)", file: file, line: line); break }
            let error = abs(Double(got[index]) - expected.output[index])
            if error > worst { worst = error; worstIndex = index }
        }
        XCTAssertLessThanOrEqual(worst, limit, "\(context.backendDescription) \(c): output[\(worstIndex)] = \(got.isEmpty ? 0 : got[worstIndex]) vs \(expected.output.isEmpty ? 0 : expected.output[worstIndex])", file: file, line: line)
        // The log-sum-exp is the row max (up to |score|) plus a log: fp32 relative rounding of both.
        var lseFailures = 0
        for index in gotLse.indices {
            let want = expected.lse[index], have = Double(gotLse[index])
            let ok = want == -.infinity ? have == -.infinity : abs(have - want) <= 1e-4 * max(1, abs(want))
            if !ok && lseFailures == 0 {
                XCTFail("\(context.backendDescription) \(c): lse[\(index)] = \(have), expected \(want)", file: file, line: line)
            }
            if !ok { lseFailures += 1 }
        }
        return got
    }
}
