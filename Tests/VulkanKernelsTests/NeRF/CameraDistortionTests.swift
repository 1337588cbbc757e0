import Foundation
@testable import VulkanKernels
import XCTest

/// Lens distortion in ray generation (CPU and generate_rays.comp) and `Camera.project`, its inverse.
final class CameraDistortionTests: XCTestCase {
    /// instant-ngp's fox (transforms.json): fl_x/fl_y/cx/cy and k1, k2, p1, p2 as stored there.
    static let foxDistortion = CameraDistortion(k1: 0.0578421, k2: -0.0805099, p1: -0.000980296, p2: 0.00015575)
    /// Stronger than any real lens in the data, with every coefficient used (k3, k4 included).
    static let strongDistortion = CameraDistortion(k1: -0.28, k2: 0.09, k3: -0.012, k4: 0.002, p1: 0.004, p2: -0.003)

    /// Fox frame 0 (images/0001.jpg) as stored: rows of its transform_matrix.
    static let foxPose = RigidTransform(rows: [[0.8926439112348871, 0.08799600283226543, 0.4420900262071262, 3.168359405609479],
                                               [0.4464189982715247, -0.03675452191179031, -0.8940689141475064, -5.4794898611466945],
                                               [-0.062425682580756266, 0.995442519072023, -0.07209178487538156, -0.9791660699008925]])
    static let foxCamera = Camera(width: 1080, height: 1920, focalX: 1375.52, focalY: 1374.49, principalX: 554.558, principalY: 965.268,
                                  cameraToWorld: foxPose, distortion: foxDistortion)

    /// Newton's fixed point in float32: |distort(undistort(p)) − p| is a few ulps of |p| ≤ 1.2 (~1e-7), and
    /// the round trip from the other side also loses the condition of the Jacobian (≤ 1.5 here).
    static let roundTripTolerance: Float = 2e-6

    func testUndistortInvertsDistort() {
        var generator = SeededGenerator(seed: 7)
        for distortion in [Self.foxDistortion, Self.strongDistortion] {
            var worst: Float = 0
            for _ in 0..<2000 {
                // The normalised image of a 1080×1920 fox frame reaches |x| ≤ 0.41, |y| ≤ 0.71.
                let p = SIMD2<Float>(Float.random(in: -0.8...0.8, using: &generator), Float.random(in: -0.8...0.8, using: &generator))
                let there = distortion.distort(distortion.undistort(p)) - p
                let back = distortion.undistort(distortion.distort(p)) - p
                worst = max(worst, abs(there.x), abs(there.y), abs(back.x), abs(back.y))
            }
            XCTAssertLessThan(worst, Self.roundTripTolerance, "\(distortion)")
        }
        // The model itself, at one point by hand: x = 0.3, y = −0.2, fox coefficients:
        // r² = 0.13, radial = 1 + 0.0578421·0.13 − 0.0805099·0.0169 = 1.006158856,
        // x_d = 0.3·radial + 2·p1·(−0.06) + p2·(0.13 + 0.18) = 0.30201357,
        // y_d = −0.2·radial + p1·(0.13 + 0.08) + 2·p2·(−0.06) = −0.20145632
        let d = Self.foxDistortion.distort(SIMD2(0.3, -0.2))
        XCTAssertEqual(d.x, 0.30201357, accuracy: 1e-6)
        XCTAssertEqual(d.y, -0.20145632, accuracy: 1e-6)
    }

    func testZeroDistortionGivesPinholeRaysExactly() {
        let camera = Camera(width: 64, height: 48, focalX: 50, focalY: 47, principalX: 30.5, principalY: 25.25, cameraToWorld: Self.foxPose)
        for y in 0..<camera.height { for x in 0..<camera.width {
            let u = Float(x) + 0.5, v = Float(y) + 0.5
            let local = SIMD3<Float>((u - camera.principalX) / camera.focalX, -(v - camera.principalY) / camera.focalY, -1)
            let pinhole = normalized(Self.foxPose.apply(direction: local))
            XCTAssertEqual(camera.ray(u: u, v: v).direction, pinhole)
        } }
        XCTAssertEqual(CameraDistortion().undistort(SIMD2(0.3, -0.7)), SIMD2(0.3, -0.7))
    }

