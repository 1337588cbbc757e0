import Foundation
@testable import VulkanKernels
import XCTest

/// Loading captures for training: images (PNG with alpha, JPEG), downscaling, holdout, bad captures.
final class NeRFDatasetTests: XCTestCase {
    var folder: String!

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "vkk-dataset-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    /// A w×h RGBA PNG whose pixel (x, y) is (x·16, y·16, 200, alpha(x, y)).
    func writePNG(_ name: String, width: Int = 8, height: Int = 6, alpha: (Int, Int) -> UInt8 = { _, _ in 255 }) throws {
        var pixels: [UInt8] = []
        for y in 0..<height { for x in 0..<width { pixels += [UInt8(x * 16), UInt8(y * 16), 200, alpha(x, y)] } }
        try PNG.write8(pixels, width: width, height: height, channels: 4, to: folder + "/" + name)
    }

    func writeTransforms(_ frames: [String], width: Int = 8, height: Int = 6, extra: String = "", matrix: String? = nil) throws {
        let pose = matrix ?? "[[1,0,0,0],[0,1,0,0],[0,0,1,3],[0,0,0,1]]"
        let list = frames.map { "{\"file_path\": \"\($0)\", \"transform_matrix\": \(pose)}" }.joined(separator: ",")
        let json = "{\"fl_x\": 10, \"fl_y\": 10, \"w\": \(width), \"h\": \(height)\(extra), \"frames\": [\(list)]}"
        try json.write(toFile: folder + "/transforms.json", atomically: true, encoding: .utf8)
    }

    func testPNGAlphaIsPremultipliedAndDownscaledAsABoxFilter() throws {
        try writePNG("a.png") { x, _ in x % 2 == 0 ? 255 : 0 }
        let image = try TrainingImageFile.read(folder + "/a.png")
        XCTAssertTrue(image.hasAlpha)
        XCTAssertEqual(image.premultiplied(x: 2, y: 1), SIMD4(32, 16, 200, 255) / 255)
        XCTAssertEqual(image.premultiplied(x: 3, y: 1), SIMD4(0, 0, 0, 0))   // transparent: premultiplied to zero
        // Over a background, a transparent pixel is the background.
        XCTAssertEqual(image.colour(x: 3, y: 1, over: SIMD3(0.25, 0.5, 1)), SIMD3(0.25, 0.5, 1))
        let half = try image.downscaled(by: 2)
        XCTAssertEqual(half.width, 4); XCTAssertEqual(half.height, 3)
        // Block (x 2…3, y 0…1): premultiplied mean of (32, 0|16, 200, 255) and zeros = (16, 4, 100, 127.5) → rounded.
        let p = half.premultiplied(x: 1, y: 0) * 255
        XCTAssertEqual(p, SIMD4(16, 4, 100, 128))
        let third = try image.downscaled(by: 3)
        XCTAssertEqual(third.width, 2); XCTAssertEqual(third.height, 2)   // 8/3 and 6/3: partial blocks dropped
        XCTAssertThrowsError(try image.downscaled(by: 9))
    }

    func testLoadSplitsHoldoutDownscalesCamerasAndReportsMissingImages() throws {
        for i in [0, 1, 2, 4, 5] { try writePNG("r_\(i).png") }
        try FileManager.default.createDirectory(atPath: folder + "/r_6.png", withIntermediateDirectories: true)   // not a file
        try Data([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]).write(to: URL(fileURLWithPath: folder + "/r_7.png"))   // truncated
        try writeTransforms((0..<8).map { "r_\($0)" })   // r_3 is missing
        let dataset = try TrainingDataset.load(transforms: folder + "/transforms.json", downscale: 2, holdout: .every(4))
        XCTAssertEqual(dataset.heldOut.map(\.frameIndex), [0, 4])
        XCTAssertEqual(dataset.training.map(\.frameIndex), [1, 2, 5])
        XCTAssertEqual(dataset.skippedFrames.map(\.name), ["r_3", "r_6", "r_7"])
        XCTAssertTrue(dataset.skippedFrames[2].reason.contains("r_7.png"), dataset.skippedFrames[2].reason)
        let camera = dataset.training[0].camera
        XCTAssertEqual(camera.width, 4); XCTAssertEqual(camera.height, 3)
        XCTAssertEqual(camera.focalX, 5); XCTAssertEqual(camera.principalX, 2); XCTAssertEqual(camera.principalY, 1.5)
        XCTAssertEqual(dataset.training[0].image.width, 4)
    }

