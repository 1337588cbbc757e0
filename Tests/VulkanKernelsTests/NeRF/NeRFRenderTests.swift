import Foundation
@testable import VulkanKernels
import XCTest

/// The accelerated renderer against the float64 brute-force reference, on both backends.
final class NeRFRenderTests: XCTestCase {
    /// Required agreement with the 4096-step float64 reference (the bar: 40 dB, i.e. RMSE 0.01).
    static let minimumPSNR = 40.0
    static let size = 40

    /// A 64³ grid keeps the CPU-side grid builds of debug test builds short; the renderer default is 256³.
    static var options: RenderOptions {
        var options = RenderOptions()
        options.occupancy.resolution = 64
        options.occupancy.levels = 3
        options.occupancy.samplesPerAxis = 2
        return options
    }

    static let references: [BuiltInScene: RenderedImage] = {
        var result: [BuiltInScene: RenderedImage] = [:]
        for scene in BuiltInScene.allCases {
            result[scene] = ReferenceRenderer.render(field: scene.makeField(), camera: camera(), options: options, samplesPerRay: 4096)
        }
        return result
    }()

    static func camera() -> Camera { .orbit(frame: 1, of: 8, width: size, height: size) }

    func testAcceleratedRenderMatchesBruteForceReference() {
        var images: [String: [Float]] = [:]
        onEveryBackend { context in
            let renderer = Renderer(context: context)
            for scene in BuiltInScene.allCases {
                let image = try renderer.render(field: scene.makeField(), camera: Self.camera(), options: Self.options)
                let reference = Self.references[scene]!
                let value = psnr(image.rgb, reference.rgb)
                XCTAssertGreaterThanOrEqual(value, Self.minimumPSNR, "\(scene) on \(context.backendDescription)")
                XCTAssertGreaterThanOrEqual(psnr(image.opacity, reference.opacity), Self.minimumPSNR, "\(scene) opacity")
                // The scene is really there: some pixels are covered, some are not.
                XCTAssert(image.opacity.contains { $0 > 0.5 } && image.opacity.contains { $0 < 0.01 }, "\(scene)")
                if let other = images[scene.rawValue] {
                    // Same rays, same steps on both backends; fp32 evaluation differences only.
                    XCTAssertGreaterThanOrEqual(psnr(image.rgb, other), 60, "\(scene): CPU and Vulkan renders differ")
                }
                images[scene.rawValue] = image.rgb
            }
        }
    }

    func testDepthOfOpaqueShellIsItsDistance() throws {
        // The centre pixel looks straight at the big shell: expected depth ≈ camera distance − radius.
        onEveryBackend { context in
            let camera = Camera.orbit(frame: 0, of: 1, width: 9, height: 9)
            let image = try Renderer(context: context).render(field: BuiltInScene.shell.makeField(), camera: camera, options: Self.options)
            let distance = length(camera.cameraToWorld.translation)
            XCTAssertEqual(image.opacity[40], 1, accuracy: 1e-3)
            // Within the shell's half-thickness (0.025) of the outer edge region.
            XCTAssertEqual(image.depth[40], distance - 0.55, accuracy: 0.03)
        }
    }

    func testEarlyTerminationChangesImageByLessThanThreshold() {
        onEveryBackend { context in
            let renderer = Renderer(context: context)
            let field = BuiltInScene.spheres.makeField()
            var exact = Self.options
            exact.terminationThreshold = 0
            var early = Self.options
            early.terminationThreshold = 0.02
            let full = try renderer.render(field: field, camera: Self.camera(), options: exact)
            let cut = try renderer.render(field: field, camera: Self.camera(), options: early)
            // Dropped light ≤ T_stop·max(colour, background) ≤ threshold (colours and background in [0, 1]);
            // 1e-5 covers fp32 rounding of the sums.
            let worst = zip(full.rgb, cut.rgb).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(worst, early.terminationThreshold + 1e-5)
            XCTAssertGreaterThan(worst, 0, "termination had no effect: the test cannot fail")
            XCTAssertLessThan(cut.sampleCount, full.sampleCount)
        }
    }

    func testUniformMarchingWithoutGridMatchesAndCostsMore() {
        onEveryBackend { context in
            let renderer = Renderer(context: context)
            let field = BuiltInScene.shell.makeField()
            var uniform = Self.options
            uniform.skipEmptySpace = false
            let skipped = try renderer.render(field: field, camera: Self.camera(), options: Self.options)
            let dense = try renderer.render(field: field, camera: Self.camera(), options: uniform)
            XCTAssertGreaterThanOrEqual(psnr(skipped.rgb, dense.rgb), 60)
            XCTAssertGreaterThan(dense.meanSamplesPerRay(), 4 * skipped.meanSamplesPerRay())
        }
    }

    func testExponentialStepsAndSupersamplingRender() {
        onEveryBackend { context in
            var options = Self.options
            options.step = .exponential(minimum: 0.003, maximum: 0.02, ratio: 1.0 / 512)
            options.samplesPerPixel = 2
            options.background = SIMD3(0, 0, 0)
            let field = BuiltInScene.cloud.makeField()
            let image = try Renderer(context: context).render(field: field, camera: Self.camera(), options: options)
            let reference = ReferenceRenderer.render(field: field, camera: Self.camera(), options: options, samplesPerRay: 1024)
            // Coarser steps (up to 0.02 against 0.0034) in a smooth, low-density cloud: still close.
            XCTAssertGreaterThanOrEqual(psnr(image.rgb, reference.rgb), 35)
        }
    }

    func testInvalidInputThrows() {
        onEveryBackend { context in
            let renderer = Renderer(context: context)
            let field = BuiltInScene.shell.makeField()
            var options = RenderOptions()
            options.samplesPerPixel = 0
            XCTAssertThrowsError(try renderer.render(field: field, camera: Self.camera(), options: options))
            options = RenderOptions()
            options.step = .fixed(-1)
            XCTAssertThrowsError(try renderer.render(field: field, camera: Self.camera(), options: options))
            options = RenderOptions()
            options.occupancy.resolution = 100
            XCTAssertThrowsError(try renderer.render(field: field, camera: Self.camera(), options: options))
            var camera = Self.camera()
            camera.width = 0
            XCTAssertThrowsError(try renderer.render(field: field, camera: camera))
            camera = Self.camera()
            camera.distortion.k1 = .nan
            XCTAssertThrowsError(try renderer.render(field: field, camera: camera))
        }
    }
}
