/// The bfloat16 storage format: the upper 16 bits of an IEEE binary32 (1 sign bit, 8 exponent bits, 7
/// stored mantissa bits), so it spans fp32's range with 8 significant bits (unit roundoff 2^-8).
///
/// A storage type, as in the kernels: every operation widens to `Float` (exactly, by a 16-bit shift),
/// computes there and rounds the result back to nearest, ties to even. NaNs keep their sign and the top
/// 7 bits of their payload and are made quiet, as AVX512-BF16's `vcvtneps2bf16` does. `BinaryFloatingPoint`
/// is implemented through that round trip, so generic code (`Float(x)`, `BFloat16(someDouble)`, sums,
/// comparisons) works as for `Float16`; conversions from `Double` round once, directly to bfloat16.
@frozen
public struct BFloat16: Sendable, BitwiseCopyable, Hashable {
    /// The stored bits: the upper half of the fp32 bit pattern.
    public var bitPattern: UInt16

    @inlinable public init(bitPattern: UInt16) { self.bitPattern = bitPattern }

    /// The nearest bfloat16 to `value` (ties to even); NaN stays NaN with its sign.
    @inlinable public init(_ value: Float) { bitPattern = BFloat16.roundedBits(value.bitPattern) }

    /// The nearest bfloat16 to `value`, rounded once (not through the nearest `Float`).
    @inlinable public init(_ value: Double) {
        // Round to fp32 toward zero with a sticky low bit (round to odd): fp32 keeps 16 more bits than
        // bfloat16, so rounding that result to nearest-even gives the correctly rounded bfloat16.
        var f = Float(value)
        if f.isFinite && Double(f) != value {
            // Float(value) rounded away from zero: one step back (the bits of a nonzero magnitude).
            if abs(Double(f)) > abs(value) { f = Float(bitPattern: f.bitPattern - 1) }
            f = Float(bitPattern: f.bitPattern | 1)
        }
        bitPattern = BFloat16.roundedBits(f.bitPattern)
    }

    /// fp32 bits rounded to the upper 16 bits, to nearest, ties to even; NaN made quiet, sign kept.
    @inlinable static func roundedBits(_ bits: UInt32) -> UInt16 {
        if bits & 0x7fff_ffff > 0x7f80_0000 { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        return UInt16(truncatingIfNeeded: (bits &+ 0x7fff &+ ((bits >> 16) & 1)) >> 16)
    }

    /// The exact `Float` value.
    @inlinable public var floatValue: Float { Float(bitPattern: UInt32(bitPattern) << 16) }
}

extension Float {
    /// The exact value of `value` (every bfloat16 is an fp32).
    @inlinable public init(_ value: BFloat16) { self = value.floatValue }
}

extension BFloat16: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String { floatValue.description }
    public var debugDescription: String { floatValue.debugDescription }
}

extension BFloat16: ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral {
    @inlinable public init(floatLiteral value: Double) { self.init(value) }
    @inlinable public init(integerLiteral value: Int) { self.init(Double(value)) }
}

extension BFloat16: BinaryFloatingPoint {
    public typealias Magnitude = BFloat16
    public typealias Exponent = Int
    public typealias RawSignificand = UInt16
    public typealias RawExponent = UInt

    @inlinable public static var exponentBitCount: Int { 8 }
    @inlinable public static var significandBitCount: Int { 7 }
    @inlinable public var exponentBitPattern: UInt { UInt((bitPattern >> 7) & 0xff) }
    @inlinable public var significandBitPattern: UInt16 { bitPattern & 0x7f }

    @inlinable public init(sign: FloatingPointSign, exponentBitPattern: UInt, significandBitPattern: UInt16) {
        bitPattern = (sign == .minus ? 0x8000 : 0) | UInt16(truncatingIfNeeded: (exponentBitPattern & 0xff) << 7)
            | (significandBitPattern & 0x7f)
    }

