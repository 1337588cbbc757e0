import Foundation
import VulkanKernels
import XCTest

/// ONNX's own `Attention` node tests (onnx v1.22.0, opset 23; shared/data/attention_vectors, see
/// PROVENANCE.md section 4) through ``ComputeContext/onnxAttention``, every case and every output on
/// every backend.
final class ONNXAttentionConformanceTests: XCTestCase {
    /// (case, output) pairs not checked, with the reason. Empty: every output of every case is checked.
    static let unsupported: [String: String] = [:]

    private struct Case {
        var name: String
        var attributes: ONNXAttentionAttributes
        /// Role (position in the node's inputs / outputs) → file stem, for the inputs and outputs present.
        var inputs: [Int: String] = [:], outputs: [Int: String] = [:]
        var isFloat16: Bool
    }

    private static let outputNames = ["Y", "present_key", "present_value", "qk_matmul_output"]

    private func loadCases(_ root: URL) throws -> [Case] {
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("MANIFEST.json"))) as! [String: Any]
        return try manifest.keys.sorted().map { name in
            let entry = manifest[name] as! [String: Any]
            let attributes = entry["attributes"] as! [String: Any]
            let nodeInputs = entry["node_inputs"] as! [String], nodeOutputs = entry["node_outputs"] as! [String]
            let files = (entry["sets"] as! [String: Any])["test_data_set_0"] as! [String: [String: Any]]
            func number(_ key: String) -> Double? { (attributes[key] as? NSNumber)?.doubleValue }
            var c = Case(name: name,
                         attributes: ONNXAttentionAttributes(isCausal: number("is_causal") == 1, scale: number("scale").map { Float($0) },
                                                             softcap: Float(number("softcap") ?? 0),
                                                             qNumHeads: number("q_num_heads").map { Int($0) },
                                                             kvNumHeads: number("kv_num_heads").map { Int($0) },
                                                             qkMatmulOutputMode: Int(number("qk_matmul_output_mode") ?? 0)),
                         isFloat16: false)
            for (stem, info) in files {
                let graphName = info["graph_name"] as! String
                if stem.hasPrefix("input") {
                    guard let role = nodeInputs.firstIndex(of: graphName) else { throw XCTSkip("\(name): unknown input \(graphName)") }
                    c.inputs[role] = stem
                    if role == 0 { c.isFloat16 = info["dtype"] as? String == "float16" }
                } else {
                    guard let role = nodeOutputs.firstIndex(of: graphName) else { throw XCTSkip("\(name): unknown output \(graphName)") }
                    c.outputs[role] = stem
                }
            }
            return c
        }
    }

    func testEveryONNXAttentionNodeTestPassesOnEveryBackend() throws {
        let root = sharedDataDirectory().appendingPathComponent("attention_vectors/onnx_v1.22.0_attention")
        guard FileManager.default.fileExists(atPath: root.path) else {
            throw XCTSkip("ONNX attention vectors not found at \(root.path); set VKK_SHARED_DATA to a copy of shared/data")
        }
        let cases = try loadCases(root)
        XCTAssertEqual(cases.count, 64, "MANIFEST.json should list ONNX 1.22's 64 Attention node tests")
        for key in Self.unsupported.keys {
            let parts = key.split(separator: "/").map(String.init)
            XCTAssert(cases.contains { $0.name == parts[0] } && Self.outputNames.contains(parts.last!), "unsupported entry \(key) names no case output")
        }
        onEveryBackend { context in
            var checked = 0
            for c in cases {
                do {
                    checked += c.isFloat16 ? try run(c, Float16.self, root: root, on: context) : try run(c, Float.self, root: root, on: context)
                } catch {
                    XCTFail("\(context.backendDescription) \(c.name): \(error)")
                }
            }
            let expected = cases.reduce(0) { $0 + $1.outputs.count } - Self.unsupported.count
            XCTAssertEqual(checked, expected, "\(context.backendDescription): outputs checked")
        }
    }

    /// Runs one case; returns how many outputs were compared.
    private func run<E: FloatingPointElement>(_ c: Case, _ type: E.Type, root: URL, on context: ComputeContext) throws -> Int {
        let folder = root.appendingPathComponent(c.name).appendingPathComponent("test_data_set_0")
        func array(_ stem: String) throws -> NPYArray { try NPY.read(contentsOf: folder.appendingPathComponent(stem + ".npy").path) }
        func tensor(_ role: Int) throws -> Tensor<E>? { try c.inputs[role].map { try context.tensor(try array($0), as: E.self) } }
        var mask: ONNXAttentionMask<E>?
        if let stem = c.inputs[3] {
            let raw = try array(stem)
            mask = raw.dtype == .uint8 ? .boolean(try context.tensor(raw, as: UInt8.self)) : .additive(try context.tensor(raw, as: E.self))
        }
        let nonpad = try c.inputs[6].map { try array($0).values(as: Int32.self).map(Int.init) }
        let result = try context.onnxAttention(q: tensor(0)!, k: tensor(1)!, v: tensor(2)!, attentionMask: mask,
                                               pastKey: tensor(4), pastValue: tensor(5), nonpadKVSequenceLength: nonpad,
                                               attributes: c.attributes, outputPresent: c.outputs[1] != nil,
                                               outputQKMatmul: c.outputs[3] != nil)
        var compared = 0
        for (role, stem) in c.outputs where Self.unsupported["\(c.name)/\(Self.outputNames[role])"] == nil {
            let got: Tensor<E>? = [result.y, result.presentKey, result.presentValue, result.qkMatmulOutput][role]
            let label = "\(context.backendDescription) \(c.name) \(Self.outputNames[role])"
            guard let got else { XCTFail("\(label): not produced"); continue }
            let want = try array(stem)
            XCTAssertEqual(got.shape, want.shape, label)
            compare(try got.toArray().map { Float($0) }, want.floats(), exact: role == 1 || role == 2, float16: c.isFloat16, label: label)
            compared += 1
        }
        return compared
    }

    /// Tolerances. present_key/value are copies: exact. fp32: the reference is numpy in fp32 (its
    /// matmuls and softmax round at ~1e-7 relative); ours differs in summation order and uses exp2:
    /// 1e-5 relative to max(1, |expected|) covers both with a wide margin over the 3e-8 seen in a numpy
    /// cross-check, while any semantic slip (wrong mask, scale, alignment) errs by 1e-2 or more.
    /// fp16: the reference computes in fp16 (every product and sum rounded to 11 bits), so it is off
    /// by up to about an ulp of the output scale itself (2.4e-4 measured against fp64); with ours
    /// rounding once, allow 2 ulps of max(|expected|, 0.5), i.e. 9.8e-4 for values below 1.
    /// Infinities (masked scores in qk_matmul_output) must match exactly.
    private func compare(_ got: [Float], _ want: [Float], exact: Bool, float16: Bool, label: String) {
        guard got.count == want.count else { return }
        var failures = 0
        for index in want.indices {
            let w = want[index], g = got[index]
            let ok: Bool
            if !w.isFinite || exact {
                ok = g == w
            } else if float16 {
                let magnitude = max(abs(w), 0.5)
                ok = abs(g - w) <= 2 * Float(Float16(magnitude).ulp)
            } else {
                ok = abs(g - w) <= 1e-5 * max(1, abs(w))
            }
            if !ok {
                if failures == 0 { XCTFail("\(label): element \(index) = \(g), expected \(w)") }
                failures += 1
            }
        }
        if failures > 1 { XCTFail("\(label): \(failures) elements out of tolerance") }
    }
}

