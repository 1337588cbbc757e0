import Foundation
@testable import VulkanKernels
import XCTest

/// Training end to end on the CPU path: a capture rendered from the built-in analytic `spheres` scene.
final class NeRFTrainingTests: XCTestCase {
    /// 20 orbit views of `spheres` at 64×64 as RGBA images (premultiplied colour = render over black,
    /// alpha = opacity); every 5th view is held out (4 views). The cameras are moved into instant-ngp's
    /// world (the scene's box [−1, 1]³ becomes the unit cube [0, 1]³), as captures are read, so that the
    /// trained field can be written as an instant-ngp snapshot.
    static let capture = try! TrainingDataset.rendered(scene: .spheres, views: 20, size: 64, holdout: .every(5), context: Backends.cpu)

    /// A network small enough for a debug build (8 levels × 2 features, 2^14 tables) with instant-ngp's
    /// MLP shape (64 wide; density 1 hidden layer, colour 2).
    static let configuration = HashGridConfiguration(levels: 8, featuresPerLevel: 2, log2TableSize: 14, baseResolution: 8,
                                                     perLevelScale: 1.5)

    static var options: TrainingOptions {
        var options = TrainingOptions()
        options.batchRays = 512
        // Until the density grid has carved the empty space (~50 steps) rays carry ~100 samples each;
        // the budget keeps those early steps cheap (rays past it sit the step out).
        options.maxSamplesPerStep = 1 << 14
        options.stepsPerDiagonal = 256
        options.densityGridResolution = 32
        options.densityGridWarmupSteps = 64
        options.seed = 7
        return options
    }

    /// Held-out PSNR must pass this after 300 steps. Measured on the development machines (2 threads): the
    /// untrained network scores 10.7–12.4 dB on the 4 held-out views and 300 steps reach 24.1–25.1 dB (mean
    /// 24.8). The threshold sits ~3 dB below that mean, so thread-count or libm differences cannot fail it,
    /// while a broken backward stage can: without the grid's gradient the MLPs see a near-constant encoding
    /// and learn the mean colour, without σ's they learn no geometry — both stay near the untrained ~12 dB.
    /// It also catches batches that repeat: with the overlapping per-step random streams fixed on
    /// 2026-12-06 the same run reached only 19.0–20.8 dB.
    static let heldOutPSNRThreshold: Float = 22

    func testTrainingOnAnalyticSceneRaisesHeldOutPSNR() throws {
        let dataset = Self.capture
        let trainer = try NeRFTrainer(context: Backends.cpu, dataset: dataset, configuration: Self.configuration, options: Self.options)
        let before = dataset.heldOut.map { trainer.psnr(of: $0) }
        let start = Date()
        var last: TrainingStepReport? = nil
        for _ in 0..<(Int(ProcessInfo.processInfo.environment["VKK_TRAIN_STEPS"] ?? "") ?? 300) { last = try trainer.trainStep() }
        let after = dataset.heldOut.map { trainer.psnr(of: $0) }
        let mean = after.reduce(0, +) / Float(after.count)
        print("training: held-out PSNR \(before.map { String(format: "%.2f", $0) }) -> \(after.map { String(format: "%.2f", $0) }) "
              + "(mean \(mean)) in \(Date().timeIntervalSince(start)) s; last step: loss \(last!.loss), \(last!.samples) samples, "
              + "\(last!.usedSamples) used; grid occupied \(trainer.densityGrid.occupiedFraction); \(trainer.timings)")
        XCTAssertGreaterThan(mean, Self.heldOutPSNRThreshold)
        XCTAssertLessThan(trainer.densityGrid.occupiedFraction, 0.5, "the density grid should have carved out empty space")
    }