    @inlinable public init(sign: FloatingPointSign, exponent: Int, significand: BFloat16) {
        self.init(Float(sign: sign, exponent: exponent, significand: significand.floatValue))
    }

    @inlinable public init<Source: BinaryFloatingPoint>(_ value: Source) {
        if let f = value as? Float { self.init(f) } else if let b = value as? BFloat16 { self = b } else { self.init(Double(value)) }
    }

    @inlinable public init?<Source: BinaryFloatingPoint>(exactly value: Source) {
        guard !value.isNaN else { return nil }
        let rounded = BFloat16(value)
        guard Double(rounded) == Double(value) else { return nil }
        self = rounded
    }

    @inlinable public init(_ value: Int) { self.init(Double(value)) }
    @inlinable public init<Source: BinaryInteger>(_ value: Source) { self.init(Double(value)) }

    @inlinable public var binade: BFloat16 { BFloat16(floatValue.binade) }
    @inlinable public var significandWidth: Int {
        guard isFinite && !isZero else { return -1 }
        let m = bitPattern & 0x7f
        if isSubnormal { return (15 - m.leadingZeroBitCount) - m.trailingZeroBitCount }
        return m == 0 ? 0 : 7 - m.trailingZeroBitCount
    }

    @inlinable public static var nan: BFloat16 { BFloat16(bitPattern: 0x7fc0) }
    @inlinable public static var signalingNaN: BFloat16 { BFloat16(bitPattern: 0x7fa0) }
    @inlinable public static var infinity: BFloat16 { BFloat16(bitPattern: 0x7f80) }
    @inlinable public static var greatestFiniteMagnitude: BFloat16 { BFloat16(bitPattern: 0x7f7f) }
    @inlinable public static var pi: BFloat16 { BFloat16(bitPattern: 0x4049) }  // rounded toward zero, as Float.pi
    @inlinable public static var leastNormalMagnitude: BFloat16 { BFloat16(bitPattern: 0x0080) }
    @inlinable public static var leastNonzeroMagnitude: BFloat16 { BFloat16(bitPattern: 0x0001) }

    @inlinable public var ulp: BFloat16 {
        guard isFinite else { return .nan }
        let e = exponentBitPattern
        // 2^(e - 127 - 7) for normal e; at or below e = 7 that is 2^-133 (the least subnormal) · 2^(max(e, 1) - 1).
        if e > 7 { return BFloat16(sign: .plus, exponentBitPattern: e - 7, significandBitPattern: 0) }
        return BFloat16(bitPattern: UInt16(1) << UInt16(max(e, 1) - 1))
    }

    @inlinable public var sign: FloatingPointSign { bitPattern & 0x8000 != 0 ? .minus : .plus }
    @inlinable public var exponent: Int { floatValue.exponent }
    @inlinable public var significand: BFloat16 { BFloat16(floatValue.significand) }
    @inlinable public var magnitude: BFloat16 { BFloat16(bitPattern: bitPattern & 0x7fff) }

    @inlinable public static func + (l: BFloat16, r: BFloat16) -> BFloat16 { BFloat16(l.floatValue + r.floatValue) }
    @inlinable public static func - (l: BFloat16, r: BFloat16) -> BFloat16 { BFloat16(l.floatValue - r.floatValue) }
    @inlinable public static func * (l: BFloat16, r: BFloat16) -> BFloat16 { BFloat16(l.floatValue * r.floatValue) }
    @inlinable public static func / (l: BFloat16, r: BFloat16) -> BFloat16 { BFloat16(l.floatValue / r.floatValue) }
    @inlinable public static func += (l: inout BFloat16, r: BFloat16) { l = l + r }
    @inlinable public static func -= (l: inout BFloat16, r: BFloat16) { l = l - r }
    @inlinable public static func *= (l: inout BFloat16, r: BFloat16) { l = l * r }
    @inlinable public static func /= (l: inout BFloat16, r: BFloat16) { l = l / r }
    @inlinable public prefix static func - (x: BFloat16) -> BFloat16 { BFloat16(bitPattern: x.bitPattern ^ 0x8000) }
    @inlinable public mutating func negate() { bitPattern ^= 0x8000 }

