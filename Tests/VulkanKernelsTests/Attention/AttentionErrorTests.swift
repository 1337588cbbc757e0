import VulkanKernels
import XCTest

/// Bad input to attention throws a KernelError naming the problem, before anything runs.
final class AttentionErrorTests: XCTestCase {
    private func expectError(_ context: ComputeContext, q: [Int], k: [Int], v: [Int]? = nil, mask: AttentionMask = .none,
                             lse: [Int]? = nil, mentioning text: String, line: UInt = #line) throws {
        let qt = try context.zeros(Float.self, shape: q), kt = try context.zeros(Float.self, shape: k)
        let vt = try context.zeros(Float.self, shape: v ?? k)
        let lseTensor = try lse.map { try context.zeros(Float.self, shape: $0) }
        XCTAssertThrowsError(try context.attention(q: qt, k: kt, v: vt, mask: mask, logSumExp: lseTensor), line: line) { error in
            XCTAssert(error is KernelError, "\(error)", line: line)
            XCTAssert("\(error)".contains(text), "message \"\(error)\" does not mention \(text)", line: line)
        }
    }

    func testBadShapesAndMasksThrowClearErrors() throws {
        onEveryBackend { context in
            try expectError(context, q: [1, 5, 4, 32], k: [1, 2, 4, 32], mentioning: "multiple of key/value heads")
            try expectError(context, q: [1, 2, 4, 0], k: [1, 2, 4, 0], mentioning: "headDim")
            try expectError(context, q: [1, 2, 4, 577], k: [1, 2, 4, 577], mentioning: "headDim")
            try expectError(context, q: [1, 2, 4, 32], k: [1, 2, 4, 64], mentioning: "head dim of Q vs K")
            try expectError(context, q: [1, 2, 4, 32], k: [1, 2, 6, 32], v: [1, 2, 5, 32], mentioning: "K vs V")
            try expectError(context, q: [2, 4, 32], k: [2, 4, 32], mentioning: "expected [batch, heads, sequence, headDim]")
            try expectError(context, q: [2, 2, 4, 32], k: [1, 2, 4, 32], mentioning: "batch of Q vs K")
            try expectError(context, q: [1, 2, 4, 32], k: [1, 2, 6, 32], mask: AttentionMask(keyLengths: [3, 4]), mentioning: "mask.keyLengths")
            try expectError(context, q: [1, 2, 4, 32], k: [1, 2, 6, 32], mask: AttentionMask(keyLengths: [7]), mentioning: "mask.keyLengths")
            try expectError(context, q: [1, 2, 4, 32], k: [1, 2, 6, 32], mask: AttentionMask(queryLengths: [-1]), mentioning: "mask.queryLengths")
            try expectError(context, q: [1, 2, 4, 32], k: [1, 2, 6, 32], mask: AttentionMask(alibiSlopes: [1]), mentioning: "mask.alibiSlopes")
            try expectError(context, q: [1, 2, 4, 32], k: [1, 2, 6, 32], mask: AttentionMask(alibiSlopes: [1, .nan]), mentioning: "mask.alibiSlopes")
            try expectError(context, q: [1, 2, 4, 32], k: [1, 2, 6, 32], mask: AttentionMask(window: .init(left: -1, right: 0)), mentioning: "mask.window")
            try expectError(context, q: [1, 2, 4, 32], k: [1, 2, 6, 32], mask: AttentionMask(bias: context.zeros(Float.self, shape: [1, 2, 6, 4])),
                            mentioning: "mask.bias")
            try expectError(context, q: [1, 2, 4, 32], k: [1, 2, 6, 32],
                            mask: AttentionMask(blockLayout: .init(blockRows: 2, blockColumns: 2, blocks: [1, 1, 1])), mentioning: "mask.blockLayout")
            try expectError(context, q: [1, 2, 4, 32], k: [1, 2, 6, 32], lse: [1, 2, 5], mentioning: "logSumExp")
            try expectError(context, q: [1, 2, 0, 32], k: [1, 2, 6, 32], mentioning: "no elements")
        }
    }

    func testTensorsOfAnotherContextAreRejected() throws {
        guard let vulkan = Backends.vulkan else { throw XCTSkip("no Vulkan device") }
        let q = try Backends.cpu.zeros(Float.self, shape: [1, 1, 2, 32])
        let k = try vulkan.zeros(Float.self, shape: [1, 1, 2, 32])
        XCTAssertThrowsError(try vulkan.attention(q: q, k: k, v: k))
    }
}
