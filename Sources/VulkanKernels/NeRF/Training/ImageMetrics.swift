import Glibc

/// Image-quality metrics for novel views, as NeRF papers report them: PSNR and SSIM on RGB in [0, 1].
public enum ImageMetrics {
    /// Why two images cannot be compared.
    static func check(_ a: [Float], _ b: [Float], width: Int, height: Int, minimumSide: Int = 1) throws {
        guard width >= minimumSide, height >= minimumSide, let count = checkedProduct([width, height, 3]), a.count == count, b.count == count else {
            throw KernelError.invalidParameter(op: "image metrics", name: "images",
                                               value: "\(a.count) and \(b.count) values for \(width)×\(height)×3 (each side at least \(minimumSide))")
        }
        guard a.allSatisfy(\.isFinite), b.allSatisfy(\.isFinite) else {
            throw KernelError.invalidParameter(op: "image metrics", name: "images", value: "a value is not finite")
        }
    }

    /// Mean squared error over all pixels and channels (float64 accumulation).
    public static func meanSquaredError(_ a: [Float], _ b: [Float], width: Int, height: Int) throws -> Double {
        try check(a, b, width: width, height: height)
        var sum: Double = 0
        for i in a.indices { let d = Double(a[i]) - Double(b[i]); sum += d * d }
        return sum / Double(a.count)
    }

    /// PSNR in dB of `a` against `b` (width × height × 3, rows first, values in [0, 1]):
    /// −10·log10(MSE); +∞ for identical images.
    public static func psnr(_ a: [Float], _ b: [Float], width: Int, height: Int) throws -> Double {
        let mse = try meanSquaredError(a, b, width: width, height: height)
        return mse > 0 ? -10 * log10(mse) : .infinity
    }

    /// Side of the SSIM window and its Gaussian's standard deviation (Wang et al. 2004).
    public static let ssimWindow = 11
    public static let ssimSigma = 1.5

    /// The normalised 1-D Gaussian of the SSIM window (the 2-D window is its outer product).
    static let ssimKernel: [Double] = {
        let half = ssimWindow / 2
        let raw = (0..<ssimWindow).map { exp(-Double(($0 - half) * ($0 - half)) / (2 * ssimSigma * ssimSigma)) }
        let total = raw.reduce(0, +)
        return raw.map { $0 / total }
    }()

    /// SSIM (Wang et al. 2004) of `a` against `b` (width × height × 3, values in [0, 1]): per channel, local
    /// means, variances and covariance under an 11×11 Gaussian window (σ = 1.5), over the windows that fit
    /// inside the image ("valid" filtering, as the NeRF evaluations of mip-NeRF / nerfstudio / torchmetrics
    /// compute it), with C1 = (0.01)², C2 = (0.03)² for a data range of 1; the mean over windows and the
    /// three channels. Both images need sides of at least 11 pixels. Filtering is separable, in float64.
    public static func ssim(_ a: [Float], _ b: [Float], width: Int, height: Int) throws -> Double {
        try check(a, b, width: width, height: height, minimumSide: ssimWindow)
        let k = ssimKernel, w = ssimWindow
        let outW = width - w + 1, outH = height - w + 1
        let c1 = 0.01 * 0.01, c2 = 0.03 * 0.03
        var total: Double = 0
        // Five filtered planes per channel: x, y, x², y², xy.
        var rows = [Double](repeating: 0, count: 5 * outW * height)
        for channel in 0..<3 {
            // Horizontal pass.
            for y in 0..<height {
                let base = y * width
                for x in 0..<outW {
                    var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, s4 = 0.0
                    for t in 0..<w {
                        let p = Double(a[3 * (base + x + t) + channel]), q = Double(b[3 * (base + x + t) + channel])
                        let g = k[t]
                        s0 += g * p; s1 += g * q; s2 += g * p * p; s3 += g * q * q; s4 += g * p * q
                    }
                    let o = y * outW + x
                    rows[o] = s0; rows[outW * height + o] = s1; rows[2 * outW * height + o] = s2
                    rows[3 * outW * height + o] = s3; rows[4 * outW * height + o] = s4
                }
            }
            // Vertical pass and the SSIM map.
            let plane = outW * height
            for y in 0..<outH {
                for x in 0..<outW {
                    var m = (0.0, 0.0, 0.0, 0.0, 0.0)
                    for t in 0..<w {
                        let o = (y + t) * outW + x, g = k[t]
                        m.0 += g * rows[o]; m.1 += g * rows[plane + o]; m.2 += g * rows[2 * plane + o]
                        m.3 += g * rows[3 * plane + o]; m.4 += g * rows[4 * plane + o]
                    }
                    let (mx, my) = (m.0, m.1)
                    let vx = m.2 - mx * mx, vy = m.3 - my * my, cov = m.4 - mx * my
                    total += (2 * mx * my + c1) * (2 * cov + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
                }
            }
        }
        return total / Double(3 * outW * outH)
    }
}
