import Foundation
@testable import VulkanKernels
import XCTest

/// The one-batch training step (``VulkanTrainingPipeline/step(rays:maxSamples:options:learningRate:)``),
/// whose passes read the sample counts from the device through indirect dispatches, against the same
/// kernels dispatched with the counts read back to the host in between (the three batches the step was
/// before), and the indirect dispatch itself at its edges: a count of 0, and a count past the buffers.
final class NeRFVulkanOneBatchTests: XCTestCase {
    /// The step as three batches with host round trips: march and read the count; forward pass,
    /// compositing and compaction over the host's count and read the kept count; gather, backward pass
    /// (over the host's count) and Adam. The same kernels as the one-batch step, with `countWord`
    /// NO_DEVICE_COUNT and plain dispatches.
    func hostCountedStep(_ p: VulkanTrainingPipeline, rays values: [Float], maxSamples: Int, options: TrainingOptions,
                         learningRate: Float) throws -> VulkanTrainingPipeline.StepResult {
        let n = values.count / VulkanTrainingPipeline.floatsPerRay
        let (samples, keptRays) = try p.march(rays: values, maxSamples: maxSamples)
        try p.context.batch { batch in
            try p.network.encodeForward(batch, p.all, .host(samples), densityOnly: false, positions: p.samplePositions, directions: p.sampleDirections)
            try p.encodeCompositeAndCompact(batch, p.all, rayCount: n, samples: max(samples, 1), options: options)
        }
        let reports = try p.context.download(p.reports.storage, count: 4 * n, as: Float.self)
        let kept = Int(try p.totals.toArray()[2])
        let debias = try p.network.prepareStep(options: options, learningRate: learningRate)
        try p.context.batch { batch in
            if kept > 0 {
                try p.encodeGather(batch, from: p.all, .host(kept))
                try p.network.encodeBackward(batch, p.kept, .host(kept))
            } else {
                try batch.fill(p.network.gradients.storage, word: 0)
            }
            try p.network.encodeStep(batch, debias: debias, options: options, learningRate: learningRate)
        }
        return VulkanTrainingPipeline.StepResult(reports: reports, samples: samples, keptRays: keptRays, keptSamples: kept)
    }

    /// Two Vulkan trainers with one seed and the deterministic scatter (every kernel sums in a fixed
    /// order), on one random grid (about a third of the seen cells occupied, as NeRFVulkanPipelineTests
    /// does), so that both march through the same irregular occupancy.
    func twoTrainers(_ context: ComputeContext, options: TrainingOptions) throws -> (NeRFTrainer, NeRFTrainer) {
        try [0, 1].map { _ in
            let trainer = try NeRFTrainer(context: context, dataset: NeRFVulkanPipelineTests.wideCapture,
                                          configuration: NeRFTrainingTests.configuration, options: options, scatterMethod: .deterministic)
            var generator = SeededGenerator(seed: 3)
            let grid = trainer.storedGrid
            try grid.restore(values: grid.values.map { $0 < 0 ? $0 : (generator.unitFloat() < 0.3 ? 0.05 : 0) }, updates: 1)
            try trainer.pipeline!.grid.upload(grid)
            return trainer
        }.pair
    }

    /// `count` rays from a sphere around the box towards random points inside it (every 8th misses it),
    /// random jitters, targets and backgrounds, as the pipeline takes them.
    func stepRays(_ trainer: NeRFTrainer, count: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        let lower = trainer.boxLower, size = trainer.dataset.aabbScale
        func unit() -> SIMD3<Float> { SIMD3(generator.unitFloat(), generator.unitFloat(), generator.unitFloat()) }
        func normalize(_ v: SIMD3<Float>) -> SIMD3<Float> { v / (v * v).sum().squareRoot() }
        let centre = SIMD3<Float>(repeating: lower + size / 2)
        var rays: [NeRFTrainer.LocalRay] = []
        for r in 0..<count {
            let origin = centre + normalize(unit() * 2 - 1) * (size * 1.5)
            let inside = SIMD3<Float>(repeating: lower + 0.2 * size) + unit() * (0.6 * size)
            let direction = r % 8 == 7 ? normalize(origin - centre) : normalize(inside - origin)
            rays.append(NeRFTrainer.LocalRay(origin: origin, direction: direction))
        }
        let jitters = (0..<count).map { _ in generator.unitFloat() }
        let targets = (0..<count).map { _ in unit() }, backgrounds = (0..<count).map { _ in unit() }
        return NeRFTrainer.rayValues(rays: rays, jitters: jitters, targets: targets, backgrounds: backgrounds)
    }