    func testBadCapturesGiveClearErrors() throws {
        // Image size disagreeing with the file's intrinsics.
        try writePNG("big.png", width: 10, height: 6)
        try writeTransforms(["big.png"])
        XCTAssertThrowsError(try TrainingDataset.load(transforms: folder + "/transforms.json")) {
            XCTAssertTrue("\($0)".contains("big.png") && "\($0)".contains("10×6"), "\($0)")
        }
        // Non-finite pose (1e39 overflows float).
        try writePNG("ok.png")
        try writeTransforms(["ok.png"], matrix: "[[1,0,0,1e39],[0,1,0,0],[0,0,1,3],[0,0,0,1]]")
        XCTAssertThrowsError(try TrainingDataset.load(transforms: folder + "/transforms.json")) {
            XCTAssertTrue("\($0)".contains("finite"), "\($0)")
        }
        // Empty frames list.
        try "{\"fl_x\": 10, \"w\": 8, \"h\": 6, \"frames\": []}".write(toFile: folder + "/transforms.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try TrainingDataset.load(transforms: folder + "/transforms.json")) {
            XCTAssertTrue("\($0)".contains("frames"), "\($0)")
        }
        // Every image missing.
        try writeTransforms(["nothing_here.png", "nor_here.jpg"])
        XCTAssertThrowsError(try TrainingDataset.load(transforms: folder + "/transforms.json")) {
            XCTAssertTrue("\($0)".contains("no usable training image") && "\($0)".contains("nothing_here.png"), "\($0)")
        }
        // Not a regular file, not an image, a broken JPEG: errors name the file.
        XCTAssertThrowsError(try TrainingImageFile.read(folder)) { XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)") }
        try Data("hello".utf8).write(to: URL(fileURLWithPath: folder + "/text.png"))
        XCTAssertThrowsError(try TrainingImageFile.read(folder + "/text.png")) { XCTAssertTrue("\($0)".contains("text.png"), "\($0)") }
        try Data([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 2, 3, 4, 5]).write(to: URL(fileURLWithPath: folder + "/bad.jpg"))
        XCTAssertThrowsError(try TrainingImageFile.read(folder + "/bad.jpg")) {
            XCTAssertTrue("\($0)".contains("bad.jpg") && "\($0)".contains("JPEG"), "\($0)")
        }
        XCTAssertThrowsError(try HoldoutSplit(parsing: "every:1"))
        XCTAssertEqual(try HoldoutSplit(parsing: "every:8"), .every(8))
    }

    /// The real instant-ngp fox capture: JPEG through libjpeg-turbo, lens distortion on the cameras.
    func testFoxCaptureLoadsJPEGsWithDistortion() throws {
        let path = sharedDataDirectory().appendingPathComponent("nerf_scenes/instant_ngp_fox/transforms.json").path
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("\(path) is absent; fox not loaded") }
        let image = try TrainingImageFile.read(sharedDataDirectory().appendingPathComponent("nerf_scenes/instant_ngp_fox/images/0001.jpg").path)
        XCTAssertEqual(image.width, 1080); XCTAssertEqual(image.height, 1920)
        XCTAssertFalse(image.hasAlpha)
        // The first 5 frames (a debug build decodes and box-filters 2 Mpixel images slowly), read through a
        // copy of the file beside a link to the image folder.
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        var trimmed = root
        trimmed["frames"] = Array((root["frames"] as! [Any]).prefix(5))
        try JSONSerialization.data(withJSONObject: trimmed).write(to: URL(fileURLWithPath: folder + "/transforms.json"))
        try FileManager.default.createSymbolicLink(atPath: folder + "/images",
                                                   withDestinationPath: (path as NSString).deletingLastPathComponent + "/images")
        let dataset = try TrainingDataset.load(transforms: folder + "/transforms.json", downscale: 8, holdout: .every(4))
        XCTAssertEqual(dataset.training.map(\.frameIndex), [1, 2, 3])
        XCTAssertEqual(dataset.heldOut.map(\.frameIndex), [0, 4])
        XCTAssertEqual(dataset.aabbScale, 4)
        XCTAssertTrue(dataset.skippedFrames.isEmpty)
        let view = dataset.training[0]
        XCTAssertEqual(view.image.width, 135); XCTAssertEqual(view.image.height, 240)
        XCTAssertEqual(view.camera.distortion.k1, 0.0578421, accuracy: 1e-7)
        // The corner pixel's ray goes through the undistorted point (not the pinhole one).
        let ray = view.camera.ray(u: 0.5, v: 0.5)
        let pinhole = Camera(width: 135, height: 240, focalX: view.camera.focalX, focalY: view.camera.focalY,
                             principalX: view.camera.principalX, principalY: view.camera.principalY, cameraToWorld: view.camera.cameraToWorld)
        XCTAssertGreaterThan(length(ray.direction - pinhole.ray(u: 0.5, v: 0.5).direction), 1e-3)
    }
}
