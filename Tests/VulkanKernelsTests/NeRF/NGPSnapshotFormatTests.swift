import Foundation
@testable import VulkanKernels
import XCTest

/// The snapshot layout instant-ngp's `load_snapshot` needs (checked against its testbed source; see
/// docs/nerf-formats.md), the rules it applies on load, and the density grid as the renderer's occupancy.
final class NGPSnapshotFormatTests: XCTestCase {
    let small = HashGridConfiguration(levels: 2, featuresPerLevel: 2, log2TableSize: 5, baseResolution: 2, perLevelScale: 2,
                                      densityWidth: 16, colorWidth: 16, colorHiddenLayers: 1)

    /// A field in instant-ngp's box for aabb_scale 2 with a 2-cascade 8³ density grid.
    func makeSnapshot(training: NGPTrainingState = NGPTrainingState(), adam: NGPAdamState? = nil) throws -> NGPSnapshot {
        let field = try randomHashGridField(small, seed: 5, bounds: AABB(lower: SIMD3(repeating: -0.5), upper: SIMD3(repeating: 1.5)))
        var generator = SeededGenerator(seed: 6)
        field.densityGrid = try NGPDensityGrid(resolution: 8, cascades: 2,
                                               values: (0..<1024).map { _ in Float16(Float.random(in: -1..<0.05, using: &generator)) })
        return NGPSnapshot(field: field, aabbScale: 2, training: training, adam: adam)
    }