    /// Three steps with a budget that leaves rays out and a termination threshold that makes compaction
    /// drop samples: the one-batch step and the host-counted batches must give the same counts, the same
    /// per-ray reports and the same parameters and Adam state, bit for bit (the same kernels over the
    /// same counts, in the same order; only where the count comes from differs).
    func testOneBatchStepEqualsHostCountedBatchesBitForBit() throws {
        try onVulkan { context in
            var options = NeRFVulkanPipelineTests.options(samples: 1500)
            options.terminationThreshold = 0.6
            let (a, b) = try twoTrainers(context, options: options)
            let p = try XCTUnwrap(a.pipeline), q = try XCTUnwrap(b.pipeline)
            var truncated = false, compacted = false
            for k in 0..<3 {
                let rays = stepRays(a, count: 200, seed: 20 + UInt64(k))
                let one = try p.step(rays: rays, maxSamples: options.maxSamplesPerStep, options: options, learningRate: a.learningRate)
                let three = try hostCountedStep(q, rays: rays, maxSamples: options.maxSamplesPerStep, options: options, learningRate: b.learningRate)
                XCTAssertEqual(one.samples, three.samples, "step \(k)")
                XCTAssertEqual(one.keptRays, three.keptRays, "step \(k)")
                XCTAssertEqual(one.keptSamples, three.keptSamples, "step \(k)")
                XCTAssertTrue(one.reports.map(\.bitPattern) == three.reports.map(\.bitPattern), "step \(k): per-ray reports differ")
                truncated = truncated || one.keptRays < 200
                compacted = compacted || (one.keptSamples < one.samples && one.keptSamples > 0)
            }
            XCTAssertTrue(truncated, "the budget left no ray out")
            XCTAssertTrue(compacted, "compaction dropped no sample")
            let x = try p.network.parameterValues(), y = try q.network.parameterValues()
            XCTAssertTrue(x.map(\.bitPattern) == y.map(\.bitPattern), "parameters differ")
            let s = try p.network.adamState(), t = try q.network.adamState()
            XCTAssertTrue(s.firstMoments.map(\.bitPattern) == t.firstMoments.map(\.bitPattern), "first moments differ")
            XCTAssertTrue(s.secondMoments.map(\.bitPattern) == t.secondMoments.map(\.bitPattern), "second moments differ")
            XCTAssertEqual(s.steps, t.steps)
        }
    }

    /// A step whose rays all miss the box: every indirect dispatch gets 0 workgroups (the weight
    /// gradient's first chunk still writes its zeros), and the step equals the host-counted one, which
    /// zeroes the gradient on the host's count of 0: a zero gradient and one Adam update of it.
    func testStepWithoutSamplesEqualsHostCountedStep() throws {
        try onVulkan { context in
            let options = NeRFVulkanPipelineTests.options()
            let (a, b) = try twoTrainers(context, options: options)
            let p = try XCTUnwrap(a.pipeline), q = try XCTUnwrap(b.pipeline)
            // Train once so that the weight gradients of the previous step are not zero.
            let warm = stepRays(a, count: 64, seed: 5)
            _ = try p.step(rays: warm, maxSamples: options.maxSamplesPerStep, options: options, learningRate: a.learningRate)
            _ = try hostCountedStep(q, rays: warm, maxSamples: options.maxSamplesPerStep, options: options, learningRate: b.learningRate)
            let upper = a.boxLower + a.dataset.aabbScale
            let missing = (0..<32).map { r in NeRFTrainer.LocalRay(origin: SIMD3(upper + 1, upper + 1, Float(r) * 0.01), direction: SIMD3(0, 0, 1)) }
            let zeros = [SIMD3<Float>](repeating: SIMD3(0.5, 0.5, 0.5), count: missing.count)
            let rays = NeRFTrainer.rayValues(rays: missing, jitters: [Float](repeating: 0.5, count: missing.count), targets: zeros, backgrounds: zeros)
            let one = try p.step(rays: rays, maxSamples: options.maxSamplesPerStep, options: options, learningRate: a.learningRate)
            let three = try hostCountedStep(q, rays: rays, maxSamples: options.maxSamplesPerStep, options: options, learningRate: b.learningRate)
            XCTAssertEqual(one.samples, 0)
            XCTAssertEqual(three.samples, 0)
            XCTAssertEqual(one.keptSamples, 0)
            XCTAssertTrue(one.reports.map(\.bitPattern) == three.reports.map(\.bitPattern), "per-ray reports differ")
            let gradient = try p.network.gradientValues()
            XCTAssertEqual(gradient.prefix(p.network.matrixParameterCount).filter { $0 != 0 }.count, 0, "a stale MLP gradient survived")
            let x = try p.network.parameterValues(), y = try q.network.parameterValues()
            XCTAssertTrue(x.allSatisfy(\.isFinite))
            XCTAssertTrue(x.map(\.bitPattern) == y.map(\.bitPattern), "parameters differ")
        }
    }