    /// Directions hand-computed in float64 (numpy, scipy.optimize.fsolve on the OpenCV model with fox's
    /// coefficients, then R·(x, −y, −1)/‖·‖ with frame 0's rotation). The pinhole directions differ from
    /// these by 2e-3, so the tolerance (float32 rounding of a 1e3-pixel offset ≈ 1e-7 relative) tells them apart.
    func testFoxPixelsGetHandComputedDirections() {
        let expected: [(SIMD2<Float>, SIMD3<Float>)] = [
            (SIMD2(0.5, 0.5), SIMD3(-0.5753711, 0.53710193, 0.61682218)),        // top-left corner
            (SIMD2(1079.5, 1919.5), SIMD3(-0.12840586, 0.85473656, -0.50292876)), // bottom-right corner
            (SIMD2(100.5, 1500.5), SIMD3(-0.68539877, 0.67996585, -0.26052825)),
        ]
        for (pixel, direction) in expected {
            let ray = Self.foxCamera.ray(u: pixel.x, v: pixel.y)
            XCTAssertEqual(ray.origin, Self.foxPose.translation)
            for axis in 0..<3 { XCTAssertEqual(ray.direction[axis], direction[axis], accuracy: 2e-6, "\(pixel)") }
        }
    }

    /// generate_rays.comp against Camera.ray on the fox camera (scaled to 54×96) and the strong lens. The
    /// shader may contract into FMAs and its 1/x, divisions are correctly rounded only to ~2.5 ulp.
    func testVulkanRaysMatchCPURays() throws {
        try onVulkan { context in
            let renderer = Renderer(context: context)
            var strong = Self.foxCamera.resized(width: 54, height: 96)
            strong.distortion = Self.strongDistortion
            var pinhole = strong
            pinhole.distortion = CameraDistortion()
            for camera in [Self.foxCamera.resized(width: 54, height: 96), strong, pinhole] {
                let (origins, directions) = try renderer.generateRaysOnVulkan(camera: camera, bounds: BuiltInScene.bounds)
                var worst: Float = 0
                for y in 0..<camera.height { for x in 0..<camera.width {
                    let ray = camera.ray(pixelX: x, pixelY: y), r = 4 * (y * camera.width + x)
                    for axis in 0..<3 {
                        XCTAssertEqual(origins[r + axis], ray.origin[axis])
                        worst = max(worst, abs(directions[r + axis] - ray.direction[axis]))
                    }
                } }
                XCTAssertLessThan(worst, 1e-6, "\(camera.distortion)")
            }
        }
    }

    /// project(origin + t·direction(pixel)) is the pixel again, for distorted and pinhole cameras, near and far.
    func testProjectInvertsRayGeneration() {
        var strong = Self.foxCamera
        strong.distortion = Self.strongDistortion
        let lego = Camera(width: 800, height: 800, fieldOfViewX: 0.6911112070083618,
                          cameraToWorld: .lookAt(eye: SIMD3(2, -3, 1.5), target: SIMD3(0, 0, 0.2)))
        for camera in [Self.foxCamera, strong, lego] {
            var worst: Float = 0
            for y in stride(from: 0, to: camera.height, by: 37) { for x in stride(from: 0, to: camera.width, by: 23) {
                let ray = camera.ray(pixelX: x, pixelY: y)
                for t: Float in [0.1, 1, 4, 30] {
                    guard let pixel = camera.project(ray.at(t)) else { XCTFail("in front of the camera, t = \(t)"); continue }
                    worst = max(worst, abs(pixel.x - (Float(x) + 0.5)), abs(pixel.y - (Float(y) + 0.5)))
                }
            } }
            // A pixel is 1/1375 of the normalised plane; float32 position rounding at t = 30 (‖p‖ ≈ 37)
            // moves the projection by ~4e-6·f ≈ 6e-3 pixel.
            XCTAssertLessThan(worst, 0.01, "\(camera.distortion)")
            // Behind the camera and in its plane: no image point.
            let ray = camera.ray(pixelX: camera.width / 2, pixelY: camera.height / 2)
            XCTAssertNil(camera.project(ray.at(-1)))
            XCTAssertNil(camera.project(camera.cameraToWorld.translation))
        }
    }

    /// A whole frame through a strong lens: both backends against the float64 reference, which undistorts
    /// in float64 on its own; the pinhole frame of the same pose is far from it (so the lens is really applied).
    func testDistortedRenderMatchesReference() {
        var camera = Camera.orbit(frame: 3, of: 8, width: 24, height: 24)
        camera.distortion = Self.strongDistortion
        var pinhole = camera
        pinhole.distortion = CameraDistortion()
        let field = BuiltInScene.spheres.makeField()
        let options = NeRFRenderTests.options
        let reference = ReferenceRenderer.render(field: field, camera: camera, options: options, samplesPerRay: 4096)
        onEveryBackend { context in
            let renderer = Renderer(context: context)
            let image = try renderer.render(field: field, camera: camera, options: options)
            let pinholeImage = try renderer.render(field: field, camera: pinhole, options: options)
            XCTAssertLessThan(psnr(pinholeImage.rgb, reference.rgb), 30)  // ~27 dB: far below the 40 dB required
            XCTAssertGreaterThanOrEqual(psnr(image.rgb, reference.rgb), NeRFRenderTests.minimumPSNR, context.backendDescription)
        }
    }
}
