@testable import VulkanKernels
import XCTest

final class NeRFVoxelGridTests: XCTestCase {
    static func randomSamples(_ count: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).flatMap { _ -> [Float] in
            // Positions a little beyond the box too (those must give zero).
            let p = (0..<3).map { _ in Float.random(in: -1.1..<1.1, using: &generator) }
            let d = normalized(SIMD3((0..<3).map { _ in Float.random(in: -1..<1, using: &generator) }))
            return p + [0, d.x, d.y, d.z, 0]
        }
    }

    /// The Vulkan kernel and the CPU evaluator agree point by point. Both interpolate 8 vertices and sum
    /// 9 SH terms in fp32 from values of magnitude ≲ 5000 (density) or ≲ 3 (colour): 1e-5 relative.
    func testVoxelGridCPUEqualsVulkan() throws {
        let field = BuiltInScene.spheres.makeField()
        let grid = try VoxelGridField.bake(field, resolution: 16, directions: 24, on: Backends.cpu)
        let samples = Self.randomSamples(4000, seed: 3)
        let cpu = grid.evaluate(samples: samples)
        try onVulkan { context in
            let gpu = try grid.evaluate(samples: samples, on: context)
            var worst: Float = 0
            for i in cpu.indices { worst = max(worst, abs(cpu[i] - gpu[i]) / max(1, abs(cpu[i]))) }
            XCTAssertLessThan(worst, 1e-5)
            XCTAssert(cpu.enumerated().contains { $0.offset % 4 == 3 && $0.element > 1 }, "no sample inside a sphere")
        }
    }

    /// Baked on either backend, the same grid (the analytic field's CPU and GPU evaluators agree to fp32).
    func testBakeOnVulkanMatchesBakeOnCPU() throws {
        let field = BuiltInScene.cloud.makeField()
        let cpu = try VoxelGridField.bake(field, resolution: 12, directions: 16, on: Backends.cpu)
        try onVulkan { context in
            let gpu = try VoxelGridField.bake(field, resolution: 12, directions: 16, on: context)
            for i in cpu.values.indices { XCTAssertEqual(cpu.values[i], gpu.values[i], accuracy: 1e-4 * max(1, abs(cpu.values[i]))) }
        }
    }

    /// At the vertices, the grid reproduces the baked field: the density exactly, and a colour without
    /// view dependence (the cloud's) to the SH fit's accuracy.
    func testBakedGridReproducesFieldAtVertices() throws {
        let field = BuiltInScene.cloud.makeField()
        let n = 9
        let grid = try VoxelGridField.bake(field, resolution: n, directions: 16, on: Backends.cpu)
        var samples: [Float] = []
        for z in 0..<n { for y in 0..<n { for x in 0..<n {
            let p = -1 + 2 * SIMD3(Float(x), Float(y), Float(z)) / Float(n - 1)
            samples += [p.x, p.y, p.z, 0, 0.6, 0, 0.8, 0]
        } } }
        let expected = field.evaluate(samples: samples), got = grid.evaluate(samples: samples)
        for i in stride(from: 0, to: expected.count, by: 4) {
            XCTAssertEqual(got[i + 3], expected[i + 3], accuracy: 1e-4 * max(1, expected[i + 3]))
            for c in 0..<3 { XCTAssertEqual(got[i + c], expected[i + c], accuracy: 1e-3) }
        }
    }

    /// A baked grid renders like the field it came from (coarse: 48³ vertices, so only roughly).
    func testBakedGridRendersLikeItsField() {
        onEveryBackend { context in
            let field = BuiltInScene.cloud.makeField()
            let grid = try VoxelGridField.bake(field, resolution: 48, directions: 16, on: context)
            var options = RenderOptions()
            options.occupancy.resolution = 32
            options.occupancy.levels = 2
            let camera = Camera.orbit(frame: 0, of: 1, width: 24, height: 24)
            let renderer = Renderer(context: context)
            let a = try renderer.render(field: field, camera: camera, options: options)
            let b = try renderer.render(field: grid, camera: camera, options: options)
            XCTAssertGreaterThan(psnr(a.rgb, b.rgb), 30)
        }
    }

    func testInvalidGridThrows() {
        let box = BuiltInScene.bounds
        XCTAssertThrowsError(try VoxelGridField(bounds: box, resolution: 1, values: []))
        XCTAssertThrowsError(try VoxelGridField(bounds: box, resolution: 2, values: [Float](repeating: 0, count: 10)))
        XCTAssertThrowsError(try VoxelGridField(bounds: box, resolution: 2, values: [Float](repeating: .nan, count: 8 * 28)))
        XCTAssertThrowsError(try VoxelGridField.bake(BuiltInScene.cloud.makeField(), resolution: 1, on: Backends.cpu))
    }
}