    /// train_dispatch_arguments and vkCmdDispatchIndirect at the edges, on train_gather_rows (one float per
    /// row, capacity 8 rows in buffers of 12): a device count of 0 writes nothing (workgroups (0, 1, 1)),
    /// a count of 5 writes 5 rows, and a count of 1000 is clamped to the capacity on the device (in the
    /// workgroup count and in the kernel): 8 rows, the 4 past them untouched.
    func testIndirectDispatchOfZeroAndOversizedCounts() throws {
        try onVulkan { context in
            let device = try XCTUnwrap(context.device)
            let capacity = 8, rows = 12, sentinel: Float = -7
            let counts = try context.tensor([UInt32(0), 5, 1000, 0], shape: [4])
            let plan = try TrainingIndirectDispatch(counts: counts, context: context, specialization: [16], localSize: 16,
                                                    maxGroupsX: device.info.maxComputeWorkGroupCount[0], initialSlots: 2)
            let map = try context.tensor((0..<UInt32(rows)).map { $0 }, shape: [rows])
            let source = try context.tensor((0..<rows).map { Float($0) + 1 }, shape: [rows])
            let targets = try (0..<3).map { _ in try context.tensor([Float](repeating: sentinel, count: rows), shape: [rows]) }
            let kernel = Kernel<Shader.nerf_train_gather_rows>(.base, specialization: [16])
            var attempts = 0
            repeat {
                attempts += 1
                let batch = try context.makeBatch()
                for word in 0..<3 {
                    try plan.encodeArguments(batch, word: UInt32(word))
                    try plan.dispatch(batch, kernel, .init(
                        map: BufferBinding(map.storage, .storageRead, byteCount: 4 * capacity),
                        source: BufferBinding(source.storage, .storageRead, byteCount: 4 * capacity),
                        target: BufferBinding(targets[word].storage, .storageWrite, byteCount: 4 * capacity),
                        deviceCounts: BufferBinding(counts.storage, .storageRead, byteCount: 16)),
                        push: .init(count: UInt32(capacity), width: 1, countWord: UInt32(word)), word: UInt32(word), capacity: capacity, perItem: 1)
                }
                if try plan.commitShapes() {
                    try batch.commit()
                    break
                }
            } while attempts < 3
            // Three shapes in a table of two: the first recording overflowed and was made again.
            XCTAssertEqual(attempts, 2)
            XCTAssertEqual(plan.shapes.count, 3)
            let arguments = try plan.arguments.toArray()
            XCTAssertEqual(Array(arguments[0..<9]), [0, 1, 1, 1, 1, 1, 1, 1, 1])
            let untouched = [Float](repeating: sentinel, count: rows)
            XCTAssertEqual(try targets[0].toArray(), untouched, "a count of 0 wrote rows")
            XCTAssertEqual(try targets[1].toArray(), [1, 2, 3, 4, 5] + untouched[5...], "a count of 5")
            XCTAssertEqual(try targets[2].toArray(), (1...8).map(Float.init) + untouched[8...], "a count past the capacity")
        }
    }
}

private extension Array {
    var pair: (Element, Element) { (self[0], self[1]) }
}
