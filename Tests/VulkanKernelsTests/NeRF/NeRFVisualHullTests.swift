import Foundation
@testable import VulkanKernels
import XCTest

/// The camera conventions against real images: the visual hull carved from NeRF-synthetic lego's 100
/// training masks (with `Camera.project`) must reproject, through the renderer's own rays, onto every
/// mask. A wrong convention (here: the camera's y axis flipped) carves a hull that matches no view.
final class NeRFVisualHullTests: XCTestCase {
    /// Alpha above this is object (the masks are anti-aliased only along the outline).
    static let alphaThreshold: Float = 0.5
    /// 128³ cells over [−1.5, 1.5]³: lego's hull spans about x ∈ [−0.65, 0.65], y ∈ [−1.2, 1.2],
    /// z ∈ [−0.35, 1.05] (checked below: the hull does not touch the box).
    static let bounds = AABB(lower: SIMD3(repeating: -1.5), upper: SIMD3(repeating: 1.5))
    /// Reprojection at 200×200 (masks box-filtered 4×4): ~1.5 ray-cells per pixel, and 100 renders fit the budget.
    static let reprojectionSize = 200
    /// Correct conventions reach ~0.93 in the worst view; a flipped y axis ~0.45.
    static let minimumIoU = 0.9, flippedMaximumIoU = 0.7

    func testLegoVisualHullReprojectsOntoEveryMask() throws {
        let folder = sharedDataDirectory().appendingPathComponent("nerf_scenes/nerf_synthetic_lego").path
        guard FileManager.default.fileExists(atPath: folder + "/train/r_0.png") else {
            throw XCTSkip("\(folder) is absent; visual hull not checked (set VKK_SHARED_DATA to a copy of shared/data)")
        }
        // The 200 reprojections use the renderer's Vulkan path; the debug-build CPU renderer would take minutes.
        guard Backends.vulkan != nil else { throw XCTSkip("no Vulkan device: the visual-hull reprojection needs one (lavapipe will do)") }
        let start = Date()
        let file = try TransformsFile.read(contentsOf: folder + "/transforms_train.json")
        XCTAssertEqual(file.frames.count, 100)
        let silhouettes = try file.frames.map { frame in
            try Silhouette(alphaOf: folder + "/" + frame.filePath! + ".png", camera: frame.camera, alphaThreshold: Self.alphaThreshold)
        }
        let references = silhouettes.map(downsampledMask)
        let loaded = Date()
        let (worst, median, hull) = try carveAndReproject(silhouettes, references: references)
        let correct = Date()
        // The hull is inside the box and is a real object (a few percent of the box).
        let occupied = hull.occupiedFraction()
        XCTAssert((0.01...0.2).contains(occupied), "hull fills \(occupied) of the box")
        let n = hull.settings.resolution
        for a in 0..<n { for b in 0..<n {
            for (x, y, z) in [(0, a, b), (n - 1, a, b), (a, 0, b), (a, n - 1, b), (a, b, 0), (a, b, n - 1)] {
                XCTAssertFalse(hull.isOccupied(level: 0, x: x, y: y, z: z), "hull touches the box at \(x), \(y), \(z)")
            }
        } }
        XCTAssertGreaterThanOrEqual(worst, Self.minimumIoU)

        // The same pipeline with every camera's y axis flipped (image upside down) must fail.
        let flipped = try silhouettes.map { view in
            var camera = view.camera
            camera.cameraToWorld.rotation.1 = -camera.cameraToWorld.rotation.1
            return try Silhouette(camera: camera, mask: view.mask)
        }
        let (flippedWorst, flippedMedian, _) = try carveAndReproject(flipped, references: references)
        XCTAssertLessThan(flippedMedian, Self.flippedMaximumIoU)
        let end = Date()
        print("lego visual hull 128³ (\(formatted(occupied * 100)) % of the box): silhouette IoU worst \(formatted(worst)), median "
              + "\(formatted(median)); y flipped: worst \(formatted(flippedWorst)), median \(formatted(flippedMedian)); "
              + "load \(formatted(loaded.timeIntervalSince(start))) s, carve + reproject \(formatted(correct.timeIntervalSince(loaded))) s, "
              + "flipped \(formatted(end.timeIntervalSince(correct))) s")
    }

    private func formatted(_ value: Double) -> String { String(Double(Int((value * 1000).rounded())) / 1000) }

    /// Carves the 128³ hull, renders it from every view and returns the worst and median silhouette IoU.
    ///
    /// The renderer draws the hull as a field of constant density 10⁴ (a 2³ voxel grid) whose occupancy
    /// grid is the hull: its ray marcher places samples only in occupied cells, so a pixel's opacity is
    /// ~1 exactly when its ray (generate_rays, the library's rays) crosses the hull.
    /// The mask at the reprojection size: a pixel is in when more than half of its 4×4 block is.
    private func downsampledMask(_ view: Silhouette) -> [Bool] {
        let size = Self.reprojectionSize, factor = view.camera.width / size, width = view.camera.width
        return view.mask.withUnsafeBufferPointer { mask in
            (0..<(size * size)).map { pixel in
                let x = pixel % size, y = pixel / size
                var covered = 0
                for dy in 0..<factor { for dx in 0..<factor where mask[(y * factor + dy) * width + x * factor + dx] { covered += 1 } }
                return 2 * covered > factor * factor
            }
        }
    }

    private func carveAndReproject(_ silhouettes: [Silhouette], references: [[Bool]]) throws -> (worst: Double, median: Double, hull: OccupancyGrid) {
        var settings = OccupancyGrid.Settings()
        settings.resolution = 128
        settings.levels = 4
        let hull = try OccupancyGrid.visualHull(of: silhouettes, bounds: Self.bounds, settings: settings)
        let floats = VoxelGridField.floatsPerVertex
        let solid = try VoxelGridField(name: "hull", bounds: Self.bounds, resolution: 2,
                                       values: (0..<(8 * floats)).map { $0 % floats == 0 ? 1e4 : 0 })
        let renderer = Renderer(context: Backends.vulkan!)
        renderer.setOccupancyGrid(hull, for: solid)
        var options = RenderOptions()
        options.occupancy = settings
        let size = Self.reprojectionSize
        var scores: [Double] = []
        for (view, reference) in zip(silhouettes, references) {
            let image = try renderer.render(field: solid, camera: view.camera.resized(width: size, height: size), options: options)
            var intersection = 0, union = 0
            for (inMask, opacity) in zip(reference, image.opacity) {
                let inHull = opacity > 0.5
                if inMask && inHull { intersection += 1 }
                if inMask || inHull { union += 1 }
            }
            scores.append(union == 0 ? 0 : Double(intersection) / Double(union))
        }
        let sorted = scores.sorted()
        return (sorted[0], sorted[sorted.count / 2], hull)
    }
}