    func testTrainingIsDeterministicForASeed() throws {
        let dataset = Self.capture
        func run() throws -> ([Float], [Float]) {
            let trainer = try NeRFTrainer(context: Backends.cpu, dataset: dataset, configuration: Self.configuration, options: Self.options)
            for _ in 0..<10 { try trainer.trainStep() }
            return (trainer.network.parameters, trainer.densityGrid.values)
        }
        let (a, gridA) = try run(), (b, gridB) = try run()
        XCTAssertTrue(a == b, "parameters differ between two runs with the same seed")
        XCTAssertTrue(gridA == gridB, "density grids differ between two runs with the same seed")
        var other = Self.options
        other.seed = 8
        let trainer = try NeRFTrainer(context: Backends.cpu, dataset: dataset, configuration: Self.configuration, options: other)
        for _ in 0..<10 { try trainer.trainStep() }
        XCTAssertFalse(trainer.network.parameters == a, "a different seed should train differently")
    }

    /// A trained field written as a snapshot (``NeRFTrainer/snapshot(includeOptimizerState:)``), read back
    /// and rendered with its own density grid (not one rebuilt from the field), equals the in-memory fp16
    /// field's render bit for bit; the density grid (with its −1 cells) survives.
    func testSnapshotOfTrainedFieldRoundTrips() throws {
        let trainer = try NeRFTrainer(context: Backends.cpu, dataset: Self.capture, configuration: Self.configuration, options: Self.options)
        for _ in 0..<20 { try trainer.trainStep() }
        let field = try trainer.makeField(name: "trained")
        let path = NSTemporaryDirectory() + "vkk-trained-\(UUID().uuidString).ingp"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try trainer.snapshot(includeOptimizerState: false).write(to: path)
        let snapshot = try NGPSnapshot.read(contentsOf: path)
        XCTAssertEqual(snapshot.training.step, 20)
        XCTAssertNil(snapshot.adam)
        let loaded = try snapshot.makeField()
        XCTAssertEqual(loaded.configuration, field.configuration)
        XCTAssertEqual(loaded.parameters, field.parameters)
        XCTAssertEqual(loaded.bounds, field.bounds)
        XCTAssertEqual(loaded.densityGrid, field.densityGrid)
        XCTAssertTrue(field.densityGrid!.values.contains(-1) || trainer.densityGrid.values.allSatisfy { $0 >= 0 })
        var options = RenderOptions()
        options.step = .uniform(64, across: field.bounds)
        let renderer = Renderer(context: Backends.cpu)
        // The renderer takes the snapshot's grid: 32³ (the trainer's resolution), not the default 256³
        // it would build from the field's density.
        let grid = try renderer.occupancyGrid(for: loaded, settings: options.occupancy)
        XCTAssertEqual(grid.settings.resolution, 32)
        XCTAssertEqual(grid.words, try loaded.densityGrid!.occupancyGrid(bounds: loaded.bounds, levels: options.occupancy.levels).words)
        XCTAssertLessThan(grid.occupiedFraction(), 0.9, "20 steps of training should have carved some empty space")
        let camera = Self.capture.heldOut[0].camera.resized(width: 16, height: 16)
        let a = try renderer.render(field: field, camera: camera, options: options)
        let b = try renderer.render(field: loaded, camera: camera, options: options)
        XCTAssertEqual(a.rgb, b.rgb)
        XCTAssertGreaterThan(Set(a.rgb.map { ($0 * 64).rounded() }).count, 3, "the render should not be flat")
        // On Vulkan, with the same (uploaded) occupancy from the snapshot's grid: the field agrees with the
        // CPU evaluator to ≲ 1e-4 (HashGridTests), which compositing keeps below 1e-3 per pixel; a sample
        // moved across an occupancy-cell edge by float rounding can change a pixel more, so the bound is on
        // the mean and on 98 % of the values.
        if let vulkan = Backends.vulkan {
            let gpu = try Renderer(context: vulkan).render(field: loaded, camera: camera, options: options)
            let differences = zip(gpu.rgb, b.rgb).map { abs($0 - $1) }.sorted()
            XCTAssertLessThan(differences.reduce(0, +) / Float(differences.count), 1e-3)
            XCTAssertLessThan(differences[differences.count * 98 / 100], 1e-3)
            XCTAssertTrue(vulkan.validationMessages.isEmpty, vulkan.validationMessages.joined(separator: "\n"))
        }
    }

