import CKernels
import VulkanKernels
import XCTest

/// Head dims above 256 and V head dims that differ from Q/K's: DeepSeek's MLA (576 for Q·K, 512 for V),
/// ggml's 320/256 and 512/512, FlashAttention-3's 64/512, and ragged ones, against the float64 reference
/// (AttentionReference.swift) on every backend and every CPU kernel path, with the masks, lengths,
/// KV cache, log-sum-exp and split-KV decode they compose with.
final class AttentionLargeHeadDimTests: XCTestCase {
    /// The fp32 bound grows with the Q·K head dim. AttentionReference's 2e-5 covers dot products of up to
    /// 256 terms; a score's rounding error is about √dk · 2⁻²⁴ · Σ|q·k| · scale with Σ|q·k| ≈ dk/4 (inputs
    /// uniform in [-1, 1)) and scale = 1/√dk, so it grows as dk, and the output's error is at most twice the
    /// largest score error (δo = Σ p_j·δs_j·(v_j − o), |v_j − o| ≤ 2). Hence 2e-5 · dk/256 (4.5e-5 at 576).
    /// The 32K-key decode adds fp32 sums of 32K probabilities (1024 sequential additions per lane, both in
    /// the numerator and in the denominator, √1024 · 2⁻²⁴ ≈ 2e-6 relative), far inside that. fp16:
    /// rounding the output to fp16 (half an ulp of values ≤ 1 is 4.9e-4) dominates, as in
    /// AttentionReference, plus the fp32 bound.
    static func tolerance<E: FloatingPointElement>(_ c: AttentionCase, _ type: E.Type) -> Double {
        let fp32 = 2e-5 * max(1, Double(c.headDim) / 256)
        return E.self == Float.self ? fp32 : 1e-3 + fp32
    }

    /// Runs `c` on every backend (or only `contexts`), with every split in `splits`, against one float64
    /// reference. With `poisonPastKeyLengths`, the K and V rows past each batch's key length (a KV cache's
    /// unused tail) are NaN: any read of them would turn the output into NaN.
    private func check<E: FloatingPointElement>(_ c: AttentionCase, _ type: E.Type, splits: [AttentionSplit] = [.automatic],
                                                poisonPastKeyLengths: Bool = false, only contexts: [ComputeContext]? = nil, label: String = "",
                                                file: StaticString = #filePath, line: UInt = #line) {
        var q = c.q.map { E($0) }, k = c.k.map { E($0) }, v = c.v.map { E($0) }
        if poisonPastKeyLengths, let lengths = c.mask.keyLengths {
            XCTAssertEqual(c.layout, .batchHeadSequence, "poisoning is written for [batch, heads, sequence, headDim]", file: file, line: line)
            for b in 0..<c.batch {
                for h in 0..<c.kvHeads {
                    for j in lengths[b]..<c.keyLength {
                        let row = (b * c.kvHeads + h) * c.keyLength + j
                        for e in 0..<c.headDim { k[row * c.headDim + e] = E(Float.nan) }
                        for e in 0..<c.dv { v[row * c.dv + e] = E(Float.nan) }
                    }
                }
            }
        }
        let expected = referenceAttention(c, q: q.map { Double(Float($0)) }, k: k.map { Double(Float($0)) },
                                          v: v.map { Double(Float($0)) }, bias: c.bias?.map { Double($0) })
        let limit = Self.tolerance(c, E.self)
        func run(_ context: ComputeContext) throws {
            var mask = c.mask
            if let bias = c.bias, let shape = c.biasShape { mask.bias = try context.tensor(bias, shape: shape) }
            let qt = try context.tensor(q, shape: c.qShape), kt = try context.tensor(k, shape: c.kShape)
            let vt = try context.tensor(v, shape: c.vShape)
            for split in splits {
                let lse = try context.empty(Float.self, shape: [c.batch, c.heads, c.queryLength])
                let out = try context.attention(q: qt, k: kt, v: vt, mask: mask, scale: c.scale, softcap: c.softcap, layout: c.layout,
                                                logSumExp: lse, split: split)
                let got = try out.toArray().map { Double(Float($0)) }, gotLse = try lse.toArray()
                let name = "\(context.backendDescription)\(label) \(E.self) dk=\(c.headDim) dv=\(c.dv) heads=\(c.heads)/\(c.kvHeads) "
                    + "Lq=\(c.queryLength) Lk=\(c.keyLength) split \(split)"
                XCTAssertEqual(got.count, expected.output.count, name, file: file, line: line)
                var worst = 0.0, worstIndex = 0
                for index in got.indices {
                    guard got[index].isFinite else { XCTFail("\(name): non-finite output at \(index)", file: file, line: line); return }
                    let error = abs(got[index] - expected.output[index])
                    if error > worst { worst = error; worstIndex = index }
                }
                XCTAssertLessThanOrEqual(worst, limit, "\(name): output[\(worstIndex)] = \(got[worstIndex]) vs \(expected.output[worstIndex])",
                                         file: file, line: line)
                // The log-sum-exp: the row max plus a log, fp32 relative rounding of both (as AttentionReference).
                for index in gotLse.indices {
                    let want = expected.lse[index], have = Double(gotLse[index])
                    let ok = want == -.infinity ? have == -.infinity : abs(have - want) <= 1e-4 * max(1, abs(want))
                    if !ok { XCTFail("\(name): lse[\(index)] = \(have), expected \(want)", file: file, line: line); break }
                }
            }
        }
        if let contexts {
            for context in contexts {
                do { try run(context) } catch { XCTFail("\(context.backendDescription)\(label): \(error)", file: file, line: line) }
            }
        } else {
            onEveryBackend(file: file, line: line) { try run($0) }
        }
    }

