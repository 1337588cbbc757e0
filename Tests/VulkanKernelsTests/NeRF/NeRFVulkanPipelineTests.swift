import Foundation
@testable import VulkanKernels
import XCTest

/// The device-resident training step (``VulkanTrainingPipeline``, ``VulkanDensityGrid``) kernel by kernel
/// against the CPU path: march, compositing with loss and compaction, and the density-grid update.
final class NeRFVulkanPipelineTests: XCTestCase {
    /// NeRFTrainingTests' capture at aabb_scale 4: 3 cascades and a cone angle of 1/256, so that the march
    /// crosses cascades and its steps grow with distance.
    static let wideCapture = try! TrainingDataset(training: NeRFTrainingTests.capture.training, heldOut: NeRFTrainingTests.capture.heldOut,
                                                  aabbScale: 4)

    static func options(rays: Int = 256, samples: Int = 1 << 13) -> TrainingOptions {
        var options = NeRFTrainingTests.options
        options.batchRays = rays
        options.maxSamplesPerStep = samples
        options.densityGridResolution = 16
        return options
    }

    /// A grid whose cells are occupied at random (about a third of the seen ones), set on the host and
    /// uploaded, so that both backends march through the same, irregular occupancy.
    func randomGrid(_ trainer: NeRFTrainer, seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        let grid = trainer.storedGrid
        let values = grid.values.map { $0 < 0 ? $0 : (generator.unitFloat() < 0.3 ? 0.05 : 0) }
        try grid.restore(values: values, updates: 1)
        try trainer.pipeline!.grid.upload(grid)
    }

    /// Rays of every kind the march meets: through the box from outside at random directions, starting
    /// inside it, missing it, and parallel to the axes (direction components exactly 0, the slab test's
    /// infinities); jitters in [0, 1).
    func testRays(count: Int, seed: UInt64, lower: Float, upper: Float) -> (rays: [NeRFTrainer.LocalRay], jitters: [Float]) {
        var generator = SeededGenerator(seed: seed)
        func point(_ a: Float, _ b: Float) -> SIMD3<Float> {
            SIMD3(a + (b - a) * generator.unitFloat(), a + (b - a) * generator.unitFloat(), a + (b - a) * generator.unitFloat())
        }
        func normalize(_ v: SIMD3<Float>) -> SIMD3<Float> { v / (v * v).sum().squareRoot() }
        var rays: [NeRFTrainer.LocalRay] = [], jitters: [Float] = []
        for r in 0..<count {
            let size = upper - lower
            var origin: SIMD3<Float>, direction: SIMD3<Float>
            switch r % 8 {
            case 0: // starts inside the box
                origin = point(lower + 0.1 * size, upper - 0.1 * size)
                direction = normalize(point(-1, 1))
            case 1: // misses the box
                origin = SIMD3(upper + size, upper + size, lower)
                direction = SIMD3(0, 0, 1)
            case 2: // along an axis, through the box
                let p = point(lower + 0.05 * size, upper - 0.05 * size)
                origin = SIMD3(p.x, p.y, lower - size)
                direction = SIMD3(0, 0, 1)
            default: // from a sphere around the box towards a point inside it
                let centre = SIMD3<Float>(repeating: (lower + upper) / 2)
                origin = centre + normalize(point(-1, 1)) * (size * 1.5)
                direction = normalize(point(lower + 0.2 * size, upper - 0.2 * size) - origin)
            }
            rays.append(NeRFTrainer.LocalRay(origin: origin, direction: direction))
            jitters.append(generator.unitFloat())
        }
        return (rays, jitters)
    }