    /// Every key instant-ngp's loader reads without a default is written, with the type it converts to.
    func testWriterHasTheKeysInstantNGPRequires() throws {
        var training = NGPTrainingState()
        training.step = 1234
        training.loss = 0.0125
        training.raysPerBatch = 4096
        training.measuredBatchSize = 150_000
        training.measuredBatchSizeBeforeCompaction = 262_144
        let document = try MessagePack.decode(try makeSnapshot(training: training).encoded(compressed: false))
        let state = try XCTUnwrap(document["snapshot"])
        XCTAssertEqual(state["version"], .uint(1))
        XCTAssertEqual(state["mode"], .string("nerf"))
        XCTAssertEqual(state["params_type"], .string("__half"))
        XCTAssertEqual(state["n_params"]?.intValue, small.parameterCount)
        guard case .binary(let params)? = state["params_binary"] else { return XCTFail("params_binary is not a binary") }
        XCTAssertEqual(params.count, 2 * small.parameterCount)
        XCTAssertEqual(state["density_grid_size"], .uint(8))
        guard case .binary(let grid)? = state["density_grid_binary"] else { return XCTFail("density_grid_binary is not a binary") }
        XCTAssertEqual(grid.count, 2 * 2 * 512)
        XCTAssertEqual(state["nerf"]?["aabb_scale"], .uint(2), "instant-ngp's aabb_scale is an int")
        XCTAssertEqual(state["nerf"]?["rgb"]?["rays_per_batch"], .uint(4096))
        XCTAssertEqual(state["nerf"]?["rgb"]?["measured_batch_size"], .uint(150_000))
        XCTAssertEqual(state["nerf"]?["rgb"]?["measured_batch_size_before_compaction"], .uint(262_144))
        XCTAssertEqual(state["training_step"], .uint(1234))
        XCTAssertEqual(state["loss"], .float32(0.0125))
        XCTAssertEqual(state["aabb"]?["min"], .array([.float32(-0.5), .float32(-0.5), .float32(-0.5)]))
        XCTAssertEqual(state["aabb"]?["max"], .array([.float32(1.5), .float32(1.5), .float32(1.5)]))
        XCTAssertNil(state["optimizer"], "no optimizer state unless asked")
        // The network config instant-ngp's reset_network reads.
        XCTAssertEqual(document["loss"]?["otype"], .string("Huber"))
        XCTAssertEqual(document["optimizer"]?["otype"], .string("ExponentialDecay"))
        XCTAssertEqual(document["optimizer"]?["nested"]?["otype"], .string("Adam"))
        XCTAssertEqual(document["optimizer"]?["nested"]?["epsilon"], .float32(1e-15))
        XCTAssertEqual(document["optimizer"]?["nested"]?["learning_rate"], .float32(1e-2))
        XCTAssertEqual(document["optimizer"]?["decay_start"], .uint(20_000))
        XCTAssertEqual(document["encoding"]?["otype"], .string("HashGrid"))
        XCTAssertEqual(document["network"]?["n_neurons"], .uint(16))
        XCTAssertEqual(document["rgb_network"]?["n_hidden_layers"], .uint(1))
        XCTAssertEqual(document["dir_encoding"]?["otype"], .string("Composite"))
        // nlohmann::json keeps object keys sorted (std::map): so does a fresh document.
        guard case .map(let top) = document, case .map(let inner) = state else { return XCTFail("not maps") }
        for pairs in [top, inner] {
            let keys = pairs.compactMap(\.key.stringValue)
            XCTAssertEqual(keys, keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
        }
    }

    /// The optimizer state round-trips in tiny-cuda-nn's nesting (ExponentialDecay → Adam).
    func testAdamStateRoundTrips() throws {
        let n = small.parameterCount
        var generator = SeededGenerator(seed: 3)
        let adam = NGPAdamState(currentStep: 77, learningRate: 1e-2, learningRateFactor: 0.33,
                                firstMoments: (0..<n).map { _ in Float.random(in: -1..<1, using: &generator) },
                                secondMoments: (0..<n).map { _ in Float.random(in: 0..<1, using: &generator) },
                                parameterSteps: (0..<n).map { _ in UInt32.random(in: 0...77, using: &generator) })
        let bytes = try makeSnapshot(adam: adam).encoded(compressed: true)
        let read = try NGPSnapshot.decode(bytes)
        XCTAssertEqual(read.adam, adam)
        let document = read.updatedDocument
        XCTAssertEqual(document["snapshot"]?["optimizer"]?["nested"]?["current_step"], .uint(77))
        XCTAssertEqual(document["snapshot"]?["optimizer"]?["learning_rate_factor"], .float32(0.33))
        XCTAssertEqual(document["snapshot"]?["optimizer"]?["nested"]?["base_learning_rate"], .float32(1e-2 * 0.33))
    }

    /// instant-ngp's rules on load: a box derived from aabb_scale, 1 + ⌈log2 s⌉ cascades, per_level_scale
    /// in single precision when absent, is_hdr → exponential colours.
    func testReaderAppliesInstantNGPsRules() throws {
        let good = try makeSnapshot().updatedDocument
        let state = good["snapshot"]!
        // A stored aabb that differs is ignored: instant-ngp derives the box from aabb_scale.
        let moved = good.setting("snapshot", state.setting("aabb", .map([.init(.string("min"), .array([.uint(0), .uint(0), .uint(0)])),
                                                                         .init(.string("max"), .array([.uint(3), .uint(3), .uint(3)]))])))
        XCTAssertEqual(try NGPSnapshot(document: moved).aabb, AABB(lower: SIMD3(repeating: -0.5), upper: SIMD3(repeating: 1.5)))
        // per_level_scale absent: instant-ngp's Float formula for the snapshot's aabb_scale (base.json's grid).
        let base: MessagePack = .map([.init(.string("otype"), .string("HashGrid")), .init(.string("n_levels"), .uint(8)),
                                      .init(.string("n_features_per_level"), .uint(4)), .init(.string("log2_hashmap_size"), .uint(19)),
                                      .init(.string("base_resolution"), .uint(16))])
        let derived = try NGPSnapshot.configuration(from: good.setting("encoding", base), aabbScale: 4)
        XCTAssertEqual(derived.perLevelScale.bitPattern, expf(logf(Float(2048) * 4 / Float(16)) / Float(7)).bitPattern)
        XCTAssertEqual(HashGridConfiguration.defaultPerLevelScale(levels: 16, baseResolution: 16, aabbScale: 1).bitPattern,
                       expf(logf(2048 / 16) / 15).bitPattern)
        // instant-ngp's defaults for absent keys: log2_hashmap_size 15, base_resolution 2^(15 / 3) = 32.
        let sparse = try NGPSnapshot.configuration(from: good.setting("encoding", .map([.init(.string("otype"), .string("HashGrid"))])),
                                                   aabbScale: 1)
        XCTAssertEqual(sparse.log2TableSize, 15)
        XCTAssertEqual(sparse.baseResolution, 32)
        XCTAssertEqual(sparse.levels, 16)
        XCTAssertEqual(sparse.featuresPerLevel, 2)
        // is_hdr selects exp(clamp(x, −10, 10)) for colour.
        let hdrDocument = good.setting("snapshot", state.setting("nerf", state["nerf"]!.setting("dataset", .map([
            .init(.string("aabb_scale"), .uint(2)), .init(.string("is_hdr"), .bool(true))]))))
        let hdr = try NGPSnapshot(document: hdrDocument)
        XCTAssertEqual(hdr.colorActivation, .exponential)
        let ldrField = try NGPSnapshot(document: good).makeField(), hdrField = try hdr.makeField()
        let samples = randomSamples(count: 200, bounds: hdrField.bounds, seed: 4, margin: 0)
        let ldr = ldrField.evaluate(samples: samples), high = hdrField.evaluate(samples: samples)
        for i in 0..<200 {
            XCTAssertEqual(high[4 * i + 3], ldr[4 * i + 3], "σ does not depend on the colour activation")
            for c in 0..<3 {
                // logistic(x) = p ⇒ x = log(p / (1 − p)); the HDR output is exp(clamp(x, −10, 10)).
                let p = Double(ldr[4 * i + c])
                let x = min(max(log(p / (1 - p)), -10), 10)
                XCTAssertEqual(Double(high[4 * i + c]), exp(x), accuracy: 1e-4 * exp(x) + 1e-6, "sample \(i)")
            }
        }
        // Re-written, the HDR snapshot keeps its dataset block; a fresh HDR field cannot be written.
        XCTAssertEqual(try NGPSnapshot.decode(try hdr.encoded(compressed: false)).colorActivation, .exponential)
        let fresh = NGPSnapshot(field: hdrField, aabbScale: 2)
        XCTAssertThrowsError(try fresh.encoded(compressed: false)) { XCTAssertTrue("\($0)".contains("is_hdr"), "\($0)") }
    }

    /// HDR colours on Vulkan equal the CPU evaluator's (same fp32 operations; exp of the logit turns the
    /// ≲ 1e-5 logit difference of the summation order into a relative error of the same size).
    func testHDRColoursOnVulkanMatchCPU() throws {
        guard let vulkan = Backends.vulkan else { throw XCTSkip("no Vulkan device") }
        let good = try makeSnapshot().updatedDocument
        let state = good["snapshot"]!
        let hdr = try NGPSnapshot(document: good.setting("snapshot", state.setting("nerf", state["nerf"]!.setting("dataset", .map([
            .init(.string("aabb_scale"), .uint(2)), .init(.string("is_hdr"), .bool(true))]))))).makeField()
        let samples = randomSamples(count: 300, bounds: hdr.bounds, seed: 12, margin: 0)
        let cpu = hdr.evaluate(samples: samples)
        let gpu = try hdr.evaluate(samples: samples, on: vulkan)
        var worst: Float = 0
        for i in 0..<(4 * 300) { worst = max(worst, abs(gpu[i] - cpu[i]) / (abs(cpu[i]) + 1e-20)) }
        XCTAssertLessThan(worst, 1e-4)
        XCTAssertTrue((0..<300).contains { cpu[4 * $0] > 1 }, "some HDR colours should exceed 1 (exp, not logistic)")
    }

    /// Snapshots instant-ngp would refuse (or that contradict themselves) are clear errors.
    func testBadSnapshotsGiveClearErrors() throws {
        let good = try makeSnapshot().updatedDocument
        let state = good["snapshot"]!
        func expect(_ name: String, _ fragment: String, _ document: MessagePack) {
            XCTAssertThrowsError(try NGPSnapshot.decode(document.encoded()), name) { error in
                XCTAssert(error is SnapshotError, "\(name): \(error)")
                XCTAssertTrue("\(error)".contains(fragment), "\(name): \(error)")
            }
        }
        func nerf(_ key: String, _ value: MessagePack) -> MessagePack {
            good.setting("snapshot", state.setting("nerf", state["nerf"]!.setting(key, value)))
        }
        expect("aabb_scale 3", "power of two", nerf("aabb_scale", .uint(3)))
        expect("aabb_scale 256", "power of two", nerf("aabb_scale", .uint(256)))
        expect("aabb_scale 0.5", "power of two", nerf("aabb_scale", .float64(0.5)))
        expect("aabb_scale text", "not a number", nerf("aabb_scale", .string("2")))
        expect("cascades for aabb_scale 4", "3 cascade(s)", nerf("aabb_scale", .uint(4)))
        expect("old version", "older", good.setting("snapshot", state.setting("version", .uint(0))))
        expect("grid size", "density_grid_size", good.setting("snapshot", state.setting("density_grid_size", .uint(12))))
        expect("training step", "training_step", good.setting("snapshot", state.setting("training_step", .int(-3))))
        expect("loss", "snapshot.loss", good.setting("snapshot", state.setting("loss", .string("low"))))
        expect("is_hdr", "is_hdr", nerf("dataset", .map([.init(.string("is_hdr"), .uint(1))])))
        expect("optimizer without moments", "Adam", good.setting("snapshot", state.setting("optimizer", .map([]))))
        expect("short moments", "float32", good.setting("snapshot", state.setting("optimizer", .map([
            .init(.string("current_step"), .uint(1)), .init(.string("base_learning_rate"), .float32(0.01)),
            .init(.string("first_moments_binary"), .binary([0, 0, 0, 0])), .init(.string("second_moments_binary"), .binary([0, 0, 0, 0]))]))))
        expect("full-precision weights", "params_full_precision_binary",
               good.setting("snapshot", state.setting("vkk", .map([.init(.string("params_full_precision_binary"), .binary([1, 2, 3]))]))))
        // The writer refuses what instant-ngp could not load back as the same field.
        let field = try randomHashGridField(small, seed: 5, bounds: AABB(lower: SIMD3(repeating: 0), upper: SIMD3(repeating: 2)))
        XCTAssertThrowsError(try NGPSnapshot(field: field, aabbScale: 2).encoded(compressed: false)) {
            XCTAssertTrue("\($0)".contains("derives the box"), "\($0)")
        }
        let unit = try randomHashGridField(small, seed: 5, bounds: AABB(lower: SIMD3(repeating: -0.5), upper: SIMD3(repeating: 1.5)))
        XCTAssertThrowsError(try NGPSnapshot(field: unit, aabbScale: 3).encoded(compressed: false)) {
            XCTAssertTrue("\($0)".contains("power of two"), "\($0)")
        }
    }

    /// The renderer's occupancy from a density grid: instant-ngp's threshold (min(0.01, mean over cascade
    /// 0)), −1 cells empty, each cell decided by the finest cascade containing it.
    func testDensityGridBecomesTheRenderersOccupancy() throws {
        let r = 8, cells = r * r * r
        var values = [Float16](repeating: 0, count: 2 * cells)
        // Cascade 0 (the unit cube): one thick cell, one thin cell below the threshold, one unseen cell.
        values[NGPDensityGrid.mortonIndex(1, 2, 3)] = 0.5
        values[NGPDensityGrid.mortonIndex(4, 4, 4)] = 0.002
        values[NGPDensityGrid.mortonIndex(5, 5, 5)] = -1
        // Cascade 1 ([−0.5, 1.5]³): a cell outside cascade 0, and one inside it (which cascade 0 overrides).
        values[cells + NGPDensityGrid.mortonIndex(0, 7, 0)] = 0.3
        values[cells + NGPDensityGrid.mortonIndex(3, 3, 3)] = 0.3
        let grid = try NGPDensityGrid(resolution: r, cascades: 2, values: values)
        // mean over cascade 0 of max(v, 0) = (0.5 + 0.002) / 512 ≈ 0.00098 < 0.01: that is the threshold.
        XCTAssertEqual(Double(grid.occupancyThreshold), (Double(Float(Float16(0.5))) + Double(Float(Float16(0.002)))) / 512, accuracy: 1e-9)
        let occupancy = try grid.occupancyGrid(bounds: NGPDensityGrid.cascadeBounds(1), levels: 3)
        XCTAssertEqual(occupancy.settings.resolution, 16)  // cascade 0's cells exactly: 8 per unit × 2 units
        // Cascade 0 cell (1, 2, 3) is box cell (4 + 1, 4 + 2, 4 + 3) at this resolution.
        XCTAssertTrue(occupancy.isOccupied(level: 0, x: 5, y: 6, z: 7))
        XCTAssertTrue(occupancy.isOccupied(level: 0, x: 8, y: 8, z: 8), "0.002 is above the mean-based threshold")
        XCTAssertFalse(occupancy.isOccupied(level: 0, x: 9, y: 9, z: 9), "unseen (−1) cells are empty")
        // Cascade 1 cell (0, 7, 0) covers box cells 0…1, 14…15, 0…1.
        for (x, y, z) in [(0, 14, 0), (1, 15, 1), (0, 15, 1)] { XCTAssertTrue(occupancy.isOccupied(level: 0, x: x, y: y, z: z)) }
        // Cascade 1 cell (3, 3, 3) lies inside cascade 0: cascade 0 decides there (empty cells 6, 7).
        XCTAssertFalse(occupancy.isOccupied(level: 0, x: 6, y: 6, z: 6))
        XCTAssertEqual(occupancy.occupiedFraction(), Double(1 + 1 + 8) / 4096, accuracy: 1e-12)
        // A box that is not the coarsest cascade's is refused.
        XCTAssertThrowsError(try grid.occupancyGrid(bounds: NGPDensityGrid.cascadeBounds(0)))
    }
}
