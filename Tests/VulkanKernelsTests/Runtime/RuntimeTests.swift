import Foundation
import VulkanKernels
import XCTest

final class RuntimeTests: XCTestCase {
    /// Independent dispatches share one submit and need no barrier between them.
    func testBatchRecordsManyIndependentDispatchesWithoutBarriers() throws {
        try onVulkan { context in
            let a = try context.tensor([Float].random(count: 24 * 16, seed: 3), shape: [24, 16])
            let bs = try (0..<40).map { try context.tensor([Float].random(count: 16 * 8, seed: UInt64(10 + $0)), shape: [16, 8]) }
            let cs = try (0..<40).map { _ in try context.zeros(Float.self, shape: [24, 8]) }
            let batch = try context.makeBatch()
            for (b, c) in zip(bs, cs) { try batch.gemm(a, b, into: c) }
            try batch.commit()
            XCTAssertEqual(batch.dispatchCount, 40)
            XCTAssertEqual(batch.barrierCount, 0, "reads of a shared input must not force barriers")
            let cpu = Backends.cpu
            let cpuA = try cpu.tensor(try a.toArray(), shape: [24, 16])
            for (b, c) in zip(bs, cs) {
                let expected = try cpu.matmul(cpuA, try cpu.tensor(try b.toArray(), shape: [16, 8])).toArray()
                assertClose(try c.toArray(), expected, tolerance: 18 * 0x1p-23 * 16)
            }
        }
    }

    /// x ← A·x twenty times in one batch: every step reads what the previous one wrote, so each needs a
    /// barrier; synchronization validation (on in tests) reports any hazard left unguarded.
    func testChainOfDependentDispatchesGetsABarrierPerStep() throws {
        try onVulkan { context in
            let n = 48
            // Scaled so ‖A‖ stays below 1 and the chain neither blows up nor vanishes.
            let aValues = [Float].random(count: n * n, seed: 5).map { $0 / Float(n).squareRoot() }
            let a = try context.tensor(aValues, shape: [n, n])
            let x0 = [Float].random(count: n * 3, seed: 6)
            var buffers = [try context.tensor(x0, shape: [n, 3]), try context.zeros(Float.self, shape: [n, 3])]
            let steps = 20
            let batch = try context.makeBatch()
            for step in 0..<steps { try batch.gemm(a, buffers[step % 2], into: buffers[(step + 1) % 2]) }
            try batch.commit()
            XCTAssertEqual(batch.barrierCount, steps - 1)

            var reference = x0.map(Double.init)
            for _ in 0..<steps {
                reference = (0..<n).flatMap { i in
                    (0..<3).map { j in (0..<n).reduce(0.0) { $0 + Double(aValues[i * n + $1]) * reference[$1 * 3 + j] } }
                }
            }
            // Each step adds at most (n+2)·2⁻²³ relative error of Σ|a||x|; 20 steps compound it.
            let result = try buffers[steps % 2].toArray()
            let scale = reference.map(abs).max()!
            for (got, expected) in zip(result, reference) {
                XCTAssertEqual(Double(got), expected, accuracy: Double(steps) * Double(n + 2) * 0x1p-23 * max(scale, 1) * 4)
            }
            buffers.removeAll()
        }
    }

    /// C is 140 MB, over lavapipe's 128 MiB maxStorageBufferRange: the GEMM splits it into windows.
    func testTensorLargerThanOneStorageBufferRange() throws {
        try onVulkan { context in
            let limit = context.deviceInfo!.maxStorageBufferRange
            let n = 1024, k = 4
            let m = limit / (n * 4) + 1000
            XCTAssertGreaterThan(m * n * 4, limit)
            let aValues = [Float].random(count: m * k, seed: 7)
            let bValues = [Float].random(count: k * n, seed: 8)
            let a = try context.tensor(aValues, shape: [m, k])
            let b = try context.tensor(bValues, shape: [k, n])
            let c = try context.empty(Float.self, shape: [m, n])
            try context.gemm(a, b, into: c)
            let result = try c.toArray()
            // Check every row at a stride that visits each window, plus the last rows.
            for i in Array(stride(from: 0, to: m, by: 997)) + [m - 2, m - 1] {
                for j in [0, 1, 511, n - 1] {
                    let expected = (0..<k).reduce(0.0) { $0 + Double(aValues[i * k + $1]) * Double(bValues[$1 * n + j]) }
                    XCTAssertEqual(Double(result[i * n + j]), expected, accuracy: Double(k + 2) * 0x1p-23 * Double(k), "row \(i) column \(j)")
                }
            }
        }
    }