    /// The march places the samples the CPU path's vkk_march_ray places: per ray the same count, and the
    /// same positions, directions and step lengths, bit for bit — both evaluate the same float32
    /// operations in the same order without fused multiply-adds (the shader marks them `precise`), and
    /// lavapipe's division and floor are IEEE's. With a budget that overflows, the same prefix of rays
    /// is kept. (A device whose division is not correctly rounded — Vulkan allows 2.5 ulp — could move a
    /// sample that lands within an ulp of a cell boundary; none does here.)
    func testMarchPlacesTheSamplesTheCPUPlaces() throws {
        try onVulkan { context in
            for (dataset, budget) in [(NeRFTrainingTests.capture, 1 << 16), (Self.wideCapture, 1 << 16), (Self.wideCapture, 700)] {
                let options = Self.options(samples: budget)
                let trainer = try NeRFTrainer(context: context, dataset: dataset, configuration: NeRFTrainingTests.configuration, options: options)
                try randomGrid(trainer, seed: 3)
                let pipeline = try XCTUnwrap(trainer.pipeline)
                let (rays, jitters) = testRays(count: 200, seed: 11, lower: trainer.boxLower, upper: trainer.boxLower + dataset.aabbScale)
                var dt: [Float] = []
                let activations = HashGridActivations()
                let cpu = trainer.placeSamples(rays, jitters: jitters, maxSamples: budget, into: activations, dt: &dt)
                let zeros = [SIMD3<Float>](repeating: .zero, count: rays.count)
                let values = NeRFTrainer.rayValues(rays: rays, jitters: jitters, targets: zeros, backgrounds: zeros)
                let gpu = try pipeline.march(rays: values, maxSamples: budget)
                XCTAssertEqual(gpu.samples, cpu.total, "aabb_scale \(dataset.aabbScale), budget \(budget)")
                XCTAssertEqual(gpu.keptRays, cpu.included.filter { $0 }.count)
                let ranges = try pipeline.marchedRanges(rayCount: rays.count)
                let wrong = rays.indices.filter { r in
                    cpu.included[r] ? (Int(ranges[2 * r + 1]) != cpu.counts[r] || Int(ranges[2 * r]) != cpu.starts[r]) : ranges[2 * r + 1] != 0
                }
                XCTAssertEqual(wrong.count, 0, "rays with another (first sample, count) than the CPU's: \(wrong.prefix(8))")
                let samples = try pipeline.marchedSamples(gpu.samples)
                XCTAssertTrue(samples.positions == Array(activations.positions[0..<(3 * cpu.total)]), "positions differ")
                XCTAssertTrue(samples.directions == Array(activations.directions[0..<(3 * cpu.total)]), "directions differ")
                XCTAssertTrue(samples.dt == Array(dt[0..<cpu.total]), "step lengths differ")
                // The edge cases are there: rays without samples, rays with many, and (small budget) rays left out.
                XCTAssertTrue(cpu.counts.contains(0))
                XCTAssertGreaterThan(cpu.counts.max() ?? 0, 10)
                if budget < 1000 { XCTAssertTrue(cpu.included.contains(false)) } else { XCTAssertFalse(cpu.included.contains(false)) }
            }
        }
    }

