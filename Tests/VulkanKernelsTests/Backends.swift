import Foundation
import VulkanKernels
import XCTest

/// The contexts every test runs on: the CPU backend and the Vulkan device (lavapipe in CI) with the
/// Khronos validation layer and synchronization validation on. Made once per test process.
enum Backends {
    static let cpu: ComputeContext = try! ComputeContext(backend: .cpu)
    static let vulkan: ComputeContext? = {
        do {
            return try ComputeContext(backend: .vulkan(), options: .init(validation: true))
        } catch {
            // No Vulkan here: the suite fails rather than silently testing only the CPU, unless asked.
            if ProcessInfo.processInfo.environment["VKK_TESTS_ALLOW_NO_VULKAN"] == "1" { return nil }
            fatalError("no Vulkan device for the tests (\(error)); install mesa-vulkan-drivers and vulkan-validationlayers, "
                       + "or set VKK_TESTS_ALLOW_NO_VULKAN=1 to run the CPU tests only")
        }
    }()

    static var all: [ComputeContext] { [cpu] + (vulkan.map { [$0] } ?? []) }
}

extension XCTestCase {
    /// Runs `body` once per backend; on Vulkan, fails the test on any validation-layer message.
    func onEveryBackend(file: StaticString = #filePath, line: UInt = #line, _ body: (ComputeContext) throws -> Void) {
        for context in Backends.all {
            context.clearValidationMessages()
            do {
                try body(context)
            } catch {
                XCTFail("\(context.backendDescription): \(error)", file: file, line: line)
            }
            let messages = context.validationMessages
            XCTAssert(messages.isEmpty, "validation messages on \(context.backendDescription):\n" + messages.joined(separator: "\n"),
                      file: file, line: line)
        }
    }

    /// Runs `body` on the Vulkan context only (runtime tests), with the same validation check.
    func onVulkan(file: StaticString = #filePath, line: UInt = #line, _ body: (ComputeContext) throws -> Void) throws {
        guard let context = Backends.vulkan else { throw XCTSkip("no Vulkan device") }
        context.clearValidationMessages()
        try body(context)
        let messages = context.validationMessages
        XCTAssert(messages.isEmpty, "validation messages:\n" + messages.joined(separator: "\n"), file: file, line: line)
    }
}

extension Array where Element == Float {
    /// Uniform values in [-1, 1).
    static func random(count: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Float.random(in: -1..<1, using: &generator) }
    }
}