/// ONNX entry-point input checks and the NPY types its test data needs.
final class ONNXAttentionErrorTests: XCTestCase {
    func testBadONNXInputsThrowNamingTheProblem() throws {
        onEveryBackend { context in
            let q = try context.zeros(Float.self, shape: [1, 2, 4, 8]), k = try context.zeros(Float.self, shape: [1, 2, 6, 8])
            func expect(_ text: String, line: UInt = #line, _ body: () throws -> Void) {
                XCTAssertThrowsError(try body(), line: line) { XCTAssert("\($0)".contains(text), "\"\($0)\" does not mention \(text)", line: line) }
            }
            expect("attn_mask") { _ = try context.onnxAttention(q: q, k: k, v: k, attentionMask: .additive(context.zeros(Float.self, shape: [3, 4, 6]))) }
            expect("attn_mask") { _ = try context.onnxAttention(q: q, k: k, v: k, attentionMask: .boolean(context.zeros(UInt8.self, shape: [4, 7]))) }
            expect("attn_mask") { _ = try context.onnxAttention(q: q, k: k, v: k, attentionMask: .additive(context.zeros(Float.self, shape: [6]))) }
            expect("softcap") { _ = try context.onnxAttention(q: q, k: k, v: k, attributes: .init(softcap: -1)) }
            expect("softcap") { _ = try context.onnxAttention(q: q, k: k, v: k, attributes: .init(softcap: .nan)) }
            expect("qk_matmul_output_mode") { _ = try context.onnxAttention(q: q, k: k, v: k, attributes: .init(qkMatmulOutputMode: 4)) }
            expect("past_key / past_value") { _ = try context.onnxAttention(q: q, k: k, v: k, pastKey: context.zeros(Float.self, shape: [1, 2, 3, 8])) }
            expect("past_key") {
                _ = try context.onnxAttention(q: q, k: k, v: k, pastKey: context.zeros(Float.self, shape: [1, 2, 3, 4]),
                                              pastValue: context.zeros(Float.self, shape: [1, 2, 3, 8]))
            }
            expect("nonpad_kv_seqlen") { _ = try context.onnxAttention(q: q, k: k, v: k, nonpadKVSequenceLength: [7]) }
            expect("kv_num_heads") { _ = try context.onnxAttention(q: q, k: k, v: k, attributes: .init(kvNumHeads: 3)) }
            let q3 = try context.zeros(Float.self, shape: [1, 4, 16]), k3 = try context.zeros(Float.self, shape: [1, 6, 16])
            expect("q_num_heads") { _ = try context.onnxAttention(q: q3, k: k3, v: k3) }
            expect("hidden size") { _ = try context.onnxAttention(q: q3, k: k3, v: k3, attributes: .init(qNumHeads: 3, kvNumHeads: 1)) }
            expect("rank") { _ = try context.onnxAttention(q: q3, k: k, v: k) }
        }
    }

