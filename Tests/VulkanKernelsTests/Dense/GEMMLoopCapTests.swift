@testable import VulkanKernels
import XCTest

/// GEMM with a long K under lavapipe's per-invocation loop cap (DeviceInfo.loopIterationsPerInvocation):
/// a K the cap would cut short is refused before dispatch; one inside it is right.
final class GEMMLoopCapTests: XCTestCase {
    func testLongKIsRightOrRefused() throws {
        guard let gpu = Backends.vulkan, let info = gpu.deviceInfo else { return }
        // All-ones inputs: every output is exactly K (integers below 2²⁴ are exact in fp32).
        for kernel in [GEMMKernel.automatic, .subgroup] {
            let inside = 1 << 17   // inside half the cap (262 008 for the subgroup kernel)
            let c = try gpu.empty(Float.self, shape: [1, 4])
            let a0 = try gpu.tensor([Float](repeating: 1, count: inside), shape: [1, inside])
            let b0 = try gpu.tensor([Float](repeating: 1, count: inside * 4), shape: [inside, 4])
            try gpu.batch { try $0.gemm(a0, b0, into: c, kernel: kernel) }
            XCTAssertEqual(try c.toArray(), [Float](repeating: Float(inside), count: 4), "\(kernel)")
            // 2²⁰: measured 524 276 instead of 1 048 576 on lavapipe before the guard.
            let long = 1 << 20
            let a = try gpu.tensor([Float](repeating: 1, count: long), shape: [1, long])
            let b = try gpu.tensor([Float](repeating: 1, count: long * 4), shape: [long, 4])
            if info.loopIterationsPerInvocation != nil {
                XCTAssertThrowsError(try gpu.batch { try $0.gemm(a, b, into: c, kernel: kernel) }) {
                    XCTAssert("\($0)".contains("loop-iteration cap"), "\($0)")
                }
            } else {
                try gpu.batch { try $0.gemm(a, b, into: c, kernel: kernel) }
                XCTAssertEqual(try c.toArray(), [Float](repeating: Float(long), count: 4), "\(kernel)")
            }
        }
    }
}
