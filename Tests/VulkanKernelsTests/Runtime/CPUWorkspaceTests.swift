@testable import VulkanKernels
import XCTest

/// The scratch buffer the CPU kernels keep between calls: reused when free and large enough, never
/// handed to two callers at once, never kept above its size limit.
final class CPUWorkspaceTests: XCTestCase {
    func testReuseNestingAndSizeLimit() {
        let megabyte = 1 << 20
        let first = CPUWorkspace.withBuffer(bytes: megabyte) { pointer -> UInt in
            // Every byte is writable, and the start is 64-byte aligned.
            pointer.initializeMemory(as: UInt8.self, repeating: 0xA5, count: megabyte)
            XCTAssertEqual(UInt(bitPattern: pointer) % 64, 0)
            return UInt(bitPattern: pointer)
        }
        // A later call of at most that size gets the same buffer back.
        let again = CPUWorkspace.withBuffer(bytes: megabyte / 2) { UInt(bitPattern: $0) }
        XCTAssertEqual(again, first)
        // A call made while the buffer is in use (another thread's product) gets a buffer of its own.
        CPUWorkspace.withBuffer(bytes: megabyte) { outer in
            CPUWorkspace.withBuffer(bytes: megabyte) { inner in
                XCTAssertNotEqual(UInt(bitPattern: inner), UInt(bitPattern: outer))
                inner.initializeMemory(as: UInt8.self, repeating: 1, count: megabyte)
                outer.initializeMemory(as: UInt8.self, repeating: 2, count: megabyte)
                XCTAssertEqual(inner.load(fromByteOffset: megabyte - 1, as: UInt8.self), 1)
            }
        }
        // A buffer above the limit is freed after use; the one kept before stays kept.
        let kept = CPUWorkspace.withBuffer(bytes: megabyte) { UInt(bitPattern: $0) }
        let large = CPUWorkspace.withBuffer(bytes: CPUWorkspace.retainedLimit + 64) { UInt(bitPattern: $0) }
        XCTAssertNotEqual(large, kept)
        XCTAssertEqual(CPUWorkspace.withBuffer(bytes: megabyte) { UInt(bitPattern: $0) }, kept)
    }
}