    func testMLAAndOtherLargeHeadDimsPrefill() {
        // MLA, multi-query (4 query heads, 1 K/V head): 76 tile rows, tiles that straddle two heads.
        check(AttentionCase(heads: 4, kvHeads: 1, queryLength: 19, keyLength: 45, headDim: 576, mask: .causal(), valueHeadDim: 512, seed: 1700),
              Float.self)
        // MLA with top-left causal, a left window narrower than a key tile, a softcap, per-sequence lengths
        // (an empty query sequence) and the [batch, sequence, heads, headDim] layout.
        check(AttentionCase(batch: 3, heads: 2, kvHeads: 2, queryLength: 19, keyLength: 45, headDim: 576, layout: .batchSequenceHead,
                            mask: AttentionMask(isCausal: true, alignment: .topLeft, window: .init(left: 7, right: 0),
                                                queryLengths: [19, 11, 0], keyLengths: [45, 30, 12]),
                            softcap: 20, valueHeadDim: 512, seed: 1701), Float.self)
        // ggml's 320/256 with ALiBi and an additive bias; 512/512; FlashAttention-3's 64/512 with GQA.
        check(AttentionCase(heads: 2, kvHeads: 2, queryLength: 21, keyLength: 70, headDim: 320, mask: AttentionMask(alibiSlopes: [0.25, 0.0625]),
                            biasShape: [21, 70], valueHeadDim: 256, seed: 1702), Float.self)
        check(AttentionCase(heads: 2, kvHeads: 1, queryLength: 9, keyLength: 40, headDim: 512, mask: .causal(), seed: 1703), Float.self)
        check(AttentionCase(heads: 4, kvHeads: 2, queryLength: 17, keyLength: 50, headDim: 64, mask: .causal(), valueHeadDim: 512, seed: 1704),
              Float.self)
        // Ragged head dims (not multiples of 4: the element-wise path), up to the largest supported.
        for (index, (dk, dv)) in [(257, 300), (576, 511)].enumerated() {
            check(AttentionCase(heads: 2, kvHeads: 1, queryLength: 10, keyLength: 37, headDim: dk, mask: .causal(), valueHeadDim: dv,
                                seed: UInt64(1710 + index)), Float.self)
        }
        // fp16 storage.
        check(AttentionCase(heads: 4, kvHeads: 1, queryLength: 10, keyLength: 40, headDim: 576, mask: .causal(), valueHeadDim: 512, seed: 1720),
              Float16.self)
    }

    func testMLADecodeWith32KKeysAndSplits() {
        // One query row, 32K keys, the shared latent K/V head of MLA (few query heads keep the float64
        // reference quick); the automatic split, an explicit one that leaves a short last range, and
        // .none and .count(2), which lavapipe's loop cap turns into more splits (they lost keys before:
        // testOneWorkgroupOverManyKeysKeepsEveryKey, docs/attention.md "Known limits").
        let c = AttentionCase(heads: 2, kvHeads: 1, queryLength: 1, keyLength: 32768, headDim: 576, mask: .causal(), valueHeadDim: 512,
                              seed: 1730)
        check(c, Float.self, splits: [.automatic, .count(7), .none, .count(2)])
        // fp16 at 8192 keys (generating and referencing 32K × 1088 inputs a second time costs most of this
        // test's time); the automatic split still splits it.
        var half = c
        half.keyLength = 8192
        half.seed = 1731
        check(half, Float16.self, splits: [.automatic, .count(5)])
    }