    /// Training resumed from a snapshot (through the file) continues exactly as the trainer that wrote it:
    /// the CPU path is deterministic for a seed, and the snapshot carries the fp32 weights, the fp32 grid,
    /// Adam's moments and per-parameter steps and the fp16 weight average (base.json's Ema, on here). The
    /// run crosses a density-grid update (step 16).
    func testResumeEqualsContinuingInMemory() throws {
        var options = Self.options
        options.emaDecay = 0.95
        let original = try NeRFTrainer(context: Backends.cpu, dataset: Self.capture, configuration: Self.configuration, options: options)
        for _ in 0..<10 { try original.trainStep() }
        let path = NSTemporaryDirectory() + "vkk-resume-\(UUID().uuidString).ingp"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try original.snapshot().write(to: path)
        let written = try NGPSnapshot.read(contentsOf: path)
        XCTAssertEqual(written.document["optimizer"]?["otype"], .string("Ema"))
        XCTAssertEqual(written.emaWeights, original.emaWeights)
        XCTAssertEqual(written.parameters, original.emaWeights, "params_binary holds the inference (average) weights")
        let resumed = try NeRFTrainer(context: Backends.cpu, dataset: Self.capture, configuration: Self.configuration, options: options)
        try resumed.resume(from: written)
        XCTAssertEqual(resumed.step, 10)
        for _ in 0..<10 { try original.trainStep(); try resumed.trainStep() }
        XCTAssertTrue(original.network.parameters == resumed.network.parameters, "weights differ after resuming")
        XCTAssertTrue(original.emaWeights == resumed.emaWeights, "weight averages differ after resuming")
        XCTAssertTrue(original.densityGrid.values == resumed.densityGrid.values, "density grids differ after resuming")
        XCTAssertTrue(original.densityGrid.occupied == resumed.densityGrid.occupied)

        // Without the optimizer state the run continues from the fp16 weights with fresh moments: it
        // trains, but not identically.
        try original.snapshot(includeOptimizerState: false).write(to: path)
        let approximate = try NeRFTrainer(context: Backends.cpu, dataset: Self.capture, configuration: Self.configuration, options: options)
        try approximate.resume(from: try NGPSnapshot.read(contentsOf: path))
        XCTAssertEqual(approximate.step, 20)
        try approximate.trainStep(); try original.trainStep()
        XCTAssertFalse(original.network.parameters == approximate.network.parameters)

        // A snapshot of another network or scale is refused.
        var other = Self.configuration
        other.log2TableSize = 13
        let mismatched = try NeRFTrainer(context: Backends.cpu, dataset: Self.capture, configuration: other, options: Self.options)
        XCTAssertThrowsError(try mismatched.resume(from: try NGPSnapshot.read(contentsOf: path))) {
            XCTAssertTrue("\($0)".contains("cannot resume"), "\($0)")
        }
        // A step count a file could use to make the resume allocate without bound is refused up front.
        var far = try NGPSnapshot.read(contentsOf: path)
        far.training.step = 1 << 40
        far.adam = nil
        XCTAssertThrowsError(try approximate.resume(from: far)) { XCTAssertTrue("\($0)".contains("training_step"), "\($0)") }
        var negative = far
        negative.training.step = -1
        XCTAssertThrowsError(try negative.encoded(compressed: false))
    }

