import Foundation
@testable import VulkanKernels
import XCTest

/// tiny-cuda-nn's fp16 weight average on the device (train_weight_average, after Adam in the step's
/// batch) against the host's implementation (``NeRFTrainer/updateAverage(decay:step:)``), bit for bit:
/// both evaluate the same fp32 operations in the same order, and the kernel converts to and from fp16
/// with integer operations that round as Swift's Float16 does.
final class NeRFVulkanWeightAverageTests: XCTestCase {
    static var options: TrainingOptions {
        var options = NeRFVulkanTrainerTests.options
        options.emaDecay = 0.95
        return options
    }

    /// A CPU trainer of the same configuration whose `updateAverage` serves as the reference on weights
    /// set from outside.
    func hostReference() throws -> NeRFTrainer {
        try NeRFTrainer(context: Backends.cpu, dataset: NeRFTrainingTests.capture, configuration: NeRFTrainingTests.configuration,
                        options: Self.options)
    }

    /// Four Vulkan steps with an average: after each, the device's average equals the host's update applied
    /// to the device's weights; before the first step there is none.
    func testDeviceAverageEqualsHostAverageEveryStep() throws {
        try onVulkan { context in
            let trainer = try NeRFTrainer(context: context, dataset: NeRFTrainingTests.capture, configuration: NeRFTrainingTests.configuration,
                                          options: Self.options)
            let host = try hostReference()
            XCTAssertNil(trainer.emaWeights)
            for k in 1...4 {
                try trainer.trainStep()
                host.network.parameters = try trainer.deviceNetwork!.parameterValues()
                host.updateAverage(decay: 0.95, step: k)
                let device = try XCTUnwrap(trainer.emaWeights), expected = try XCTUnwrap(host.storedEmaWeights)
                let differing = device.indices.filter { device[$0].bitPattern != expected[$0].bitPattern }
                XCTAssertEqual(differing.count, 0, "step \(k): \(differing.count) averaged weights differ, first \(differing.prefix(4))")
            }
            // The average changed between steps (not a copy of the weights: d = 0.95 keeps 95% of it).
            let average = try XCTUnwrap(trainer.emaWeights).map { Float($0) }, weights = trainer.network.parameters.map { Float(Float16($0)) }
            XCTAssertGreaterThan(zip(average, weights).filter { $0 != $1 }.count, average.count / 10)
        }
    }

    /// The fp16 conversions at their edges, on one update from a set average: weights across the fp16
    /// range (subnormals, values exactly halfway between two fp16 values, 65504 and 65520 — the tie that
    /// rounds to ∞ —, tiny values that round to 0) and averages including subnormals and signed zeros.
    func testAverageRoundsAsFloat16AtTheEdges() throws {
        try onVulkan { context in
            let trainer = try NeRFTrainer(context: context, dataset: NeRFTrainingTests.capture, configuration: NeRFTrainingTests.configuration,
                                          options: Self.options)
            let network = try XCTUnwrap(trainer.deviceNetwork), n = network.configuration.parameterCount
            var generator = SeededGenerator(seed: 21)
            var weights = (0..<n).map { _ -> Float in
                let magnitude = powf(2, -30 + 47 * generator.unitFloat())
                return generator.unitFloat() < 0.5 ? -magnitude : magnitude
            }
            var averages = (0..<n).map { _ in Float16(bitPattern: UInt16(truncatingIfNeeded: generator.next()) & 0x7bff | (generator.next() & 1 == 0 ? 0 : 0x8000)) }
            let edges: [Float] = [0, -0, 1 + 1.0 / 2048, 1 + 3.0 / 2048, 65504, 65519, 65520, -65520, powf(2, -24), powf(2, -25), powf(2, -25) * 1.5,
                                  powf(2, -26), powf(2, -14), powf(2, -14) - powf(2, -25), 3 * powf(2, -25), 1e-8, -1e-8, 2049, 2051]
            for (i, value) in edges.enumerated() {
                weights[i] = value
                weights[edges.count + i] = value
                averages[edges.count + i] = Float16(value)
            }
            for i in 0..<8 { averages[2 * edges.count + i] = Float16(bitPattern: UInt16(i) | (i % 2 == 0 ? 0x8000 : 0)) }
            try network.setParameters(weights)
            try network.setAverage(averages)
            try context.batch { try network.encodeAverage($0, decay: 0.95, step: 3) }
            let device = try network.averageValues()
            let host = try hostReference()
            host.network.parameters = weights
            host.storedEmaWeights = averages
            host.updateAverage(decay: 0.95, step: 3)
            let expected = try XCTUnwrap(host.storedEmaWeights)
            let differing = device.indices.filter { device[$0].bitPattern != expected[$0].bitPattern }
            XCTAssertEqual(differing.count, 0, "\(differing.count) differ, first \(differing.prefix(4).map { (weights[$0], averages[$0], device[$0], expected[$0]) })")
            XCTAssertTrue(expected[6].isInfinite && expected[7].isInfinite, "65520 rounds to ∞ (tie to even) in fp16")
            XCTAssertTrue(expected.contains { $0.isSubnormal })
        }
    }
}
