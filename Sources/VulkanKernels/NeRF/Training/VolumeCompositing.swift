import CKernels
import Glibc

/// The photometric loss of a training ray (instant-ngp's `loss_and_gradient`).
public enum TrainingLoss: String, Sendable, CaseIterable {
    /// L = d², per channel.
    case l2
    /// Huber with δ = 0.1, divided by 5 so that its quadratic region equals L2's (instant-ngp's choice, so
    /// that loss values read as approximate PSNR): L = d²/(2δ)/5 for |d| ≤ δ, (|d| − δ/2)/5 beyond.
    case huber

    public static let huberDelta: Float = 0.1

    /// Loss and dL/d(prediction) of one channel.
    @inline(__always)
    public func evaluate(prediction: Float, target: Float) -> (loss: Float, gradient: Float) {
        let d = prediction - target
        switch self {
        case .l2: return (d * d, 2 * d)
        case .huber:
            let delta = Self.huberDelta
            if abs(d) > delta { return ((abs(d) - 0.5 * delta) / 5, (d > 0 ? 1 : -1) / 5) }
            return (0.5 / delta * d * d / 5, d / delta / 5)
        }
    }
}

/// Front-to-back compositing of one ray's samples and its exact gradient (Max 1995's emission–absorption
/// model, as instant-ngp and the renderer here evaluate it):
///
///     αᵢ = 1 − exp(−σᵢ·δᵢ),  Tᵢ = Πⱼ<ᵢ (1 − αⱼ),  C = Σᵢ Tᵢ·αᵢ·cᵢ + T_end·background
///
/// Marching stops before sample i once Tᵢ < `threshold` (early termination); later samples get no weight
/// and no gradient.
public enum VolumeCompositing {
    public struct Result: Sendable, Equatable {
        public var colour: SIMD3<Float>
        /// Transmittance left after the last used sample (what the background receives).
        public var transmittance: Float
        /// Samples composited before termination.
        public var used: Int
    }

    /// Composites `count` samples (`rgb`: 3 per sample, `sigma`, `dt`).
    @inline(__always)
    public static func forward(rgb: UnsafePointer<Float>, sigma: UnsafePointer<Float>, dt: UnsafePointer<Float>, count: Int,
                               background: SIMD3<Float>, threshold: Float) -> Result {
        var colour = SIMD3<Float>(repeating: 0), t: Float = 0
        var background = background
        let used = withUnsafeMutablePointer(to: &colour) { colour in
            withUnsafePointer(to: &background) { background in
                colour.withMemoryRebound(to: Float.self, capacity: 3) { colour in
                    background.withMemoryRebound(to: Float.self, capacity: 3) { background in
                        vkk_composite_forward(rgb, sigma, dt, Int32(count), background, threshold, colour, &t)
                    }
                }
            }
        }
        return Result(colour: colour, transmittance: t, used: Int(used))
    }

    /// Gradients of the composited colour given dL/dC (`colourGradient`): dL/dcᵢ = Tᵢαᵢ·dL/dC into
    /// `rgbGradient` (3 per sample) and dL/dσᵢ = δᵢ·(Tᵢ₊₁·cᵢ − Sᵢ)·dL/dC into `sigmaGradient`, where
    /// Sᵢ = C − Σⱼ≤ᵢ Tⱼαⱼcⱼ is everything the ray gathers behind sample i (background included).
    /// Samples past `result.used` get zero gradients.
    @inline(__always)
    public static func backward(rgb: UnsafePointer<Float>, sigma: UnsafePointer<Float>, dt: UnsafePointer<Float>, count: Int,
                                result: Result, colourGradient: SIMD3<Float>,
                                rgbGradient: UnsafeMutablePointer<Float>, sigmaGradient: UnsafeMutablePointer<Float>) {
        let colour = [result.colour.x, result.colour.y, result.colour.z]
        let gradient = [colourGradient.x, colourGradient.y, colourGradient.z]
        vkk_composite_backward(rgb, sigma, dt, Int32(count), Int32(result.used), colour, gradient, rgbGradient, sigmaGradient)
    }
}

/// dL/d(direction) of the degree-4 SH encoding (``sphericalHarmonicsDegree4``) given dL/d(each of the 16
/// coefficients): the analytic Jacobian of tiny-cuda-nn's polynomials. Training does not need it (view
/// directions are inputs, not parameters) but it completes the encoding's backward pass (tiny-cuda-nn
/// provides it for directions that depend on trained quantities).
public func sphericalHarmonicsDegree4Gradient(_ d: SIMD3<Float>, coefficientGradient g: UnsafePointer<Float>) -> SIMD3<Float> {
    let x = d.x, y = d.y, z = d.z
    let xx = x * x, yy = y * y, zz = z * z
    let c1: Float = 0.48860251190291987, c4: Float = 1.0925484305920792, c6: Float = 0.94617469575755997
    let c8: Float = 0.54627421529603959, c9: Float = 0.59004358992664352, c10: Float = 2.8906114426405538
    let c11: Float = 0.45704579946446572, c12: Float = 0.3731763325901154, c14: Float = 1.4453057213202769
    // Rows: d(SH_k)/d(x, y, z).
    var result = SIMD3<Float>(repeating: 0)
    result += g[1] * SIMD3(0, -c1, 0)
    result += g[2] * SIMD3(0, 0, c1)
    result += g[3] * SIMD3(-c1, 0, 0)
    result += g[4] * SIMD3(c4 * y, c4 * x, 0)
    result += g[5] * SIMD3(0, -c4 * z, -c4 * y)
    result += g[6] * SIMD3(0, 0, 2 * c6 * z)
    result += g[7] * SIMD3(-c4 * z, 0, -c4 * x)
    result += g[8] * SIMD3(2 * c8 * x, -2 * c8 * y, 0)
    result += g[9] * SIMD3(-6 * c9 * x * y, c9 * (3 * yy - 3 * xx), 0)
    result += g[10] * SIMD3(c10 * y * z, c10 * x * z, c10 * x * y)
    result += g[11] * SIMD3(0, c11 * (1 - 5 * zz), -10 * c11 * y * z)
    result += g[12] * SIMD3(0, 0, c12 * (15 * zz - 3))
    result += g[13] * SIMD3(c11 * (1 - 5 * zz), 0, -10 * c11 * x * z)
    result += g[14] * SIMD3(2 * c14 * x * z, -2 * c14 * y * z, c14 * (xx - yy))
    result += g[15] * SIMD3(c9 * (3 * yy - 3 * xx), 6 * c9 * x * y, 0)
    return result
}
