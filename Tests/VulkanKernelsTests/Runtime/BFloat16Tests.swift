import CKernels
import Foundation
import VulkanKernels
import XCTest

/// The bfloat16 storage type: every one of the 65,536 bit patterns against a float64 reference, in
/// Swift (`BFloat16`) and in the C conversions the CPU paths use (`vkk_widen_bf16`, `vkk_narrow_bf16`)
/// on every path this CPU runs (scalar, AVX2, AVX-512 with AVX512-BF16's vcvtneps2bf16 where present).
final class BFloat16Tests: XCTestCase {
    override func tearDown() {
        vkk_cpu_set_path(-1)
        super.tearDown()
    }

    /// The value of bf16 bits, computed from the fields in float64 (not through a shift): (−1)^s ·
    /// 2^(e−127) · (1 + m/128) for normal numbers, 2^−126 · m/128 for subnormals; nil for NaN.
    static func reference(_ bits: UInt16) -> Double? {
        let sign: Double = bits & 0x8000 != 0 ? -1 : 1
        let exponent = Int((bits >> 7) & 0xff), mantissa = Double(bits & 0x7f)
        if exponent == 0xff { return mantissa == 0 ? sign * .infinity : nil }
        if exponent == 0 { return sign * mantissa / 128 * 0x1p-126 }
        return sign * (1 + mantissa / 128) * Foundation.pow(2, Double(exponent - 127))
    }

    /// The finite bf16 inputs a narrowing must get right: for each pattern p (positive, finite, below the
    /// largest) the float64 midpoint between p and p+1 (a tie: goes to the even one), and the fp32 values
    /// one fp32 ulp either side of it (go to the nearer one). Returns (input, expected bits), both signs.
    static func roundingCases() -> [(Float, UInt16)] {
        var cases: [(Float, UInt16)] = []
        for bits in UInt16(0)..<0x7f80 {
            // Past the largest finite value the next step up would be 2^128, which rounds to infinity.
            let low = reference(bits)!, high = bits == 0x7f7f ? 0x1p128 : reference(bits + 1)!
            let mid = (low + high) / 2   // exact in float64, and in fp32 (9 significant bits)
            let midFloat = Float(mid)
            XCTAssertEqual(Double(midFloat), mid)
            let even = bits & 1 == 0 ? bits : bits + 1
            // bits + 1 == 0x7f80 is infinity: a tie there goes to the even pattern, infinity.
            for (input, expected) in [(midFloat, even), (midFloat.nextDown, bits), (midFloat.nextUp, bits + 1), (Float(low), bits)] {
                cases.append((input, expected))
                cases.append((-input, expected | 0x8000))
            }
        }
        return cases
    }

    func testEveryBitPatternWidensToItsFloat64Value() {
        var mismatches = 0
        for bits in UInt16.min...UInt16.max {
            let value = BFloat16(bitPattern: bits)
            if let expected = Self.reference(bits) {
                if Double(Float(value)) != expected || Float(value).sign != (bits & 0x8000 != 0 ? .minus : .plus) { mismatches += 1 }
                // Round trip: a bf16 value narrows back to itself, signed zeros included.
                if BFloat16(Float(value)).bitPattern != bits { mismatches += 1 }
                if BFloat16(expected).bitPattern != bits { mismatches += 1 }
            } else {
                // NaN: stays NaN through fp32 and back, sign and top payload bits kept, made quiet.
                if !Float(value).isNaN || BFloat16(Float(value)).bitPattern != bits | 0x0040 { mismatches += 1 }
            }
        }
        XCTAssertEqual(mismatches, 0)
    }

