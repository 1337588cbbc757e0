import CKernels
import XCTest

/// The fp16 → fp32 widening every CPU path uses (CKernels; F16C where the CPU has it).
final class ConversionTests: XCTestCase {
    /// All 65,536 fp16 bit patterns widen exactly: the same fp32 value as Swift's own conversion, signed
    /// zeros and infinities included; NaNs stay NaN with their sign.
    func testEveryHalfBitPatternWidensExactly() {
        let patterns = (0...UInt16.max).map { $0 }
        var widened = [Float](repeating: 0, count: patterns.count)
        patterns.withUnsafeBufferPointer { source in
            widened.withUnsafeMutableBufferPointer { vkk_widen_half(source.baseAddress!, $0.baseAddress!, Int64(source.count)) }
        }
        // A tail shorter than one vector and an unaligned start take the scalar path after the vector loop.
        var tail = [Float](repeating: 0, count: 5)
        patterns.withUnsafeBufferPointer { source in
            tail.withUnsafeMutableBufferPointer { vkk_widen_half(source.baseAddress! + 0x3c01, $0.baseAddress!, 5) }
        }
        var mismatches = 0
        for (index, bits) in patterns.enumerated() {
            let expected = Float(Float16(bitPattern: bits))
            let got = widened[index]
            let same = expected.isNaN ? got.isNaN && got.sign == expected.sign : got.bitPattern == expected.bitPattern
            if !same {
                mismatches += 1
                if mismatches <= 5 { XCTFail(String(format: "fp16 0x%04x: got 0x%08x, expected 0x%08x", bits, got.bitPattern, expected.bitPattern)) }
            }
        }
        XCTAssertEqual(mismatches, 0)
        XCTAssertEqual(tail, (0x3c01..<0x3c06).map { Float(Float16(bitPattern: UInt16($0))) })
    }
}
