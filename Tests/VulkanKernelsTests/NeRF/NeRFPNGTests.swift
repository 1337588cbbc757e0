import Foundation
@testable import VulkanKernels
import XCTest

final class NeRFPNGTests: XCTestCase {
    func testPNGRoundTripsThroughLibpng() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vkk-png-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let rgb: [UInt8] = (0..<(5 * 3 * 3)).map { UInt8(($0 * 37) % 256) }
        try PNG.write8(rgb, width: 5, height: 3, channels: 3, to: directory + "/rgb.png")
        let read = try PNG.read(directory + "/rgb.png")
        XCTAssertEqual(read.width, 5); XCTAssertEqual(read.height, 3); XCTAssertEqual(read.channels, 3)
        XCTAssertEqual(read.values, rgb.map(UInt16.init))
        let depth: [UInt16] = [0, 1, 1000, 65535, 4242, 7]
        try PNG.write16(depth, width: 3, height: 2, to: directory + "/depth.png")
        let readDepth = try PNG.read(directory + "/depth.png")
        XCTAssertEqual(readDepth.bitDepth, 16)
        XCTAssertEqual(readDepth.values, depth)
        XCTAssertThrowsError(try PNG.write8([1, 2], width: 5, height: 3, channels: 3, to: directory + "/bad.png"))
        XCTAssertThrowsError(try PNG.write8(rgb, width: 5, height: 3, channels: 3, to: "/nonexistent-dir/x.png"))
        XCTAssertThrowsError(try PNG.read(directory + "/missing.png"))
    }

    func testRenderedImageWritesColourDepthAndAlpha() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vkk-png2-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = RenderOptions()
        options.occupancy.resolution = 32
        let camera = Camera.orbit(frame: 0, of: 1, width: 16, height: 12)
        let image = try Renderer(context: Backends.cpu).render(field: BuiltInScene.shell.makeField(), camera: camera, options: options)
        try PNG.write(image, to: directory + "/c.png")
        try PNG.writeDepth(image, to: directory + "/d.png")
        try PNG.writeDepthPreview(image, to: directory + "/p.png")
        try PNG.writeWithAlpha(image, background: options.background, to: directory + "/a.png")
        let depth = try PNG.read(directory + "/d.png")
        // Centre pixel: the big shell, ≈ 2.45 world units away → ≈ 2450 in 1/1000 units.
        let centre = 6 * 16 + 8
        XCTAssertEqual(Double(depth.values[centre]), Double(image.depth[centre] * 1000), accuracy: 1)
        XCTAssertEqual(try PNG.read(directory + "/a.png").channels, 4)
        XCTAssertEqual(try PNG.read(directory + "/p.png").channels, 3)
    }
}
