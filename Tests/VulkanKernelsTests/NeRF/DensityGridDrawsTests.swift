import Foundation
@testable import VulkanKernels
import XCTest

/// The density-grid update's counter-based draws (``DensityGridDraws``): the device's
/// train_density_draws makes exactly the CPU path's draws, and the draws have the distribution the
/// update needs.
final class DensityGridDrawsTests: XCTestCase {
    /// A Vulkan trainer on NeRFVulkanPipelineTests' wide capture (3 cascades of 16³) whose grid has about a
    /// third of its seen cells occupied at random, set on the host and uploaded.
    func trainer(_ context: ComputeContext) throws -> NeRFTrainer {
        let trainer = try NeRFTrainer(context: context, dataset: NeRFVulkanPipelineTests.wideCapture, configuration: NeRFTrainingTests.configuration,
                                      options: NeRFVulkanPipelineTests.options())
        var generator = SeededGenerator(seed: 9)
        let grid = trainer.storedGrid
        try grid.restore(values: grid.values.map { $0 < 0 ? $0 : (generator.unitFloat() < 0.3 ? 0.05 : 0) }, updates: 1)
        try trainer.pipeline!.grid.upload(grid)
        return trainer
    }

    /// For warm-up and later updates, two seeds and two steps: the device's cells are the CPU's (the
    /// draws it drops: none found, unseen, outside the field's box) and its points the CPU's points in the
    /// field's unit cube, bit for bit (integer hashes; the points' float operations in the same order
    /// without fused multiply-adds, divisions by powers of two and lavapipe's IEEE division).
    func testDeviceDrawsEqualCPUDraws() throws {
        try onVulkan { context in
            let trainer = try trainer(context)
            let grid = trainer.storedGrid, device = trainer.pipeline!.grid, network = trainer.pipeline!.network
            let bounds = trainer.dataset.bounds
            for (seed, step, warmup) in [(UInt64(1337), 3, true), (1337, 300, false), (0xDEAD_BEEF_0000_0007, 301, false)] {
                let draws = DensityGridDraws(seed: seed, step: step, resolution: grid.resolution, cascades: grid.cascades, warmup: warmup)
                let n = draws.count
                let cells = try context.zeros(UInt32.self, shape: [n]), positions = try context.zeros(Float.self, shape: [n, 3])
                try context.batch { batch in
                    try device.encodeDraws(batch, draws, unitCube: grid.unitCube, bounds: bounds, begin: 0, count: n, cells: cells,
                                           positions: positions, network: network)
                }
                let gpuCells = try cells.toArray(), gpuPositions = try positions.toArray()
                let cpu = grid.updateSamples(step: step, warmupSteps: warmup ? step + 1 : 0, seed: seed)
                var expectedCells: [UInt32] = [], expectedPositions: [Float] = []
                for k in cpu.indices.indices {
                    let p = SIMD3(cpu.positions[3 * k], cpu.positions[3 * k + 1], cpu.positions[3 * k + 2])
                    let x = (p - bounds.lower) / bounds.size
                    guard all(x .>= 0) && all(x .<= 1) else { continue }
                    expectedCells.append(UInt32(cpu.indices[k]))
                    expectedPositions += [x.x, x.y, x.z]
                }
                let kept = gpuCells.indices.filter { gpuCells[$0] != 0xFFFF_FFFF }
                XCTAssertEqual(kept.map { gpuCells[$0] }, expectedCells, "seed \(seed), step \(step): cells")
                let keptPositions = kept.flatMap { gpuPositions[(3 * $0)..<(3 * $0 + 3)] }
                XCTAssertTrue(keptPositions.map(\.bitPattern) == expectedPositions.map(\.bitPattern), "seed \(seed), step \(step): points")
                XCTAssertTrue(gpuPositions.allSatisfy(\.isFinite))
                // Some draws of each kind are dropped here (unseen cells; outside the box; misses among occupied cells).
                XCTAssertGreaterThan(expectedCells.count, n / 4, "seed \(seed), step \(step)")
                XCTAssertLessThan(expectedCells.count, n, "seed \(seed), step \(step)")
            }
        }
    }

    /// After warm-up, per cascade, the first quarter of the draws are uniform over the cascade's cells and
    /// the second quarter lands only on occupied cells (a miss when 10 tries find none). Uniformity: over
    /// 64 updates of a 16³ grid (65,536 uniform draws per cascade, 16 expected per cell) the counts of the
    /// cells must pass a χ² test with 4095 degrees of freedom at about 5σ (4095 + 5·√8190 ≈ 4548); occupied
    /// draws: with a third of the cells occupied, 10 tries miss with probability (2/3)^10 ≈ 1.7%, so the
    /// misses must be 0.5–4%. Two updates (steps) and two seeds draw different cells.
    func testDrawsAreUniformAndOccupiedDrawsHitOccupiedCells() {
        let resolution = 16, cascades = 2, perCascade = resolution * resolution * resolution
        var generator = SeededGenerator(seed: 4)
        let occupied = (0..<(cascades * perCascade)).map { _ in generator.unitFloat() < 1.0 / 3.0 }
        var counts = [Int](repeating: 0, count: cascades * perCascade)
        var misses = 0, occupiedDraws = 0
        for step in 0..<64 {
            let draws = DensityGridDraws(seed: 1337, step: step, resolution: resolution, cascades: cascades, warmup: false)
            XCTAssertEqual(draws.count, cascades * perCascade / 2)
            for d in 0..<draws.count {
                let cascade = d / (perCascade / 2), uniform = d % (perCascade / 2) < perCascade / 4
                let cell = draws.cell(d, occupied: { occupied[$0] })
                if uniform {
                    let c = try! XCTUnwrap(cell)
                    XCTAssertEqual(c / perCascade, cascade)
                    counts[c] += 1
                } else {
                    occupiedDraws += 1
                    if let c = cell { XCTAssertTrue(occupied[c] && c / perCascade == cascade) } else { misses += 1 }
                }
                let j = draws.jitter(d)
                XCTAssertTrue(all(j .>= 0) && all(j .< 1))
            }
        }
        for cascade in 0..<cascades {
            let expected = Double(64 * perCascade / 4) / Double(perCascade)
            let chi2 = counts[(cascade * perCascade)..<((cascade + 1) * perCascade)].reduce(0.0) { $0 + pow(Double($1) - expected, 2) / expected }
            XCTAssertLessThan(chi2, 4548, "cascade \(cascade): χ² \(chi2)")
            XCTAssertGreaterThan(chi2, 3642, "cascade \(cascade): χ² \(chi2) too regular for random draws")
        }
        let missRate = Double(misses) / Double(occupiedDraws)
        XCTAssertTrue((0.005...0.04).contains(missRate), "miss rate \(missRate)")
        let a = DensityGridDraws(seed: 1, step: 300, resolution: resolution, cascades: 1, warmup: false)
        let b = DensityGridDraws(seed: 1, step: 301, resolution: resolution, cascades: 1, warmup: false)
        let c = DensityGridDraws(seed: 2, step: 300, resolution: resolution, cascades: 1, warmup: false)
        let first = (0..<100).map { a.cell($0, occupied: { _ in true }) }
        XCTAssertNotEqual(first, (0..<100).map { b.cell($0, occupied: { _ in true }) })
        XCTAssertNotEqual(first, (0..<100).map { c.cell($0, occupied: { _ in true }) })
        XCTAssertEqual(first, (0..<100).map { a.cell($0, occupied: { _ in true }) })
    }
}