    /// Compositing, loss and compaction on random samples against the CPU path's loop (trainStep):
    /// rays with no samples, rays whose opaque samples terminate them early, rays left out by the budget,
    /// random backgrounds (alpha images), both losses. Used counts and the compacted layout must be
    /// identical; values agree to float32 rounding: the shader's exp may differ from libm's expf by a few
    /// ulp, so α, T and every sum built from them differ by ~1e-6 relative — 1e-5 relative (with an
    /// absolute floor of 1e-9 for gradients that nearly cancel) covers that with room.
    func testCompositeLossAndCompactionMatchCPU() throws {
        try onVulkan { context in
            for (loss, compact) in [(TrainingLoss.l2, true), (.huber, true), (.huber, false)] {
                var options = Self.options()
                options.loss = loss
                options.compactBackward = compact
                let trainer = try NeRFTrainer(context: context, dataset: NeRFTrainingTests.capture, configuration: NeRFTrainingTests.configuration,
                                              options: options)
                let pipeline = try XCTUnwrap(trainer.pipeline)
                var generator = SeededGenerator(seed: 5)
                let rayCount = 150, keptRays = 130
                var counts: [Int] = [], starts: [Int] = []
                var total = 0
                for r in 0..<rayCount {
                    let n = r >= keptRays ? 0 : (r % 7 == 0 ? 0 : Int(generator.next() % 40))
                    starts.append(total); counts.append(n); total += n
                }
                let rgb = (0..<(3 * total)).map { _ in generator.unitFloat() }
                // Mostly thin samples; every 10th ray has dense ones that terminate it within a few samples.
                var sigma: [Float] = [], dt: [Float] = []
                for r in 0..<rayCount {
                    for _ in 0..<counts[r] {
                        sigma.append(r % 10 == 3 ? 200 * generator.unitFloat() : 5 * generator.unitFloat())
                        dt.append(0.01 + 0.05 * generator.unitFloat())
                    }
                }
                let targets = (0..<rayCount).map { _ in SIMD3(generator.unitFloat(), generator.unitFloat(), generator.unitFloat()) }
                let backgrounds = (0..<rayCount).map { _ in SIMD3(generator.unitFloat(), generator.unitFloat(), generator.unitFloat()) }
                let positions = (0..<(3 * total)).map { _ in generator.unitFloat() }, directions = (0..<(3 * total)).map { _ in generator.unitFloat() }
                // The device state the march would have left.
                let zeros = [NeRFTrainer.LocalRay](repeating: .init(origin: .zero, direction: .zero), count: rayCount)
                try pipeline.network.upload(NeRFTrainer.rayValues(rays: zeros, jitters: [Float](repeating: 0, count: rayCount), targets: targets,
                                                                  backgrounds: backgrounds), to: pipeline.rays)
                let ranges = (0..<rayCount).flatMap { [UInt32(starts[$0]), UInt32(counts[$0])] }
                try ranges.withUnsafeBytes { try context.upload($0, to: pipeline.rayRanges.storage) }
                try pipeline.totals.copy(from: [UInt32(total), UInt32(keptRays), 0, 0])
                let b = try pipeline.network.activations(for: total)
                try pipeline.network.upload(rgb, to: b.rgb)
                try pipeline.network.upload(sigma, to: b.sigma)
                try pipeline.network.upload(dt, to: pipeline.sampleDt)
                try pipeline.network.upload(positions, to: pipeline.samplePositions)
                try pipeline.network.upload(directions, to: pipeline.sampleDirections)
                try context.batch { try pipeline.encodeCompositeAndCompact($0, b, rayCount: rayCount, samples: total, options: options) }
                let reports = try context.download(pipeline.reports.storage, count: 4 * rayCount, as: Float.self)
                let kept = Int(try pipeline.totals.toArray()[2])

                // The CPU path: trainStep's loop, then compaction.
                var rgbGradient = [Float](repeating: 0, count: 3 * total), sigmaGradient = [Float](repeating: 0, count: total)
                var keptPositions: [Float] = [], keptDirections: [Float] = [], keptRgb: [Float] = [], keptSigma: [Float] = []
                let lossScale = 1 / Float(3 * keptRays)
                var terminatedEarly = 0
                for r in 0..<rayCount {
                    guard r < keptRays else {
                        XCTAssertEqual(reports[4 * r + 3], 0, "ray \(r) is past the budget"); continue
                    }
                    let s = starts[r], n = counts[r]
                    let result = rgb.withUnsafeBufferPointer { c in sigma.withUnsafeBufferPointer { g in dt.withUnsafeBufferPointer { d in
                        VolumeCompositing.forward(rgb: c.baseAddress! + 3 * s, sigma: g.baseAddress! + s, dt: d.baseAddress! + s, count: n,
                                                  background: backgrounds[r], threshold: options.terminationThreshold)
                    } } }
                    var colourGradient = SIMD3<Float>(repeating: 0), lossSum: Float = 0, squared: Float = 0
                    for c in 0..<3 {
                        let (l, g) = loss.evaluate(prediction: result.colour[c], target: targets[r][c])
                        lossSum += l; colourGradient[c] = g * lossScale
                        squared += (result.colour[c] - targets[r][c]) * (result.colour[c] - targets[r][c])
                    }
                    XCTAssertEqual(Int(reports[4 * r + 2]), result.used, "ray \(r): used samples")
                    XCTAssertEqual(reports[4 * r], lossSum / 3, accuracy: 1e-5 * lossSum / 3 + 1e-9, "ray \(r): loss")
                    XCTAssertEqual(reports[4 * r + 1], squared / 3, accuracy: 1e-5 * squared / 3 + 1e-9, "ray \(r): squared error")
                    if result.used < n { terminatedEarly += 1 }
                    if n > 0 {
                        rgb.withUnsafeBufferPointer { c in sigma.withUnsafeBufferPointer { g in dt.withUnsafeBufferPointer { d in
                            rgbGradient.withUnsafeMutableBufferPointer { rg in sigmaGradient.withUnsafeMutableBufferPointer { sg in
                                VolumeCompositing.backward(rgb: c.baseAddress! + 3 * s, sigma: g.baseAddress! + s, dt: d.baseAddress! + s, count: n,
                                                           result: result, colourGradient: colourGradient, rgbGradient: rg.baseAddress! + 3 * s,
                                                           sigmaGradient: sg.baseAddress! + s)
                            } }
                        } } }
                    }
                    // Without compaction every sample of a kept ray goes to the backward pass (zero gradients past
                    // the termination), as on the CPU path with compactBackward off.
                    for i in s..<(s + (compact ? result.used : n)) {
                        keptPositions += positions[(3 * i)..<(3 * i + 3)]; keptDirections += directions[(3 * i)..<(3 * i + 3)]
                        keptRgb += rgbGradient[(3 * i)..<(3 * i + 3)]; keptSigma.append(sigmaGradient[i])
                    }
                }
                XCTAssertGreaterThan(terminatedEarly, 5, "the test should terminate rays early")
                XCTAssertEqual(kept, keptSigma.count, "samples kept")
                guard kept == keptSigma.count, kept > 0 else { continue }
                let sources = try context.download(pipeline.keptSource.storage, count: kept, as: UInt32.self)
                let expectedSources = (0..<rayCount).filter { $0 < keptRays }.flatMap { r in
                    (0..<(compact ? Int(reports[4 * r + 2]) : counts[r])).map { UInt32(starts[r] + $0) }
                }
                XCTAssertEqual(sources, expectedSources, "indices of the kept samples before compaction")
                XCTAssertTrue(try context.download(pipeline.kept.positions.storage, count: 3 * kept, as: Float.self) == keptPositions, "compacted positions")
                XCTAssertTrue(try context.download(pipeline.kept.directions.storage, count: 3 * kept, as: Float.self) == keptDirections, "compacted directions")
                let gpuRgb = try context.download(pipeline.kept.rgbGradient.storage, count: 3 * kept, as: Float.self)
                let gpuSigma = try context.download(pipeline.kept.sigmaGradient.storage, count: kept, as: Float.self)
                let rgbScale = keptRgb.map(abs).max() ?? 0, sigmaScale = keptSigma.map(abs).max() ?? 0
                let badRgb = (0..<(3 * kept)).filter { abs(gpuRgb[$0] - keptRgb[$0]) > 1e-5 * abs(keptRgb[$0]) + 1e-6 * rgbScale }
                XCTAssertEqual(badRgb.count, 0, "\(loss): dL/dRGB differs at \(badRgb.prefix(5))\(badRgb.first.map { ": \(gpuRgb[$0]) vs \(keptRgb[$0])" } ?? "")")
                // dL/dσ subtracts the colour gathered so far from the total (C − Σⱼ≤ᵢ): cancellation leaves
                // the absolute error of C (~1e-6·|C|) against a small difference, hence the scale floor.
                let badSigma = (0..<kept).filter { abs(gpuSigma[$0] - keptSigma[$0]) > 1e-5 * abs(keptSigma[$0]) + 1e-5 * sigmaScale }
                XCTAssertEqual(badSigma.count, 0, "\(loss): dL/dσ differs at \(badSigma.prefix(5))\(badSigma.first.map { ": \(gpuSigma[$0]) vs \(keptSigma[$0])" } ?? "")")
            }
        }
    }

