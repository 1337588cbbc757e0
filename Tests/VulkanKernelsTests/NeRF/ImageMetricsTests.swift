import Foundation
import VulkanKernels
import XCTest

/// PSNR and SSIM (`vkk eval`'s scores) against float64 references and known values.
final class ImageMetricsTests: XCTestCase {
    /// A direct (non-separable) float64 SSIM: the 11×11 window as the outer product of the normalised
    /// Gaussian (σ = 1.5), every valid window position, C1 = 0.01², C2 = 0.03², mean over windows and channels.
    func referenceSSIM(_ a: [Float], _ b: [Float], width: Int, height: Int) -> Double {
        let g = (0..<11).map { exp(-Double(($0 - 5) * ($0 - 5)) / 4.5) }
        let total = g.reduce(0, +)
        let window = (0..<121).map { g[$0 / 11] * g[$0 % 11] / (total * total) }
        var sum = 0.0, count = 0
        for c in 0..<3 {
            for y in 0...(height - 11) {
                for x in 0...(width - 11) {
                    var mx = 0.0, my = 0.0, xx = 0.0, yy = 0.0, xy = 0.0
                    for t in 0..<121 {
                        let i = 3 * ((y + t / 11) * width + x + t % 11) + c
                        let p = Double(a[i]), q = Double(b[i]), wt = window[t]
                        mx += wt * p; my += wt * q; xx += wt * p * p; yy += wt * q * q; xy += wt * p * q
                    }
                    let c1 = 1e-4, c2 = 9e-4
                    sum += (2 * mx * my + c1) * (2 * (xy - mx * my) + c2) / ((mx * mx + my * my + c1) * (xx - mx * mx + yy - my * my + c2))
                    count += 1
                }
            }
        }
        return sum / Double(count)
    }

    func randomImage(_ width: Int, _ height: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0..<(3 * width * height)).map { _ in Float.random(in: 0...1, using: &generator) }
    }

    /// The separable float64 filter equals the direct 2-D window (both float64: agreement to ~1e-15 per
    /// term, 1e-12 leaves room for the different summation order).
    func testSSIMMatchesDirectFloat64Reference() throws {
        for (width, height, seed) in [(11, 11, 1), (17, 12, 2), (30, 23, 3)] {
            let a = randomImage(width, height, seed: UInt64(seed))
            // b: a blurred, noisy, shifted copy of a, so that SSIM sits well inside (0, 1).
            var generator = SeededGenerator(seed: UInt64(seed) + 100)
            let b = a.map { min(max(0.7 * $0 + 0.1 + Float.random(in: -0.1...0.1, using: &generator), 0), 1) }
            let ssim = try ImageMetrics.ssim(a, b, width: width, height: height)
            XCTAssertEqual(ssim, referenceSSIM(a, b, width: width, height: height), accuracy: 1e-12, "\(width)×\(height)")
            XCTAssertGreaterThan(ssim, 0.1)
            XCTAssertLessThan(ssim, 0.95)
        }
    }

    /// Known values: identical images score 1 (and PSNR +∞); constant images c and d score
    /// (2cd + C1)/(c² + d² + C1) (zero variances); a smooth test pattern scores what an independent numpy
    /// implementation (direct 2-D window, float64) gives: 0.9081842695593454 and PSNR 18.095838910282804 dB.
    func testKnownValues() throws {
        let a = randomImage(20, 15, seed: 9)
        XCTAssertEqual(try ImageMetrics.ssim(a, a, width: 20, height: 15), 1, accuracy: 1e-12)
        XCTAssertEqual(try ImageMetrics.psnr(a, a, width: 20, height: 15), .infinity)
        let c = [Float](repeating: 0.5, count: 3 * 12 * 12), d = [Float](repeating: 0.25, count: 3 * 12 * 12)
        XCTAssertEqual(try ImageMetrics.ssim(c, d, width: 12, height: 12), (2 * 0.5 * 0.25 + 1e-4) / (0.25 + 0.0625 + 1e-4), accuracy: 1e-12)
        // 0.25 vs 0.5 everywhere: MSE = 1/16, PSNR = 10·log10(16).
        XCTAssertEqual(try ImageMetrics.psnr(c, d, width: 12, height: 12), 10 * log10(16.0), accuracy: 1e-12)
        let (w, h) = (16, 13)
        var p = [Float](), q = [Float]()
        for y in 0..<h {
            for x in 0..<w {
                for ch in 0..<3 {
                    let s = 0.5 + 0.4 * sin(0.3 * Double(x) + 0.7 * Double(y) + Double(ch))
                    p.append(Float(s))
                    q.append(Float(0.8 * s + 0.1 * cos(0.5 * Double(x) - 0.2 * Double(y) + Double(ch))))
                }
            }
        }
        // Inputs are float32 in both implementations; the sums differ only in order: 1e-9.
        XCTAssertEqual(try ImageMetrics.ssim(p, q, width: w, height: h), 0.9081842695593454, accuracy: 1e-9)
        XCTAssertEqual(try ImageMetrics.psnr(p, q, width: w, height: h), 18.095838910282804, accuracy: 1e-9)
    }

    /// More noise, lower scores.
    func testScoresFallWithNoise() throws {
        let a = randomImage(24, 24, seed: 4)
        var previous = (psnr: Double.infinity, ssim: 1.0)
        for amplitude: Float in [0.02, 0.05, 0.1, 0.2] {
            var generator = SeededGenerator(seed: 5)
            let b = a.map { $0 + Float.random(in: -amplitude...amplitude, using: &generator) }
            let psnr = try ImageMetrics.psnr(a, b, width: 24, height: 24), ssim = try ImageMetrics.ssim(a, b, width: 24, height: 24)
            XCTAssertLessThan(psnr, previous.psnr)
            XCTAssertLessThan(ssim, previous.ssim)
            previous = (psnr, ssim)
        }
    }

    func testBadInputsThrow() {
        let a = randomImage(12, 12, seed: 1)
        XCTAssertThrowsError(try ImageMetrics.ssim(a, Array(a.dropLast()), width: 12, height: 12))
        XCTAssertThrowsError(try ImageMetrics.ssim(Array(a[0..<(3 * 10 * 12)]), Array(a[0..<(3 * 10 * 12)]), width: 10, height: 12),
                             "SSIM needs 11×11 pixels")
        XCTAssertThrowsError(try ImageMetrics.psnr(a, a, width: 12, height: 13))
        var bad = a
        bad[7] = .nan
        XCTAssertThrowsError(try ImageMetrics.psnr(a, bad, width: 12, height: 12))
        XCTAssertThrowsError(try ImageMetrics.psnr([], [], width: 0, height: 0))
    }
}