    func testOneWorkgroupOverManyKeysKeepsEveryKey() {
        // lavapipe's LLVM backend (gallivm) ends every loop of an invocation once all its loops together
        // have run 65535 iterations (LP_MAX_TGSI_LOOP_ITERATIONS, one counter per invocation). Unsplit, one
        // workgroup loops over 1032 key tiles of 32 keys here, each with a 64-step loop over the head dim
        // (67 000 back edges), so before the host capped the keys per workgroup the last ~1000 tiles were
        // dropped silently (a wrong output and a log-sum-exp too low). The smallest shape found that
        // crosses it: one head, one query row, dk = dv = 256, 33000 keys. Tolerance: as the other fp32 cases.
        let c = AttentionCase(heads: 1, kvHeads: 1, queryLength: 1, keyLength: 33000, headDim: 256, seed: 1735)
        check(c, Float.self, splits: [.none, .count(1)])
    }

    func testMLADecodeFromAKVCacheWithSixteenHeads() {
        // DeepSeek's 16 query heads on one K/V head: 16 tile rows, one 16-row tile on Vulkan; a cache whose
        // tail past the length is NaN (never read), split and unsplit.
        let c = AttentionCase(heads: 16, kvHeads: 1, queryLength: 1, keyLength: 1100, headDim: 576,
                              mask: AttentionMask(isCausal: true, keyLengths: [1000]), valueHeadDim: 512, seed: 1740)
        check(c, Float.self, splits: [.automatic, .none, .count(3)], poisonPastKeyLengths: true)
        // Two new rows per step (speculative decoding), bottom-right causal against the cache, fp16.
        let draft = AttentionCase(batch: 2, heads: 16, kvHeads: 1, queryLength: 2, keyLength: 300, headDim: 576,
                                  mask: AttentionMask(isCausal: true, keyLengths: [260, 3]), valueHeadDim: 512, seed: 1741)
        check(draft, Float16.self, splits: [.automatic, .count(2)], poisonPastKeyLengths: true)
    }

    func testLargeHeadDimsOnEveryCPUPath() {
        let best = vkk_cpu_best_path_for(vkk_cpu_features())
        defer { vkk_cpu_set_path(-1) }
        for path in Int32(VKK_PATH_SCALAR)...best {
            vkk_cpu_set_path(path)
            XCTAssertEqual(vkk_cpu_path(), path)
            let cpu = [Backends.cpu], label = " (\(String(cString: vkk_cpu_path_name(path))) path)"
            // Rows per K/V head: 1 (the AVX2 row dots), 4 (AVX-512 row dots, AVX2 4-row tiles), 16 and 26
            // (transposed key blocks and register tiles); keys past one 64-key block.
            for (index, (heads, lq, lk)) in [(1, 1, 150), (4, 1, 200), (16, 1, 130), (2, 13, 150)].enumerated() {
                check(AttentionCase(heads: heads, kvHeads: 1, queryLength: lq, keyLength: lk, headDim: 576, mask: .causal(), valueHeadDim: 512,
                                    seed: UInt64(1750 + index)), Float.self, only: cpu, label: label)
            }
            check(AttentionCase(heads: 2, kvHeads: 1, queryLength: 9, keyLength: 70, headDim: 257, valueHeadDim: 300, seed: 1760),
                  Float.self, only: cpu, label: label)
            check(AttentionCase(heads: 4, kvHeads: 1, queryLength: 3, keyLength: 90, headDim: 576, mask: .causal(), valueHeadDim: 512, seed: 1761),
                  Float16.self, only: cpu, label: label)
        }
    }

    func testHeadDimsAboveTheLimitThrow() {
        onEveryBackend { context in
            let q = try context.zeros(Float.self, shape: [1, 1, 2, 576]), k = try context.zeros(Float.self, shape: [1, 1, 3, 576])
            XCTAssertNoThrow(try context.attention(q: q, k: k, v: context.zeros(Float.self, shape: [1, 1, 3, 576])))
            for (dk, dv) in [(577, 512), (576, 577), (1024, 64)] {
                let q = try context.zeros(Float.self, shape: [1, 1, 2, dk]), k = try context.zeros(Float.self, shape: [1, 1, 3, dk])
                XCTAssertThrowsError(try context.attention(q: q, k: k, v: context.zeros(Float.self, shape: [1, 1, 3, dv]))) {
                    XCTAssert($0 is KernelError && "\($0)".contains("1...576"), "\($0)")
                }
            }
        }
    }
}