    /// The density-grid update on the device against the CPU's, from the same cells and points (the host
    /// draws them with the same generator): first a warm-up update (every cell), then one that draws among
    /// the occupied cells (the host reads the device's occupancy for that) from one shared starting grid.
    /// Values: σ comes from the device's forward pass, whose sums run in another order than the CPU's, so
    /// the density logits differ by ~1e-6 and σ = exp(logit) by ~1e-6 relative; 1e-4 relative covers
    /// it. Cells never seen stay −1 exactly. Occupancy: re-derived on the host from the device's values,
    /// it must match the device's bitfield except where a value lies within 1e-5 of the threshold (the
    /// device's fp32 mean against the host's fp64 one).
    func testDensityGridUpdateMatchesCPU() throws {
        try onVulkan { context in
            var options = Self.options()
            let dataset = Self.wideCapture, c = NeRFTrainingTests.configuration
            let cpu = try NeRFTrainer(context: Backends.cpu, dataset: dataset, configuration: c, options: options)
            let gpu = try NeRFTrainer(context: context, dataset: dataset, configuration: c, options: options)
            try cpu.updateDensityGrid()
            try gpu.updateDensityGrid()
            try compare(cpu.densityGrid, gpu, "warm-up update")
            options.densityGridWarmupSteps = 0
            let cpu2 = try NeRFTrainer(context: Backends.cpu, dataset: dataset, configuration: c, options: options)
            let gpu2 = try NeRFTrainer(context: context, dataset: dataset, configuration: c, options: options)
            let start = cpu.densityGrid.values
            try cpu2.storedGrid.restore(values: start, updates: 1)
            try gpu2.storedGrid.restore(values: start, updates: 1)
            try gpu2.pipeline!.grid.upload(gpu2.storedGrid)
            let occupiedBefore = cpu2.storedGrid.occupied.filter { $0 != 0 }.count
            XCTAssertGreaterThan(occupiedBefore, 0)
            try cpu2.updateDensityGrid()
            try gpu2.updateDensityGrid()
            try compare(cpu2.densityGrid, gpu2, "update among occupied cells")
            XCTAssertEqual(gpu2.densityGrid.updates, 2)
        }
    }

