import Glibc

/// Brute-force volume rendering in float64 on the CPU: the ground truth the accelerated renderer is
/// tested against.
///
/// Each ray (the same rays as ``Renderer``: pixel centres or the same sub-pixel pattern) is clipped to
/// the field's box and integrated with `samplesPerRay` uniform midpoint steps, no empty-space skipping
/// and no early termination: C = Σ Tᵢ(1 − e^(−σᵢδ))cᵢ + T·background. For the smooth analytic fields the
/// quadrature error of 4096 steps is far below what an 8-bit image shows.
public enum ReferenceRenderer {
    /// Renders `field` exactly (its float64 evaluator). `pixels` restricts the work to some pixel indices
    /// (row-major); the other pixels are left 0.
    public static func render(field: AnalyticField, camera: Camera, options: RenderOptions = RenderOptions(),
                              samplesPerRay: Int = 4096, pixels: [Int]? = nil) -> RenderedImage {
        render(bounds: field.bounds, camera: camera, options: options, samplesPerRay: samplesPerRay, pixels: pixels,
               density: { field.density(x: $0, y: $1, z: $2) }, radiance: { field.radiance($0, $1, $2, $3, $4, $5) })
    }

    /// Renders any field given as float64 functions: density(x, y, z), and (r, g, b, σ) at
    /// (x, y, z) seen along the unit direction (dx, dy, dz). Colour is computed only where σ > 0.
    public static func render(bounds: AABB, camera: Camera, options: RenderOptions = RenderOptions(), samplesPerRay: Int = 4096,
                              pixels: [Int]? = nil, density: @escaping (Double, Double, Double) -> Double,
                              radiance: @escaping (Double, Double, Double, Double, Double, Double) -> (Double, Double, Double, Double))
        -> RenderedImage {
        let count = camera.width * camera.height
        let indices = pixels ?? Array(0..<count)
        let spp = options.samplesPerPixel
        var rgb = [Float](repeating: 0, count: 3 * count)
        var opacity = [Float](repeating: 0, count: count)
        var depth = [Float](repeating: 0, count: count)
        let background = SIMD3<Double>(options.background)
        rgb.withUnsafeMutableBufferPointer { rgb in
            opacity.withUnsafeMutableBufferPointer { opacity in
                depth.withUnsafeMutableBufferPointer { depth in
                    let shared = UncheckedSendable((rgb, opacity, depth))
                    CPUParallel.forEachChunk(indices.count, costPerItem: 100 * samplesPerRay) { range in
                        let (rgb, opacity, depth) = shared.value
                        for pixel in indices[range] {
                            var c = SIMD3<Double>(repeating: 0), a = 0.0, d = 0.0
                            for s in 0..<spp {
                                let offset = RenderOptions.subpixelOffset(s)
                                let u = Double(pixel % camera.width) + Double(offset.x), v = Double(pixel / camera.width) + Double(offset.y)
                                let (colour, alpha, expected) = integrate(camera: camera, u: u, v: v, bounds: bounds, steps: samplesPerRay,
                                                                          background: background, density: density, radiance: radiance)
                                c += colour; a += alpha; d += expected
                            }
                            let scale = 1 / Double(spp)
                            rgb[3 * pixel] = Float(c.x * scale); rgb[3 * pixel + 1] = Float(c.y * scale); rgb[3 * pixel + 2] = Float(c.z * scale)
                            opacity[pixel] = Float(a * scale)
                            depth[pixel] = Float(d * scale)
                        }
                    }
                }
            }
        }
        return RenderedImage(width: camera.width, height: camera.height, rgb: rgb, opacity: opacity, depth: depth,
                             samplesPerRay: [Float](repeating: Float(samplesPerRay), count: count),
                             rayCount: indices.count * spp, sampleCount: indices.count * spp * samplesPerRay, rounds: 1, seconds: 0)
    }

