/// A `Float`, `Float16` or `BFloat16` tensor: attention's additive bias may be any of them, whatever Q's
/// type (ONNX masks have Q's type).
public protocol FloatingPointTensor: AnyObject, Sendable {
    var shape: [Int] { get }
    var dtype: DType { get }
    var context: ComputeContext { get }
}

extension Tensor: FloatingPointTensor where Element: FloatingPointElement {}

/// Which keys each query row of ``CommandBatch/attention(q:k:v:into:mask:scale:softcap:layout:logSumExp:split:)``
/// may attend to, and what is added to its scores. The parts combine: a key is attended to only when
/// every part allows it, and the additive parts (bias, ALiBi) are summed.
///
/// Positions are measured against a *diagonal*: query row `i` of a sequence with `Lq` queries and
/// `Lk` keys sits at key position `i + offset`, where `offset = Lk − Lq` for ``DiagonalAlignment/bottomRight``
/// (FlashAttention ≥ 2.1, KV-cache decoding: the last query sees every key), `offset = 0` for
/// ``DiagonalAlignment/topLeft`` (PyTorch `is_causal`, ONNX without a cache) and `offset = n` for
/// ``DiagonalAlignment/offset(_:)`` (ONNX with `past_key`: `n` = past length). `Lq` and `Lk` are the
/// per-sequence lengths when ``queryLengths`` / ``keyLengths`` are given.
public struct AttentionMask: Sendable {
    /// Where the diagonal that causal masks, sliding windows and ALiBi measure against lies.
    public enum DiagonalAlignment: Sendable, Equatable {
        /// Query `i` aligns with key `i + Lk − Lq` (the last query with the last key).
        case bottomRight
        /// Query `i` aligns with key `i` (the first query with the first key).
        case topLeft
        /// Query `i` aligns with key `i + n` in every sequence (`n` keys precede the queries, whatever
        /// the lengths); `.offset(0)` is `.topLeft`.
        case offset(Int)

        /// The diagonal offset for a sequence of `queryLength` queries and `keyLength` keys.
        func offset(queryLength: Int, keyLength: Int) -> Int {
            switch self {
            case .bottomRight: keyLength - queryLength
            case .topLeft: 0
            case .offset(let n): n
            }
        }
    }

    /// Query `i` sees keys `j` with `i + offset − left ≤ j ≤ i + offset + right` (local attention).
    public struct SlidingWindow: Sendable, Equatable {
        public var left: Int
        public var right: Int
        public init(left: Int, right: Int) { self.left = left; self.right = right }
    }

    /// A block-sparse pattern: query block `i` (rows `i·blockRows ..< (i+1)·blockRows`) attends to key
    /// block `j` only when `blocks[h][i][j] != 0`. `headCount` is 1 (one pattern for every head) or the
    /// number of query heads; `blocks` is `[headCount, ceil(Lq / blockRows), ceil(Lk / blockColumns)]`
    /// row-major, over the tensors' full sequence lengths.
    public struct BlockLayout: Sendable, Equatable {
        public var blockRows: Int
        public var blockColumns: Int
        public var headCount: Int
        public var blocks: [UInt8]
        public init(blockRows: Int, blockColumns: Int, headCount: Int = 1, blocks: [UInt8]) {
            self.blockRows = blockRows; self.blockColumns = blockColumns; self.headCount = headCount; self.blocks = blocks
        }
    }

    /// Keys after the diagonal are masked (`j > i + offset`).
    public var isCausal = false
    public var alignment = DiagonalAlignment.bottomRight
    public var window: SlidingWindow?
    /// Valid queries per sequence (`[batch]`): rows at or past it are padding and output zeros.
    public var queryLengths: [Int]?
    /// Valid keys per sequence (`[batch]`): keys at or past it are never read (key padding, KV caches).
    public var keyLengths: [Int]?
    /// ALiBi (Press et al. 2022): `−slope[h] · |i + offset − j|` added to the scaled score of query head `h`.
    public var alibiSlopes: [Float]?
    /// Added to the (soft-capped) scaled scores: a `Float`, `Float16` or `BFloat16` tensor of rank 1...4 that
    /// broadcasts to `[batch, heads, Lq, Lk]` by NumPy's rules (dimensions aligned from the right, each
    /// equal or 1; so a 3D `[X, Lq, Lk]` has X on the *heads* axis). `-∞` entries mask the pair; a row
    /// left with no key outputs zeros. `+∞` or NaN entries give undefined results.
    public var bias: (any FloatingPointTensor)?
    /// A boolean mask, nonzero = the query may attend the key, broadcast like ``bias``.
    public var allowed: Tensor<UInt8>?
    public var blockLayout: BlockLayout?