    func testPipelinesAreCreatedOncePerShaderAndSpecialization() throws {
        guard Backends.vulkan != nil else { throw XCTSkip("no Vulkan device") }
        // A context of its own: the shared one already holds pipelines from other tests.
        let context = try ComputeContext(backend: .vulkan(), options: .init(validation: true))
        do {
            let a = try context.tensor([Float].random(count: 12 * 20, seed: 1), shape: [12, 20])
            let b = try context.tensor([Float].random(count: 20 * 36, seed: 2), shape: [20, 36])
            let c = try context.zeros(Float.self, shape: [12, 36])
            try context.gemm(a, b, into: c)
            let afterFirst = context.pipelineCreationCount
            for _ in 0..<5 { try context.gemm(a, b, into: c) }
            XCTAssertEqual(context.pipelineCreationCount, afterFirst, "same shader and constants reuse the pipeline")
            let bT = try context.tensor([Float].random(count: 36 * 20, seed: 2), shape: [36, 20])
            try context.gemm(a, bT, into: c, transposeB: true)
            XCTAssertEqual(context.pipelineCreationCount, afterFirst + 1, "another specialization is another pipeline")
            XCTAssertEqual(afterFirst, 1)
        }
        XCTAssertEqual(context.validationMessages, [])
    }

    func testRepeatedWorkDoesNotGrowMemory() throws {
        try onVulkan { context in
            func iteration(_ seed: UInt64) throws {
                let a = try context.tensor([Float].random(count: 64 * 32, seed: seed), shape: [64, 32])
                let b = try context.tensor([Float].random(count: 32 * 16, seed: seed + 1), shape: [32, 16])
                _ = try context.matmul(a, b).toArray()
            }
            for seed in 0..<10 { try iteration(UInt64(seed)) }
            let settled = context.memoryStatistics
            for seed in 10..<300 { try iteration(UInt64(seed)) }
            let after = context.memoryStatistics
            XCTAssertEqual(after.reservedBytes, settled.reservedBytes)
            XCTAssertEqual(after.blockCount, settled.blockCount)
            XCTAssertEqual(after.usedBytes, settled.usedBytes, "every temporary tensor was returned to the pool")
        }
    }

    /// The discrete-GPU path (device-local memory, staging copies), forced on lavapipe.
    func testStagingPathUploadsComputesAndDownloads() throws {
        guard Backends.vulkan != nil else { throw XCTSkip("no Vulkan device") }
        let context = try ComputeContext(backend: .vulkan(), options: .init(validation: true, forceStaging: true))
        let values = [Float].random(count: 30 * 40, seed: 4)
        let t = try context.tensor(values, shape: [30, 40])
        XCTAssertEqual(try t.toArray(), values)
        XCTAssertEqual(try context.zeros(Float.self, shape: [7, 3]).toArray(), [Float](repeating: 0, count: 21))
        try checkGEMM(GEMMCase(m: 30, n: 33, k: 40, alpha: 0.5, beta: 1), Float.self, on: context)
        try checkGEMM(GEMMCase(m: 30, n: 33, k: 40), Float16.self, on: context)
        XCTAssertEqual(context.validationMessages, [])
    }