    /// `<i8` narrows to Int32 (refusing values that do not fit); `|b1` reads as UInt8 0 / 1.
    func testNPYReadsInt64AndBool() throws {
        func npy(_ descr: String, _ shape: String, _ payload: [UInt8]) -> [UInt8] {
            var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
            header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
            return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count), 0] + Array(header.utf8) + payload
        }
        func int64Bytes(_ values: [Int64]) -> [UInt8] { values.flatMap { v in (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } } }
        let lengths = try NPY.read(bytes: npy("<i8", "(3,)", int64Bytes([3, -4, Int64(Int32.max)])), name: "lengths.npy")
        XCTAssertEqual(lengths.dtype, .int32)
        XCTAssertEqual(try lengths.values(as: Int32.self), [3, -4, .max])
        XCTAssertThrowsError(try NPY.read(bytes: npy("<i8", "(1,)", int64Bytes([Int64(Int32.max) + 1])), name: "big.npy")) {
            XCTAssert("\($0)".contains("Int32"), "\($0)")
        }
        let flags = try NPY.read(bytes: npy("|b1", "(2, 2)", [1, 0, 0, 1]), name: "mask.npy")
        XCTAssertEqual(flags.shape, [2, 2])
        XCTAssertEqual(try flags.values(as: UInt8.self), [1, 0, 0, 1])
    }
}
