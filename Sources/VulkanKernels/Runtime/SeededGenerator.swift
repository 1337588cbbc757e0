/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014):
/// the library's seeded generator, so that random pruning, generated matrix values and the built-in
/// scene fits are reproducible from their seed on every machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// Stream `stream` of `seed`: a generator whose sequence does not overlap the sequences of nearby
    /// streams. Seeding with `seed + stream × c` would not do: SplitMix64 advances its state by a fixed
    /// increment, so with c equal to that increment stream k + 1 is stream k shifted by one draw, and any
    /// c makes streams k and k + j overlap when j·c is a small multiple of the increment. Here the state
    /// is the SplitMix64 finaliser of (seed, stream), which scatters consecutive streams over 2⁶⁴.
    public init(seed: UInt64, stream: UInt64) {
        state = Self.finalize(seed ^ Self.finalize(stream &+ 0x6A09_E667_F3BC_C909))
    }

    /// SplitMix64's output function (a bijection of UInt64 with full avalanche).
    static func finalize(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.finalize(state)
    }

    /// Uniform in [0, 1), 24 random bits (every value exactly representable as a Float).
    public mutating func unitFloat() -> Float { Float(next() >> 40) / Float(1 << 24) }
}