    func testTimestampsMeasureElapsedTime() throws {
        onEveryBackend { context in
            let a = try context.tensor([Float].random(count: 128 * 128, seed: 1), shape: [128, 128])
            let c = try context.zeros(Float.self, shape: [128, 128])
            let batch = try context.makeBatch()
            let start = try batch.timestamp()
            try batch.gemm(a, a, into: c)
            let end = try batch.timestamp()
            if context.isVulkan { XCTAssertThrowsError(try batch.seconds(from: start, to: end), "not completed yet") }
            try batch.commit()
            let seconds = try batch.seconds(from: start, to: end)
            XCTAssert(seconds > 0 && seconds < 10, "\(seconds) s")
        }
    }

    func testContextIsUsableFromSeveralThreads() throws {
        try onVulkan { context in
            let failures = Locked(0)
            DispatchQueue.concurrentPerform(iterations: 4) { thread in
                do {
                    for step in 0..<5 {
                        let values = [Float].random(count: 20 * 20, seed: UInt64(thread * 100 + step))
                        let a = try context.tensor(values, shape: [20, 20])
                        let identity = try context.tensor((0..<400).map { $0 / 20 == $0 % 20 ? Float(1) : 0 }, shape: [20, 20])
                        if try context.matmul(a, identity).toArray() != values { failures.withLock { $0 += 1 } }
                    }
                } catch {
                    failures.withLock { $0 += 1 }
                }
            }
            XCTAssertEqual(failures.withLock { $0 }, 0)
        }
    }

    func testDeviceIndexOutOfRangeIsAClearError() throws {
        guard Backends.vulkan != nil else { throw XCTSkip("no Vulkan device") }
        XCTAssertThrowsError(try ComputeContext(backend: .vulkan(deviceIndex: 99))) { error in
            guard case VulkanError.deviceIndexOutOfRange(99, _) = error else { return XCTFail("\(error)") }
        }
    }

    func testCPUBackendNeedsNoVulkan() throws {
        let context = try ComputeContext(backend: .cpu)
        XCTAssertFalse(context.isVulkan)
        XCTAssertNil(context.deviceInfo)
    }

    /// With the loader pointed at no driver, `.auto` falls back to the CPU (and says why); `.vulkan` throws.
    /// Run in a child process so the environment change cannot leak into other tests.
    func testAutoFallsBackToCPUWithoutADriver() throws {
        let result = try runSelf(test: "RuntimeTests/testFallbackChildProcess",
                                 environment: ["VK_DRIVER_FILES": "/nonexistent/none.json", "VK_ICD_FILENAMES": "/nonexistent/none.json",
                                               "VKK_FALLBACK_CHILD": "1"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssert(result.output.contains("using the CPU backend"), "the one-line notice is printed:\n\(result.output)")
    }

    func testFallbackChildProcess() throws {
        guard ProcessInfo.processInfo.environment["VKK_FALLBACK_CHILD"] == "1" else { throw XCTSkip("runs inside testAutoFallsBackToCPUWithoutADriver") }
        let context = try ComputeContext(backend: .auto)
        XCTAssertFalse(context.isVulkan)
        XCTAssertNotNil(context.fallbackReason)
        let a = try context.tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
        XCTAssertEqual(try context.matmul(a, a).toArray(), [7, 10, 15, 22])
        XCTAssertThrowsError(try ComputeContext(backend: .vulkan()))
    }
}

/// A value behind a lock, for counting from several threads.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) -> R) -> R { lock.lock(); defer { lock.unlock() }; return body(&value) }
}

func assertClose(_ got: [Float], _ expected: [Float], tolerance: Float, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(got.count, expected.count, file: file, line: line)
    let worst = zip(got, expected).map { abs($0 - $1) }.max() ?? 0
    XCTAssertLessThanOrEqual(worst, tolerance, file: file, line: line)
}

/// Runs one test of this bundle in a child process (same executable) with extra environment variables.
func runSelf(test: String, environment: [String: String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    process.arguments = ["VulkanKernelsTests." + test]
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
