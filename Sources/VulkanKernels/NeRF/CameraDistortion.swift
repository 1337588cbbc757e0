/// OpenCV's radial-tangential lens distortion (the `OPENCV` camera model of COLMAP, instant-ngp and
/// nerfstudio), acting on normalised image coordinates: x = (u − cx)/fx to the right, y = (v − cy)/fy
/// down the image (OpenCV's convention, whatever the camera-space axes are).
///
///     r² = x² + y²,  radial = 1 + k1·r² + k2·r⁴ + k3·r⁶ + k4·r⁸
///     x_d = x·radial + 2·p1·x·y + p2·(r² + 2x²)
///     y_d = y·radial + p1·(r² + 2y²) + 2·p2·x·y
///
/// k4 as an r⁸ term is nerfstudio's reading of its `k4` key for perspective cameras (plain OpenCV files
/// leave it 0); OpenCV's rational model (k4..k6 in a denominator) and fisheye models are not handled —
/// the camera-file readers reject files that ask for them.
public struct CameraDistortion: Sendable, Equatable {
    public var k1: Float = 0, k2: Float = 0, k3: Float = 0, k4: Float = 0, p1: Float = 0, p2: Float = 0
    public init(k1: Float = 0, k2: Float = 0, k3: Float = 0, k4: Float = 0, p1: Float = 0, p2: Float = 0) {
        self.k1 = k1; self.k2 = k2; self.k3 = k3; self.k4 = k4; self.p1 = p1; self.p2 = p2
    }

    /// No distortion: ``Camera`` skips the model entirely (pinhole rays, bit for bit).
    public var isZero: Bool { self == CameraDistortion() }

    /// Newton iterations of ``undistort(_:)``. Newton converges quadratically from the distorted point for
    /// the mild distortion of real lenses (fox: |k1| < 0.1, 3–4 iterations reach float precision); a fixed
    /// count keeps the CPU path and generate_rays.comp on the same arithmetic.
    public static let undistortIterations = 8

    /// The distorted normalised coordinates of undistorted ones (the forward model above).
    public func distort(_ point: SIMD2<Float>) -> SIMD2<Float> {
        let x = point.x, y = point.y
        let r2 = x * x + y * y
        let radial = 1 + r2 * (k1 + r2 * (k2 + r2 * (k3 + r2 * k4)))
        return SIMD2(x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
                     y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y)
    }

    /// The undistorted point whose distortion is `distorted`: Newton's method on
    /// f(x) = distort(x) − distorted with the model's analytic 2×2 Jacobian, started at `distorted`
    /// (the idea of OpenCV's `undistortPoints` and instant-ngp's iterative undistortion; their
    /// fixed-point variant converges only linearly). A step with a singular Jacobian stops the iteration.
    /// Mirrored by `undistort` in Shaders/common/nerf_rays.glsl.
    public func undistort(_ distorted: SIMD2<Float>) -> SIMD2<Float> {
        var x = distorted.x, y = distorted.y
        for _ in 0..<Self.undistortIterations {
            let r2 = x * x + y * y
            let radial = 1 + r2 * (k1 + r2 * (k2 + r2 * (k3 + r2 * k4)))
            // d(radial)/d(r²)
            let slope = k1 + r2 * (2 * k2 + r2 * (3 * k3 + r2 * 4 * k4))
            let fx = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x) - distorted.x
            let fy = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y - distorted.y
            let jxx = radial + 2 * x * x * slope + 2 * p1 * y + 6 * p2 * x
            let jxy = 2 * x * y * slope + 2 * p1 * x + 2 * p2 * y
            let jyy = radial + 2 * y * y * slope + 6 * p1 * y + 2 * p2 * x
            let determinant = jxx * jyy - jxy * jxy
            if abs(determinant) < 1e-12 { break }
            x -= (fx * jyy - fy * jxy) / determinant
            y -= (fy * jxx - fx * jxy) / determinant
        }
        return SIMD2(x, y)
    }

    /// The six coefficients in the order generate_rays.comp takes them: k1, k2, k3, k4, p1, p2.
    var coefficients: [Float] { [k1, k2, k3, k4, p1, p2] }
}
