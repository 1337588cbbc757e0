@testable import VulkanKernels
import XCTest

final class NeRFOccupancyTests: XCTestCase {
    /// Random points and points on every primitive's densest surface: wherever density exceeds the
    /// threshold, the level-0 cell must be occupied, and every coarser level must cover its children.
    func testOccupancyGridIsConservative() {
        // Two grids with the same lattice spacing (1/64 of the box): 64³ cells × 2 intervals, and 128³
        // cells × 1 interval (the default's lattice, at half its resolution).
        var coarse = OccupancyGrid.Settings()
        coarse.resolution = 64
        coarse.levels = 3
        coarse.samplesPerAxis = 2
        var corners = OccupancyGrid.Settings()
        corners.resolution = 128
        corners.levels = 4
        corners.samplesPerAxis = 1
        onEveryBackend { context in
            for (scene, settings) in [(BuiltInScene.shell, coarse), (.cloud, coarse), (.spheres, coarse), (.shell, corners)] {
                let field = scene.makeField()
                let grid = try OccupancyGrid.build(from: field, on: context, settings: settings)
                var generator = SeededGenerator(seed: 7)
                var points: [SIMD3<Float>] = (0..<20_000).map { _ in
                    SIMD3(Float.random(in: -1..<1, using: &generator), Float.random(in: -1..<1, using: &generator),
                          Float.random(in: -1..<1, using: &generator))
                }
                for primitive in field.primitives {
                    for _ in 0..<3000 {
                        let d = normalized(SIMD3(Float.random(in: -1..<1, using: &generator), Float.random(in: -1..<1, using: &generator),
                                                 Float.random(in: -1..<1, using: &generator)))
                        let r = primitive.radius + Float.random(in: -1...1, using: &generator) * max(primitive.thickness, 0.05)
                        points.append(primitive.center + r * d)
                    }
                }
                var checked = 0
                for p in points where field.density(x: Double(p.x), y: Double(p.y), z: Double(p.z)) > Double(settings.densityThreshold) {
                    checked += 1
                    XCTAssert(grid.isOccupied(p), "\(scene): density above threshold at \(p) in an empty cell")
                }
                XCTAssertGreaterThan(checked, 1000)
                XCTAssertLessThan(grid.occupiedFraction(), 0.6, "\(scene): grid should skip something")
                for level in 1..<settings.levels {
                    let n = grid.resolution(level: level - 1)
                    for z in 0..<n { for y in 0..<n { for x in 0..<n where grid.isOccupied(level: level - 1, x: x, y: y, z: z) {
                        XCTAssert(grid.isOccupied(level: level, x: x / 2, y: y / 2, z: z / 2))
                    } } }
                }
            }
        }
    }

    func testShellSceneIsMostlyEmpty() throws {
        var settings = OccupancyGrid.Settings()
        settings.resolution = 64
        let grid = try OccupancyGrid.build(from: BuiltInScene.shell.makeField(), on: Backends.cpu, settings: settings)
        XCTAssertLessThan(grid.occupiedFraction(), 0.1)
        XCTAssertGreaterThan(grid.occupiedFraction(), 0.01)
    }
}