    func compare(_ cpu: TrainingDensityGrid, _ trainer: NeRFTrainer, _ what: String) throws {
        let device = try trainer.pipeline!.grid.download()
        var worst: Float = 0, changed = 0
        for i in cpu.values.indices {
            if cpu.values[i] < 0 { XCTAssertEqual(device.values[i], cpu.values[i], "\(what): unseen cell \(i)"); continue }
            if cpu.values[i] > 0 { changed += 1 }
            worst = max(worst, abs(device.values[i] - cpu.values[i]) / max(cpu.values[i], 1e-30))
        }
        XCTAssertGreaterThan(changed, cpu.values.count / 10, "\(what): the update should set many cells")
        XCTAssertLessThanOrEqual(worst, 1e-4, "\(what): values differ by \(worst) relative")
        let check = try TrainingDensityGrid(resolution: cpu.resolution, cascades: cpu.cascades, unitCube: cpu.unitCube)
        try check.restore(values: device.values, updates: 1)
        XCTAssertEqual(device.mean, check.meanThickness, accuracy: 1e-5 * check.meanThickness, "\(what): mean thickness")
        let threshold = min(TrainingDensityGrid.thicknessThreshold, check.meanThickness)
        let near = device.values.contains { abs($0 - threshold) <= 1e-5 * threshold }
        if near {
            print("\(what): a value lies within 1e-5 of the threshold; comparing cascade 0's other cells only")
            for i in 0..<(cpu.resolution * cpu.resolution * cpu.resolution) where abs(device.values[i] - threshold) > 1e-5 * threshold {
                XCTAssertEqual(device.occupied[i], check.occupied[i], "\(what): occupancy of cell \(i)")
            }
        } else {
            XCTAssertTrue(device.occupied == check.occupied, "\(what): the device's bitfield differs from its values' occupancy")
        }
        let occupied = device.occupied.filter { $0 != 0 }.count
        XCTAssertTrue(occupied > 0 && occupied < device.occupied.count, "\(what): \(occupied) cells occupied")
        // The host copy the trainer hands out is the device's.
        XCTAssertTrue(trainer.densityGrid.values == device.values && trainer.densityGrid.occupied == device.occupied)
    }