    func testNarrowingRoundsToNearestTiesToEvenFromFloatAndDouble() {
        var mismatches = 0
        for (input, expected) in Self.roundingCases() {
            let fromFloat = BFloat16(input).bitPattern, fromDouble = BFloat16(Double(input)).bitPattern
            if fromFloat != expected || fromDouble != expected {
                mismatches += 1
                if mismatches <= 5 {
                    XCTFail(String(format: "%a: Float gives 0x%04x, Double gives 0x%04x, expected 0x%04x", Double(input), fromFloat, fromDouble, expected))
                }
            }
        }
        XCTAssertEqual(mismatches, 0)
        // A Double is rounded once: 1 + 2^-8 + 2^-30 is just above a tie, so it goes up, though its
        // nearest fp32 (1 + 2^-8) is the tie itself and would round down to even.
        XCTAssertEqual(BFloat16(1 + 0x1p-8 + 0x1p-30 as Double).bitPattern, 0x3f81)
        XCTAssertEqual(BFloat16(Float(1 + 0x1p-8 + 0x1p-30 as Double)).bitPattern, 0x3f80)
        // Overflow: past the largest finite value's rounding range goes to infinity.
        XCTAssertEqual(BFloat16(Float.greatestFiniteMagnitude).bitPattern, 0x7f80)
        XCTAssertEqual(BFloat16(-Float.infinity).bitPattern, 0xff80)
        XCTAssertEqual(BFloat16(Float(bitPattern: 0xffa0_0001)).bitPattern, 0xffe0)  // signalling NaN, sign kept, quieted
        XCTAssertEqual(Float(BFloat16.pi), 3.140625)
        XCTAssertEqual(BFloat16.greatestFiniteMagnitude.nextUp, .infinity)
        XCTAssertEqual(BFloat16.leastNonzeroMagnitude.ulp, .leastNonzeroMagnitude)
        XCTAssertEqual((BFloat16(1.5 as Float) + 2.25).floatValue, 3.75)
    }

    func testCConversionsMatchOnEveryPath() {
        let patterns = (UInt16.min...UInt16.max).map { $0 }
        let cases = Self.roundingCases()
        let nanInputs: [Float] = [.nan, -.nan, Float(bitPattern: 0x7f80_0001), Float(bitPattern: 0xffff_ffff), Float(bitPattern: 0x7fc1_2345)]
        let inputs = cases.map(\.0) + nanInputs
        let best = vkk_cpu_best_path_for(vkk_cpu_features())
        for path in Int32(VKK_PATH_SCALAR)...best {
            vkk_cpu_set_path(path)
            let name = String(cString: vkk_cpu_path_name(path))
            // An odd start and count leave tails after every vector width.
            var widened = [Float](repeating: 0, count: patterns.count - 3)
            patterns.withUnsafeBufferPointer { source in
                widened.withUnsafeMutableBufferPointer { vkk_widen_bf16(source.baseAddress! + 3, $0.baseAddress!, Int64($0.count)) }
            }
            var mismatches = 0
            for (index, got) in widened.enumerated() {
                let bits = patterns[index + 3]
                if let expected = Self.reference(bits) {
                    if Double(got) != expected || got.bitPattern >> 16 != UInt32(bits) { mismatches += 1 }
                } else if !got.isNaN || got.bitPattern != UInt32(bits) << 16 { mismatches += 1 }
            }
            XCTAssertEqual(mismatches, 0, "\(name): widening")

            var narrowed = [UInt16](repeating: 0, count: inputs.count - 1)
            inputs.withUnsafeBufferPointer { source in
                narrowed.withUnsafeMutableBufferPointer { vkk_narrow_bf16(source.baseAddress! + 1, $0.baseAddress!, Int64($0.count)) }
            }
            mismatches = 0
            for (index, got) in narrowed.enumerated() {
                let input = inputs[index + 1]
                let expected = index + 1 < cases.count ? cases[index + 1].1 : UInt16(input.bitPattern >> 16) | 0x0040
                if got != expected {
                    mismatches += 1
                    if mismatches <= 5 { XCTFail(String(format: "%@: %a narrows to 0x%04x, expected 0x%04x", name, Double(input), got, expected)) }
                }
            }
            XCTAssertEqual(mismatches, 0, "\(name): narrowing")
        }
    }

    /// softmaxRows has no bf16 kernel: both backends refuse bf16 before running.
    func testSoftmaxRowsRefusesBFloat16() {
        onEveryBackend { context in
            let scores = try context.tensor([BFloat16](repeating: 1, count: 8), shape: [2, 4])
            XCTAssertThrowsError(try context.batch { try $0.softmaxRows(scores) }) { error in
                guard case KernelError.unsupportedDType(_, .bfloat16) = error else { return XCTFail("\(error)") }
            }
        }
    }
}
