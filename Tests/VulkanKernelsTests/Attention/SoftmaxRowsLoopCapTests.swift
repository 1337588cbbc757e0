@testable import VulkanKernels
import XCTest

/// softmaxRows on long rows under lavapipe's per-invocation loop cap (DeviceInfo.loopIterationsPerInvocation):
/// a row the cap would cut short is refused before dispatch; one inside it is right.
final class SoftmaxRowsLoopCapTests: XCTestCase {
    func testLongRowsAreRightOrRefused() throws {
        guard let gpu = Backends.vulkan, let info = gpu.deviceInfo else { return }
        // 2¹⁸ columns: 3 · 2¹⁸ / 32 = 24576 loop steps per lane on lavapipe, inside half the cap. Against a
        // float64 softmax: inputs in [-4, 4), each output exp(x − max) / Σ has fp32 relative error of a few
        // ulps from exp plus the sum's (2¹⁵ sequential additions per lane, ≤ 2¹⁵ · 2⁻²⁴ ≈ 2e-3 relative at
        // worst, √ of that in practice); 4e-3 relative bounds both.
        let n = 1 << 18
        var generator = SeededGenerator(seed: 1790)
        let values = (0..<n).map { _ in Float.random(in: -4..<4, using: &generator) }
        let x = try gpu.tensor(values, shape: [1, n])
        try gpu.batch { try $0.softmaxRows(x) }
        let got = try x.toArray()
        let top = Double(values.max()!), sum = values.reduce(0.0) { $0 + exp(Double($1) - top) }
        var worst = 0.0
        for index in 0..<n {
            let want = exp(Double(values[index]) - top) / sum
            worst = max(worst, abs(Double(got[index]) - want) / want)
        }
        XCTAssertLessThanOrEqual(worst, 4e-3)
        // 2²⁰ columns: 98304 steps per lane, past lavapipe's 65535 (measured: the row came out summing to
        // 3e-5 instead of 1). Refused where the cap exists, right elsewhere.
        let long = try gpu.tensor([Float](repeating: 0, count: 1 << 20), shape: [1, 1 << 20])
        if info.loopIterationsPerInvocation != nil {
            XCTAssertThrowsError(try gpu.batch { try $0.softmaxRows(long) }) {
                XCTAssert("\($0)".contains("loop-iteration cap"), "\($0)")
            }
        } else {
            try gpu.batch { try $0.softmaxRows(long) }
            XCTAssertEqual(try long.toArray().reduce(0.0) { $0 + Double($1) }, 1, accuracy: 1e-3)
        }
    }
}
