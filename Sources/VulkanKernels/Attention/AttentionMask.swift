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
    /// ALiBi (Press et al. 2022): `−slope · |i + offset − j|` added to the scaled score of query head `h`.
    /// Either one slope per query head (`[heads]`: slope `[h]`) or one per sequence and head
    /// (`[batch · heads]`, row-major `[batch, heads]`: slope `[b · heads + h]`, FlashAttention's
    /// `(batch, nheads)` `alibi_slopes`).
    public var alibiSlopes: [Float]?
    /// Added to the (soft-capped) scaled scores: a `Float`, `Float16` or `BFloat16` tensor of rank 1...4 that
    /// broadcasts to `[batch, heads, Lq, Lk]` by NumPy's rules (dimensions aligned from the right, each
    /// equal or 1; so a 3D `[X, Lq, Lk]` has X on the *heads* axis). `-∞` entries mask the pair; a row
    /// left with no key outputs zeros. `+∞` or NaN entries give undefined results.
    public var bias: (any FloatingPointTensor)?
    /// A boolean mask, nonzero = the query may attend the key, broadcast like ``bias``.
    public var allowed: Tensor<UInt8>?
    public var blockLayout: BlockLayout?
    /// Chunked local attention (FlashAttention-3's `attention_chunk`, Llama 4): query `i` sees key `j`
    /// only when both lie in the same chunk of `chunk` diagonal-aligned positions,
    /// `⌊j / chunk⌋ = ⌊(i + offset) / chunk⌋` (floor division, so negative positions of a bottom-right
    /// diagonal with `Lq > Lk` form chunks too). Combines with causal and windows (every part must allow
    /// the key). `chunk ≥ 1`.
    public var chunk: Int?
    /// Attention sinks (gpt-oss; ggml `flash_attn_ext`'s `sinks`; FlashAttention-4's `learnable_sink`): one
    /// logit per query head (`[heads]`, natural-log units, compared with the final scores: after scale,
    /// softcap and additive terms, never scaled or capped itself) that joins each row's softmax
    /// denominator with no value row, so a row's weights sum to less than 1. A query row that sees no key
    /// outputs zeros with a finite log-sum-exp (the sink's logit). The log-sum-exp output includes the
    /// sink, `log(exp(sink) + Σ_j exp(score_j))`, as FlashAttention-4 does (ggml returns no log-sum-exp).
    public var sinks: [Float]?
    /// ggml's `max_bias` (`ggml_soft_max_ext`, `flash_attn_ext`): the additive ``bias`` of query head `h`
    /// is multiplied by ggml's ALiBi slope `m0^(h+1)` for `h < n` and `m1^(2(h−n)+1)` after, with `n` the
    /// largest power of two ≤ heads, `m0 = 2^(−maxBias/n)`, `m1 = 2^(−maxBias/2/n)` (llama.cpp's
    /// positional ALiBi is a position bias scaled this way). `0` multiplies by 1. Applies after softcap,
    /// as in ggml. Has no effect without ``bias``. Finite and ≥ 0.
    public var maxBias: Float?
    /// Left-padded KV caches (FlashAttention's `cache_leftpad`, `[batch]`): sequence `b`'s valid keys are
    /// K/V rows `keyStarts[b] ..< keyLengths[b]` (or `..< Lk`), read in place. Every position the mask
    /// measures (diagonal, windows, chunks, ALiBi, bias and boolean-mask columns) counts from the first
    /// valid key, so sequence `b` has `keyLengths[b] − keyStarts[b]` keys.
    public var keyStarts: [Int]?
    /// Packed variable-length sequences (FlashAttention's `cu_seqlens_q` / `cu_seqlens_k`).
    public var packed: PackedSequences?

    /// Sequences concatenated without padding: Q, K, V and the output have batch 1, and sequence `b`'s
    /// query rows are `queryOffsets[b] ..< queryOffsets[b + 1]` of Q's (and the output's) sequence axis,
    /// its keys `keyOffsets[b] ..< keyOffsets[b + 1]` of K's and V's. Both arrays have one more element
    /// than sequences, start at 0, never decrease and end at most at the tensors' sequence length. The
    /// log-sum-exp output is `[1, heads, total queries]` like the output. Positions are per sequence (the
    /// diagonal of each sequence as with ``queryLengths``/``keyLengths``); rows outside every sequence
    /// are not written. Not combinable with ``queryLengths``, ``keyLengths``, ``keyStarts``, ``bias``,
    /// ``allowed`` or ``blockLayout`` (their `[batch, …]` shapes have no packed meaning here); on Vulkan
    /// packed calls never split keys among workgroups.
    public struct PackedSequences: Sendable, Equatable {
        public var queryOffsets: [Int]
        public var keyOffsets: [Int]
        public init(queryOffsets: [Int], keyOffsets: [Int]) { self.queryOffsets = queryOffsets; self.keyOffsets = keyOffsets }
        var count: Int { queryOffsets.count - 1 }
    }

    public init(isCausal: Bool = false, alignment: DiagonalAlignment = .bottomRight, window: SlidingWindow? = nil,
                queryLengths: [Int]? = nil, keyLengths: [Int]? = nil, alibiSlopes: [Float]? = nil,
                bias: (any FloatingPointTensor)? = nil, allowed: Tensor<UInt8>? = nil, blockLayout: BlockLayout? = nil,
                chunk: Int? = nil, sinks: [Float]? = nil, maxBias: Float? = nil, keyStarts: [Int]? = nil,
                packed: PackedSequences? = nil) {
        self.isCausal = isCausal; self.alignment = alignment; self.window = window
        self.queryLengths = queryLengths; self.keyLengths = keyLengths; self.alibiSlopes = alibiSlopes
        self.bias = bias; self.allowed = allowed; self.blockLayout = blockLayout
        self.chunk = chunk; self.sinks = sinks; self.maxBias = maxBias; self.keyStarts = keyStarts; self.packed = packed
    }

    /// ggml's per-head slopes for `maxBias` (see ``maxBias``).
    static func maxBiasSlopes(_ maxBias: Float, heads: Int) -> [Float] {
        var n = 1
        while n * 2 <= heads { n *= 2 }
        let m0 = pow(2.0, -Double(maxBias) / Double(n)), m1 = pow(2.0, -Double(maxBias) / 2 / Double(n))
        return (0..<heads).map { h in Float(maxBias > 0 ? (h < n ? pow(m0, Double(h + 1)) : pow(m1, Double(2 * (h - n) + 1))) : 1) }
    }

    /// The first key of sequence `b` and its first query row, on the tensors' sequence axes.
    func queryStart(_ b: Int) -> Int { packed?.queryOffsets[b] ?? 0 }
    func keyStart(_ b: Int) -> Int { packed?.keyOffsets[b] ?? keyStarts?[b] ?? 0 }
    /// Sequence `b`'s query and key counts (tensor lengths `lq`, `lk` when nothing says otherwise).
    func queryCount(_ b: Int, _ lq: Int) -> Int {
        if let packed { return packed.queryOffsets[b + 1] - packed.queryOffsets[b] }
        return queryLengths?[b] ?? lq
    }
    func keyCount(_ b: Int, _ lk: Int) -> Int {
        if let packed { return packed.keyOffsets[b + 1] - packed.keyOffsets[b] }
        return (keyLengths?[b] ?? lk) - (keyStarts?[b] ?? 0)
    }

    /// The chunk of diagonal position `d`: its first position (floor division).
    static func chunkStart(_ d: Int, _ chunk: Int) -> Int { d >= 0 ? d / chunk * chunk : -((-d + chunk - 1) / chunk) * chunk }

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
            || chunk != nil || keyStarts != nil || packed != nil
    }
}

import Foundation