    /// ``CameraDistortion/undistort(_:)`` in float64, run to convergence (≤ 50 Newton steps, |step| < 1e-15).
    static func undistort(_ xd: Double, _ yd: Double, _ lens: CameraDistortion) -> (Double, Double) {
        let (k1, k2, k3, k4) = (Double(lens.k1), Double(lens.k2), Double(lens.k3), Double(lens.k4))
        let (p1, p2) = (Double(lens.p1), Double(lens.p2))
        var x = xd, y = yd
        for _ in 0..<50 {
            let r2 = x * x + y * y
            let radial = 1 + r2 * (k1 + r2 * (k2 + r2 * (k3 + r2 * k4)))
            let slope = k1 + r2 * (2 * k2 + r2 * (3 * k3 + r2 * 4 * k4))
            let fx = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x) - xd
            let fy = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y - yd
            let jxx = radial + 2 * x * x * slope + 2 * p1 * y + 6 * p2 * x
            let jxy = 2 * x * y * slope + 2 * p1 * x + 2 * p2 * y
            let jyy = radial + 2 * y * y * slope + 6 * p1 * y + 2 * p2 * x
            let determinant = jxx * jyy - jxy * jxy
            guard abs(determinant) > 1e-300 else { break }
            let sx = (fx * jyy - fy * jxy) / determinant, sy = (fy * jxx - fx * jxy) / determinant
            x -= sx; y -= sy
            if abs(sx) + abs(sy) < 1e-15 { break }
        }
        return (x, y)
    }

    /// One ray in float64: (colour with background, opacity, expected depth).
    static func integrate(camera: Camera, u: Double, v: Double, bounds: AABB, steps: Int, background: SIMD3<Double>,
                          density: (Double, Double, Double) -> Double,
                          radiance: (Double, Double, Double, Double, Double, Double) -> (Double, Double, Double, Double))
        -> (SIMD3<Double>, Double, Double) {
        let pose = camera.cameraToWorld
        var ax = (u - Double(camera.principalX)) / Double(camera.focalX), ay = (v - Double(camera.principalY)) / Double(camera.focalY)
        if !camera.distortion.isZero { (ax, ay) = undistort(ax, ay, camera.distortion) }
        ay = -ay
        var dx = Double(pose.rotation.0.x) * ax + Double(pose.rotation.1.x) * ay - Double(pose.rotation.2.x)
        var dy = Double(pose.rotation.0.y) * ax + Double(pose.rotation.1.y) * ay - Double(pose.rotation.2.y)
        var dz = Double(pose.rotation.0.z) * ax + Double(pose.rotation.1.z) * ay - Double(pose.rotation.2.z)
        let norm = (dx * dx + dy * dy + dz * dz).squareRoot()
        dx /= norm; dy /= norm; dz /= norm
        let ox = Double(pose.translation.x), oy = Double(pose.translation.y), oz = Double(pose.translation.z)
        var near = 0.0, far = Double.infinity
        for (o, d, lo, hi) in [(ox, dx, bounds.lower.x, bounds.upper.x), (oy, dy, bounds.lower.y, bounds.upper.y),
                               (oz, dz, bounds.lower.z, bounds.upper.z)] {
            let t0 = (Double(lo) - o) / d, t1 = (Double(hi) - o) / d
            near = max(near, min(t0, t1)); far = min(far, max(t0, t1))
        }
        guard near < far else { return (background, 0, 0) }
        let dt = (far - near) / Double(steps)
        var transmittance = 1.0, depthSum = 0.0, red = 0.0, green = 0.0, blue = 0.0
        for i in 0..<steps {
            let t = near + (Double(i) + 0.5) * dt
            let x = ox + t * dx, y = oy + t * dy, z = oz + t * dz
            guard density(x, y, z) > 0 else { continue }
            let (r, g, b, sigma) = radiance(x, y, z, dx, dy, dz)
            let weight = transmittance * (1 - exp(-sigma * dt))
            red += weight * r; green += weight * g; blue += weight * b
            depthSum += weight * t
            transmittance *= exp(-sigma * dt)
        }
        let opacity = 1 - transmittance
        return (SIMD3(red, green, blue) + transmittance * background, opacity, opacity > 1e-6 ? depthSum / opacity : 0)
    }
}