    public init(isCausal: Bool = false, alignment: DiagonalAlignment = .bottomRight, window: SlidingWindow? = nil,
                queryLengths: [Int]? = nil, keyLengths: [Int]? = nil, alibiSlopes: [Float]? = nil,
                bias: (any FloatingPointTensor)? = nil, allowed: Tensor<UInt8>? = nil, blockLayout: BlockLayout? = nil) {
        self.isCausal = isCausal; self.alignment = alignment; self.window = window
        self.queryLengths = queryLengths; self.keyLengths = keyLengths; self.alibiSlopes = alibiSlopes
        self.bias = bias; self.allowed = allowed; self.blockLayout = blockLayout
    }

    /// The element strides (batch, head, query, key) that read a row-major tensor of `shape` broadcast
    /// to `target` (rank 4) by NumPy's rules, 0 along broadcast dimensions; nil when it does not broadcast.
    static func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int]? {
        guard (1...4).contains(shape.count) else { return nil }
        let padded = [Int](repeating: 1, count: 4 - shape.count) + shape
        var strides = [Int](repeating: 0, count: 4), running = 1
        for axis in (0..<4).reversed() {
            guard padded[axis] == target[axis] || padded[axis] == 1 else { return nil }
            strides[axis] = padded[axis] == 1 ? 0 : running
            running *= padded[axis]
        }
        return strides
    }

    /// The bias's storage and element type.
    var biasStorage: (storage: Storage, dtype: DType)? {
        if let t = bias as? Tensor<Float> { return (t.storage, .float32) }
        if let t = bias as? Tensor<Float16> { return (t.storage, .float16) }
        if let t = bias as? Tensor<BFloat16> { return (t.storage, .bfloat16) }
        return nil
    }

    /// Every query sees every key.
    public static var none: AttentionMask { AttentionMask() }
    /// Causal, aligned bottom-right unless told otherwise.
    public static func causal(_ alignment: DiagonalAlignment = .bottomRight) -> AttentionMask {
        AttentionMask(isCausal: true, alignment: alignment)
    }

    /// The ALiBi slopes of the paper for `heads` heads: the geometric sequence starting at 2^(−8/n).
    public static func standardALiBiSlopes(heads: Int) -> [Float] {
        // Press et al., "Train Short, Test Long", section 3: for n a power of two, slope_h = 2^(−8h/n);
        // otherwise the closest power of two's slopes, then every other slope of the next one.
        func powerOfTwoSlopes(_ n: Int) -> [Float] { (1...n).map { Float(pow(2.0, -8.0 * Double($0) / Double(n))) } }
        guard heads > 0 else { return [] }
        var closest = 1
        while closest * 2 <= heads { closest *= 2 }
        var slopes = powerOfTwoSlopes(closest)
        if closest < heads { slopes += powerOfTwoSlopes(2 * closest).enumerated().filter { $0.offset % 2 == 0 }.map(\.element).prefix(heads - closest) }
        return slopes
    }

    // MARK: Resolved per sequence

    /// The key range `[lower, upper]` around the diagonal that causal + window allow, as offsets from
    /// the diagonal; `Int.max / 4` stands for "unbounded" so that sums cannot overflow.
    var diagonalBand: (left: Int, right: Int) {
        let unbounded = Int(Int32.max / 4)
        let left = window.map { min($0.left, unbounded) } ?? unbounded
        var right = window.map { min($0.right, unbounded) } ?? unbounded
        if isCausal { right = min(right, 0) }
        return (left, right)
    }

    /// True when some query may not see some key (anything but `.none`).
    var restrictsKeys: Bool {
        isCausal || window != nil || queryLengths != nil || keyLengths != nil || blockLayout != nil || allowed != nil
    }
}

import Foundation
