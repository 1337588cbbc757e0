import CKernels
@testable import VulkanKernels
import XCTest

/// bf16 storage of Q, K, V, the output and the additive bias (fp32 arithmetic), against the float64
/// reference on the bf16-rounded inputs. Tolerances: checkAttention's bf16 limit (half an ulp of outputs
/// below 1, 2⁻⁹, plus fp32 arithmetic).
final class AttentionBFloat16Tests: XCTestCase {
    override func tearDown() {
        vkk_cpu_set_path(-1)
        super.tearDown()
    }

    func testBFloat16StorageAccumulatesInFloat32() throws {
        onEveryBackend { context in
            // Prefill with a causal mask (RGBA16UI views, vec4 stores).
            try checkAttention(AttentionCase(queryLength: 19, keyLength: 45, mask: .causal(), seed: 18), BFloat16.self, on: context)
            // A head dim that is not a multiple of 4: R16UI views and scalar stores.
            try checkAttention(AttentionCase(queryLength: 9, keyLength: 40, headDim: 7, seed: 20), BFloat16.self, on: context)
            // Decode with grouped heads, split along the keys: bf16 inputs, fp32 partials, bf16 merge.
            try checkAttention(AttentionCase(heads: 4, kvHeads: 1, queryLength: 1, keyLength: 300, seed: 19), BFloat16.self, on: context,
                               split: .count(3))
            try checkAttention(AttentionCase(heads: 2, kvHeads: 1, queryLength: 1, keyLength: 200, headDim: 6, seed: 21), BFloat16.self,
                               on: context, split: .count(2))
            // Ragged key lengths, an empty sequence and an fp32 bias with bf16 Q/K/V.
            try checkAttention(AttentionCase(batch: 3, queryLength: 12, keyLength: 30, mask: AttentionMask(keyLengths: [30, 17, 0]),
                                             biasShape: [12, 30], seed: 22), BFloat16.self, on: context)
        }
    }

    /// The bias's type is independent of Q's: bf16 and fp16 biases with fp32 and bf16 storage.
    func testBiasOfEveryTypeWithEveryStorage() throws {
        onEveryBackend { context in
            let c = AttentionCase(batch: 2, heads: 2, queryLength: 11, keyLength: 27, headDim: 16, mask: .causal(), biasShape: [2, 1, 11, 27], seed: 23)
            // (fp32 bias with bf16 storage: testBFloat16StorageAccumulatesInFloat32.)
            try checkBias(c, BFloat16.self, storage: Float.self, on: context)
            try checkBias(c, BFloat16.self, storage: BFloat16.self, on: context)
            try checkBias(c, Float16.self, storage: BFloat16.self, on: context)
        }
    }

    /// The CPU path's block-by-block bf16 widening of K and V on every CPU path (scalar, AVX2, AVX-512).
    func testBFloat16OnEveryCPUPath() throws {
        let context = try ComputeContext(backend: .cpu)
        for path in Int32(VKK_PATH_SCALAR)...vkk_cpu_best_path_for(vkk_cpu_features()) {
            vkk_cpu_set_path(path)
            // More keys than one block of 64, and a head dim off the vector widths.
            try checkAttention(AttentionCase(heads: 2, kvHeads: 1, queryLength: 20, keyLength: 150, headDim: 48, mask: .causal()),
                               BFloat16.self, on: context)
            try checkAttention(AttentionCase(heads: 4, kvHeads: 2, queryLength: 1, keyLength: 130, headDim: 7), BFloat16.self, on: context)
        }
    }

    /// ONNX Attention (opset 23 allows bf16) with a past cache and an additive bf16 mask shorter than the
    /// total sequence (its missing keys filled with bf16 −∞): the same as the fp32 entry point on the
    /// same bf16-rounded inputs, to within bf16 output rounding (2⁻⁹ for outputs below 1) plus fp32's error
    /// (the fp32 path is itself held to 2e-5 of float64 by the ONNX conformance tests).
    func testONNXAttentionInBFloat16MatchesFloat32() throws {
        onEveryBackend { context in
            let (b, h, sq, past, skv, d) = (1, 2, 5, 7, 6, 8)
            func values(_ count: Int, _ seed: UInt64) -> [BFloat16] { [Float].random(count: count, seed: seed).map { BFloat16($0) } }
            let q = values(b * h * sq * d, 31), k = values(b * h * skv * d, 32), v = values(b * h * skv * d, 33)
            let pk = values(b * h * past * d, 34), pv = values(b * h * past * d, 35)
            let mask = values(sq * (past + skv - 3), 36)
            func run<E: FloatingPointElement>(_ convert: (BFloat16) -> E) throws -> [Double] {
                func t(_ x: [BFloat16], _ shape: [Int]) throws -> Tensor<E> { try context.tensor(x.map(convert), shape: shape) }
                let out = try context.onnxAttention(q: try t(q, [b, h, sq, d]), k: try t(k, [b, h, skv, d]), v: try t(v, [b, h, skv, d]),
                                                    attentionMask: .additive(try t(mask, [sq, past + skv - 3])),
                                                    pastKey: try t(pk, [b, h, past, d]), pastValue: try t(pv, [b, h, past, d]))
                return try out.y.toArray().map { Double(Float($0)) }
            }
            let bf16 = try run { $0 }, fp32 = try run { Float($0) }
            XCTAssertEqual(bf16.count, b * h * sq * d)
            let worst = zip(bf16, fp32).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(worst, 0x1p-9 + 4e-5, context.backendDescription)
        }
    }

    private func checkBias<B: FloatingPointElement, E: FloatingPointElement>(_ c: AttentionCase, _ biasType: B.Type, storage: E.Type,
                                                                             on context: ComputeContext,
                                                                             file: StaticString = #filePath, line: UInt = #line) throws {
        let q = c.q.map { E($0) }, k = c.k.map { E($0) }, v = c.v.map { E($0) }
        let bias = c.bias!.map { B($0) }
        var mask = c.mask
        mask.bias = try context.tensor(bias, shape: c.biasShape!)
        let out = try context.attention(q: try context.tensor(q, shape: c.qShape), k: try context.tensor(k, shape: c.kShape),
                                        v: try context.tensor(v, shape: c.vShape), mask: mask)
        let got = try out.toArray().map { Double(Float($0)) }
        let expected = referenceAttention(c, q: q.map { Double(Float($0)) }, k: k.map { Double(Float($0)) }, v: v.map { Double(Float($0)) },
                                          bias: bias.map { Double(Float($0)) })
        // As checkAttention: fp32 arithmetic (2e-5), plus half an ulp of outputs below 1 for bf16 storage.
        let limit = E.self == BFloat16.self ? 0x1p-9 + 2e-5 : 2e-5
        let worst = zip(got, expected.output).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, limit, "\(context.backendDescription): \(B.self) bias, \(E.self) storage", file: file, line: line)
    }
}