    // Computed in fp32 or Double and rounded to bfloat16: remainders are exact in fp32; a square root
    // correctly rounded in Double (53 ≥ 2·8 + 2 bits) stays correctly rounded after the second rounding;
    // a fused product's product is exact in fp32 and its sum rounds twice (none of the kernels use these).
    @inlinable public mutating func formRemainder(dividingBy other: BFloat16) {
        self = BFloat16(floatValue.remainder(dividingBy: other.floatValue))
    }
    @inlinable public mutating func formTruncatingRemainder(dividingBy other: BFloat16) {
        self = BFloat16(floatValue.truncatingRemainder(dividingBy: other.floatValue))
    }
    @inlinable public mutating func formSquareRoot() { self = BFloat16(Double(floatValue).squareRoot()) }
    @inlinable public mutating func addProduct(_ l: BFloat16, _ r: BFloat16) {
        // The product of two 8-bit significands is exact in fp32; one rounding of the sum through Double.
        self = BFloat16(Double(floatValue) + Double(l.floatValue * r.floatValue))
    }
    @inlinable public mutating func round(_ rule: FloatingPointRoundingRule) { self = BFloat16(floatValue.rounded(rule)) }

    @inlinable public var nextUp: BFloat16 { BFloat16(bitPattern: BFloat16.step(bitPattern, up: true)) }
    @inlinable static func step(_ bits: UInt16, up: Bool) -> UInt16 {
        let x = BFloat16(bitPattern: bits)
        if x.isNaN { return bits | 0x0040 }
        if up {
            if bits == 0x7f80 { return bits }                 // +inf
            if bits == 0x8000 || bits == 0x0000 { return 0x0001 }
            return bits & 0x8000 == 0 ? bits + 1 : bits - 1
        }
        if bits == 0xff80 { return bits }                     // -inf
        if bits == 0x8000 || bits == 0x0000 { return 0x8001 }
        return bits & 0x8000 == 0 ? bits - 1 : bits + 1
    }

    @inlinable public func isEqual(to other: BFloat16) -> Bool { floatValue == other.floatValue }
    @inlinable public func isLess(than other: BFloat16) -> Bool { floatValue < other.floatValue }
    @inlinable public func isLessThanOrEqualTo(_ other: BFloat16) -> Bool { floatValue <= other.floatValue }
    @inlinable public func isTotallyOrdered(belowOrEqualTo other: BFloat16) -> Bool {
        floatValue.isTotallyOrdered(belowOrEqualTo: other.floatValue)
    }

    @inlinable public var isNormal: Bool { floatValue.isNormal }
    @inlinable public var isFinite: Bool { floatValue.isFinite }
    @inlinable public var isZero: Bool { bitPattern & 0x7fff == 0 }
    @inlinable public var isSubnormal: Bool { floatValue.isSubnormal }
    @inlinable public var isInfinite: Bool { floatValue.isInfinite }
    @inlinable public var isNaN: Bool { bitPattern & 0x7fff > 0x7f80 }
    @inlinable public var isSignalingNaN: Bool { isNaN && bitPattern & 0x0040 == 0 }
    @inlinable public var isCanonical: Bool { true }

    @inlinable public static func == (l: BFloat16, r: BFloat16) -> Bool { l.isEqual(to: r) }
    @inlinable public static func < (l: BFloat16, r: BFloat16) -> Bool { l.isLess(than: r) }
    @inlinable public func hash(into hasher: inout Hasher) { hasher.combine(isZero ? 0 : bitPattern) }

    @inlinable public func distance(to other: BFloat16) -> BFloat16 { other - self }
    @inlinable public func advanced(by n: BFloat16) -> BFloat16 { self + n }
}