    /// tiny-cuda-nn's Ema wrapper: after Adam's k-th step the fp16 average is the debiased exponential
    /// average Σⱼ wⱼ(1 − d)d^(k−j) / (1 − d^k) of the fp16 weights wⱼ after each step (float64 reference).
    /// Each step rounds the average to fp16 (2⁻¹¹ relative) after float arithmetic (~1e-7): after 4 steps
    /// the error stays below 4·2⁻¹¹ of the largest weight involved. The first step copies the weights.
    func testWeightAverageFollowsTinyCudaNN() throws {
        var options = Self.options
        options.emaDecay = 0.95
        let trainer = try NeRFTrainer(context: Backends.cpu, dataset: Self.capture, configuration: Self.configuration, options: options)
        XCTAssertNil(trainer.emaWeights)
        var history: [[Float16]] = []
        for k in 1...4 {
            try trainer.trainStep()
            history.append(trainer.network.parameters.map { Float16($0) })
            let ema = try XCTUnwrap(trainer.emaWeights)
            if k == 1 { XCTAssertEqual(ema, history[0]); continue }
            let d = 0.95
            var worst = 0.0
            for i in stride(from: 0, to: ema.count, by: 7) {
                var sum = 0.0, largest = 0.0
                for j in 1...k {
                    let w = Double(Float(history[j - 1][i]))
                    sum += w * (1 - d) * pow(d, Double(k - j))
                    largest = max(largest, abs(w))
                }
                let reference = sum / (1 - pow(d, Double(k)))
                worst = max(worst, abs(Double(Float(ema[i])) - reference) / (largest + 1e-6))
            }
            XCTAssertLessThan(worst, 4 * pow(2, -11), "step \(k)")
        }
        // Renders and snapshots use the average, not the trained weights.
        let field = try trainer.makeField()
        XCTAssertEqual(field.parameters, trainer.emaWeights)
        XCTAssertNotEqual(field.parameters, history[3])
    }

    /// The sample budget keeps a prefix of the step's rays. Regression: rays after the first one that did
    /// not fit were still let in when they fitted, which kept exactly the cheap rays (empty space, matched
    /// trivially against their background) and dropped those through occupied fog, so the fog was never
    /// trained away (lego: running training PSNR 41 dB, held-out and training views rendered at ~16 dB).
    func testSampleBudgetKeepsAPrefixOfTheRays() throws {
        let trainer = try NeRFTrainer(context: Backends.cpu, dataset: Self.capture, configuration: Self.configuration, options: Self.options)
        // After the first grid update of the untrained field (cells above the mean optical thickness are
        // occupied, about half) a ray through the box carries many samples and a ray missing the box none.
        try trainer.updateDensityGrid()
        let through = NeRFTrainer.LocalRay(origin: SIMD3(0.5, 0.5, -1), direction: SIMD3(0, 0, 1))
        let miss = NeRFTrainer.LocalRay(origin: SIMD3(5, 5, -1), direction: SIMD3(0, 0, 1))
        var dt: [Float] = []
        let one = trainer.placeSamples([through], jitters: [0], maxSamples: .max, into: HashGridActivations(), dt: &dt)
        XCTAssertGreaterThan(one.total, 10)
        XCTAssertEqual(trainer.placeSamples([miss], jitters: [0], maxSamples: .max, into: HashGridActivations(), dt: &dt).total, 0)
        // Room for the first ray and a little more: the second does not fit, so it and the (free) third
        // ray after it sit out; the first is kept whole.
        let placed = trainer.placeSamples([through, through, miss, through], jitters: [0, 0, 0, 0], maxSamples: one.total + 5,
                                          into: HashGridActivations(), dt: &dt)
        XCTAssertEqual(placed.included, [true, false, false, false])
        XCTAssertEqual(placed.counts, [one.total, 0, 0, 0])
        XCTAssertEqual(placed.total, one.total)
        // Everything fits: all rays are kept.
        let all = trainer.placeSamples([through, miss, through], jitters: [0, 0, 0], maxSamples: 2 * one.total,
                                       into: HashGridActivations(), dt: &dt)
        XCTAssertEqual(all.included, [true, true, true])
        XCTAssertEqual(all.counts, [one.total, 0, one.total])
    }
}