    /// Steps from a partly trained state, where rays terminate early and compaction drops samples: the
    /// CPU path trains 70 steps, both backends resume from its snapshot (the same fp32 weights, Adam state
    /// and grid) and take 2 steps on the grid they share. Sample and kept counts must be equal, the loss
    /// equal to 1e-4 relative (float32 rounding in the forward pass), and the parameters within 1e-4 (1%
    /// of the learning rate) of the CPU's: Adam's step is lr·m̂/(√v̂ + ε) with the moments carried over, so
    /// gradients equal to ~1e-4 relative (NeRFVulkanTrainingTests' tolerance) move it by ~1e-6; measured
    /// here 3.5e-7 at most, with the deterministic scatter (no run-to-run change). A gather or compaction
    /// that mixed up the kept samples' activations would move them by up to 2·lr.
    func testStepsWithEarlyTerminationEqualCPUSteps() throws {
        try onVulkan { context in
            let dataset = NeRFTrainingTests.capture, c = NeRFTrainingTests.configuration
            let options = NeRFVulkanTrainerTests.options
            let trained = try NeRFTrainer(context: Backends.cpu, dataset: dataset, configuration: c, options: options)
            for _ in 0..<70 { try trained.trainStep() }
            let snapshot = try trained.snapshot()
            let cpu = try NeRFTrainer(context: Backends.cpu, dataset: dataset, configuration: c, options: options)
            let gpu = try NeRFTrainer(context: context, dataset: dataset, configuration: c, options: options, scatterMethod: .deterministic)
            try cpu.resume(from: snapshot)
            try gpu.resume(from: snapshot)
            XCTAssertTrue(gpu.densityGrid.occupied == cpu.densityGrid.occupied)
            for k in 0..<2 {
                let a = try cpu.trainStep(updatingGrid: false), b = try gpu.trainStep(updatingGrid: false)
                XCTAssertEqual(a.samples, b.samples, "step \(k)")
                XCTAssertEqual(a.usedSamples, b.usedSamples, "step \(k)")
                XCTAssertLessThan(a.usedSamples, a.samples, "step \(k): no ray terminated early")
                XCTAssertEqual(a.loss, b.loss, accuracy: 1e-4 * a.loss, "step \(k)")
            }
            let p = cpu.network.parameters, q = gpu.network.parameters
            let worst = p.indices.map { abs(p[$0] - q[$0]) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, 1e-4, "parameters after 2 steps differ by up to \(worst)")
        }
    }

    /// The occupancy threshold on a grid like an untrained field's: 2 cascades of 128³ whose values all lie
    /// within 1e-5 relative of 0.00169 (lego's first update), so that the mean decides every cell. The
    /// device's compensated fp32 mean must be within 2 ulp (2.4e-7 relative) of the fp64 mean, and the
    /// occupied count within 1% of the cells of the host's (the cells within a few ulp of the mean may
    /// go either way); a plain fp32 sum was 7e-5 off and left almost no cell occupied.
    func testOccupancyThresholdOfANearlyUniformGrid() throws {
        try onVulkan { context in
            let network = try VulkanTrainingNetwork(network: try HashGridNetwork.initialized(configuration: NeRFTrainingTests.configuration, seed: 1),
                                                    context: context)
            let unitCube = AABB(lower: SIMD3(repeating: 0), upper: SIMD3(repeating: 1))
            let host = try TrainingDensityGrid(resolution: 128, cascades: 2, unitCube: unitCube)
            var generator = SeededGenerator(seed: 9)
            let values = (0..<host.values.count).map { _ in Float(0.0016914) * (1 + 1e-5 * (2 * generator.unitFloat() - 1)) }
            try host.restore(values: values, updates: 1)
            let device = try VulkanDensityGrid(grid: host, context: context)
            try context.batch { try device.encodeOccupancy($0, network: network) }
            let state = try device.download()
            XCTAssertEqual(state.mean, host.meanThickness, accuracy: 2.4e-7 * host.meanThickness)
            let a = host.occupied.filter { $0 != 0 }.count, b = state.occupied.filter { $0 != 0 }.count
            XCTAssertGreaterThan(a, host.values.count / 4, "about half the cells should be above the mean")
            XCTAssertEqual(Double(b), Double(a), accuracy: 0.01 * Double(host.values.count), "occupied cells: device \(b), host \(a)")
        }
    }
}
