import VulkanKernels
import XCTest

/// `onnxAttention` against the float64 reference (AttentionReference.swift) on combinations the ONNX
/// node tests do not cover: 3D inputs with a past, causal + boolean mask + softcap + odd head dims,
/// and `nonpad_kv_seqlen` with causal (aligned per batch at `nonpad − Sq`).
final class ONNXAttentionTests: XCTestCase {
    /// Splits the reference case's keys/values (sequence-major, `[B, P+S, Hkv, d]`) into an ONNX past
    /// (`[B, Hkv, P, d]`) and new 3D `[B, S, Hkv·d]` tensors, runs `onnxAttention` with 3D Q, and
    /// compares Y and the present tensors.
    private func checkThreeDimensionalWithPast(_ c: AttentionCase, past: Int, attributes: ONNXAttentionAttributes,
                                               nonpad: [Int]? = nil, on context: ComputeContext, line: UInt = #line) throws {
        precondition(c.layout == .batchSequenceHead)
        let (b, hkv, total, dk, dv) = (c.batch, c.kvHeads, c.keyLength, c.headDim, c.dv)
        let q = c.q, k = c.k, v = c.v
        func split(_ x: [Float], _ d: Int) -> (past: [Float], new: [Float]) {
            var pastValues = [Float](), newValues = [Float]()
            for bi in 0..<b {
                for h in 0..<hkv {
                    for s in 0..<past {
                        let start: Int = ((bi * total + s) * hkv + h) * d
                        pastValues += x[start..<(start + d)]
                    }
                }
                for s in past..<total {
                    let start: Int = (bi * total + s) * hkv * d
                    newValues += x[start..<(start + hkv * d)]
                }
            }
            return (pastValues, newValues)
        }
        let (pk, nk) = split(k, dk), (pv, nv) = split(v, dv)
        let mask = try c.allowed.map { ONNXAttentionMask<Float>.boolean(try context.tensor($0, shape: c.allowedShape!)) }
        let result = try context.onnxAttention(
            q: context.tensor(q, shape: [b, c.queryLength, c.heads * dk]), k: context.tensor(nk, shape: [b, total - past, hkv * dk]),
            v: context.tensor(nv, shape: [b, total - past, hkv * dv]), attentionMask: mask,
            pastKey: past > 0 ? context.tensor(pk, shape: [b, hkv, past, dk]) : nil,
            pastValue: past > 0 ? context.tensor(pv, shape: [b, hkv, past, dv]) : nil,
            nonpadKVSequenceLength: nonpad, attributes: attributes, outputPresent: true)
        let expected = referenceAttention(c, q: q.map(Double.init), k: k.map(Double.init), v: v.map(Double.init), bias: nil).output
        let got = try result.y.toArray()
        XCTAssertEqual(result.y.shape, [b, c.queryLength, c.heads * dv], line: line)
        // Same bound as checkAttention's fp32 case: convex combinations of values in [-1, 1].
        let worst = zip(got, expected).map { abs(Double($0) - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, 2e-5, "\(context.backendDescription) \(c)", line: line)
        // present = past ++ new, in [B, Hkv, P+S, d]: the reference case's K transposed.
        let presentK = try result.presentKey!.toArray()
        for bi in 0..<b { for h in 0..<hkv { for s in 0..<total { for e in 0..<dk {
            XCTAssertEqual(presentK[((bi * hkv + h) * total + s) * dk + e], k[((bi * total + s) * hkv + h) * dk + e], line: line)
        } } } }
        XCTAssertEqual(result.presentValue?.shape, [b, hkv, total, dv], line: line)
    }

    func testThreeDimensionalInputsWithPastCausalBooleanMaskAndSoftcap() throws {
        onEveryBackend { context in
            // 4 new queries after a past of 12: query i sees keys ≤ 12 + i, and the boolean mask's picks.
            var c = AttentionCase(batch: 2, heads: 6, kvHeads: 2, queryLength: 4, keyLength: 18, headDim: 10,
                                  layout: .batchSequenceHead, mask: AttentionMask(isCausal: true, alignment: .offset(12)),
                                  softcap: 2, valueHeadDim: 6, allowedShape: [2, 1, 4, 18], seed: 100)
            try checkThreeDimensionalWithPast(c, past: 12, attributes: .init(isCausal: true, softcap: 2, qNumHeads: 6, kvNumHeads: 2), on: context)
            c.mask = AttentionMask()
            c.softcap = nil
            c.allowedShape = [4, 18]
            try checkThreeDimensionalWithPast(c, past: 12, attributes: .init(qNumHeads: 6, kvNumHeads: 2), on: context)
        }
    }

    func testNonpadLengthsWithCausalAlignPerBatch() throws {
        onEveryBackend { context in
            // No past: causal is bottom-right against each sequence's valid length (offset nonpad[b] − Sq).
            let c = AttentionCase(batch: 2, heads: 2, kvHeads: 1, queryLength: 3, keyLength: 9, headDim: 8, layout: .batchSequenceHead,
                                  mask: AttentionMask(isCausal: true, alignment: .bottomRight, keyLengths: [7, 4]), seed: 101)
            try checkThreeDimensionalWithPast(c, past: 0, attributes: .init(isCausal: true, qNumHeads: 2, kvNumHeads: 1),
                                              nonpad: [7, 4], on: context)
        }
    }
}
