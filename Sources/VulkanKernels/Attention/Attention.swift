/// How the four dimensions of attention's Q, K, V and output tensors are ordered. Head dim is always
/// the last (contiguous) one.
public enum AttentionLayout: Sendable, Equatable {
    /// `[batch, heads, sequence, headDim]` (PyTorch SDPA, FlashAttention's internal layout).
    case batchHeadSequence
    /// `[batch, sequence, heads, headDim]` (FlashAttention's API, most checkpoints' projections).
    case batchSequenceHead
}

/// How the keys of one query tile are divided among workgroups on Vulkan ("flash decoding").
public enum AttentionSplit: Sendable, Equatable {
    /// Split when few workgroups would otherwise run (decode: few queries, many keys).
    case automatic
    /// One workgroup sees all keys of its query tile.
    case none
    /// Exactly this many key ranges, merged with the log-sum-exp trick (tests, benchmarks).
    case count(Int)
}

/// Head dims the kernels are built for (every multiple of 4 up to 256 works; these are the common ones).
public let attentionCommonHeadDims = [32, 64, 80, 96, 128, 256]

/// The sizes and element strides of one attention call, checked against each other.
struct AttentionShape {
    var batch: Int, heads: Int, kvHeads: Int
    var queryLength: Int, keyLength: Int, headDim: Int
    var layout: AttentionLayout
    /// Element strides (batch, head, sequence) of the Q / output tensors and of the K / V tensors.
    var queryStrides: (batch: Int, head: Int, sequence: Int)
    var keyStrides: (batch: Int, head: Int, sequence: Int)
    var group: Int { heads / kvHeads }

    static func dims(_ shape: [Int], _ layout: AttentionLayout) -> (batch: Int, heads: Int, sequence: Int, headDim: Int) {
        layout == .batchHeadSequence ? (shape[0], shape[1], shape[2], shape[3]) : (shape[0], shape[2], shape[1], shape[3])
    }

    static func strides(_ dims: (batch: Int, heads: Int, sequence: Int, headDim: Int), _ layout: AttentionLayout)
        -> (batch: Int, head: Int, sequence: Int) {
        let d = dims.headDim
        return layout == .batchHeadSequence ? (dims.heads * dims.sequence * d, dims.sequence * d, d)
                                            : (dims.sequence * dims.heads * d, d, dims.heads * d)
    }

    init(op: String, q: [Int], k: [Int], v: [Int], output: [Int], layout: AttentionLayout) throws {
        let expected = layout == .batchHeadSequence ? "[batch, heads, sequence, headDim]" : "[batch, sequence, heads, headDim]"
        for (name, shape) in [("Q", q), ("K", k), ("V", v), ("output", output)] where shape.count != 4 {
            throw KernelError.invalidShape(op: op, operand: name, shape: shape, expected: expected)
        }
        guard k == v else { throw KernelError.shapeMismatch(op: op + " (K vs V)", lhs: k, rhs: v) }
        guard output == q else { throw KernelError.shapeMismatch(op: op + " (output vs Q)", lhs: output, rhs: q) }
        let qd = Self.dims(q, layout), kd = Self.dims(k, layout)
        guard qd.batch == kd.batch else { throw KernelError.shapeMismatch(op: op + " (batch of Q vs K)", lhs: q, rhs: k) }
        guard qd.headDim == kd.headDim else { throw KernelError.shapeMismatch(op: op + " (head dim of Q vs K)", lhs: q, rhs: k) }
        guard kd.heads > 0, qd.heads % kd.heads == 0 else {
            throw KernelError.shapeMismatch(op: op + " (query heads must be a multiple of key/value heads)", lhs: q, rhs: k)
        }
        guard qd.headDim % 4 == 0, (4...256).contains(qd.headDim) else {
            throw KernelError.invalidParameter(op: op, name: "headDim",
                                               value: "\(qd.headDim) (supported: multiples of 4 up to 256, e.g. \(attentionCommonHeadDims))")
        }
        for (name, shape) in [("Q", q), ("K", k)] where shape.contains(0) { throw KernelError.emptyTensor(op: op, operand: name) }
        batch = qd.batch; heads = qd.heads; kvHeads = kd.heads
        queryLength = qd.sequence; keyLength = kd.sequence; headDim = qd.headDim
        self.layout = layout
        queryStrides = Self.strides(qd, layout)
        keyStrides = Self.strides(kd, layout)
    }

    /// Useful flops: 4·d per attended (query, key) pair (QKᵀ and PV), counting only unmasked pairs of
    /// causal / windowed masks over the full lengths.
    func flops(mask: AttentionMask) -> Double {
        var pairs = 0.0
        let band = mask.diagonalBand
        let offset = mask.alignment == .bottomRight ? keyLength - queryLength : 0
        for i in 0..<queryLength {
            let lower = max(0, i + offset - band.left), upper = min(keyLength - 1, i + offset + band.right)
            pairs += Double(max(0, upper - lower + 1))
        }
        return 4 * Double(headDim) * pairs * Double(batch * heads)
    }
}

extension CommandBatch {
    /// Scaled dot-product attention, fused: `output = softmax(scale·Q·Kᵀ + mask)·V` per batch and head,
    /// without ever storing the `Lq × Lk` score matrix (FlashAttention: Dao et al. 2022, online softmax
    /// of Milakov & Gimelshein 2018). Memory use is linear in the sequence lengths.
    ///
    /// - Q and output: `[batch, heads, Lq, d]`; K and V: `[batch, kvHeads, Lk, d]` (or the
    ///   `.batchSequenceHead` order). `heads` must be a multiple of `kvHeads`: query head `h` reads
    ///   key/value head `h / (heads / kvHeads)` (grouped-query and multi-query attention).
    /// - `d` any multiple of 4 up to 256 (32, 64, 80, 96, 128, 256 are the common ones); any lengths ≥ 1.
    /// - `scale` defaults to `1/√d`. Storage `Float` or `Float16`; products, softmax statistics and
    ///   sums are fp32.
    /// - A query row whose keys are all masked outputs zeros (and log-sum-exp `-∞`), never NaN.
    /// - `logSumExp`, when given (`[batch, heads, Lq]`, fp32), receives `log Σ_j exp(score_ij)` per row.
    /// - `split` divides keys among workgroups on Vulkan (flash decoding); the CPU backend ignores it.
    /// - Throws ``KernelError`` for mismatched shapes, an unsupported head dim, a mask of the wrong shape
    ///   or out-of-range lengths, before anything runs.
    public func attention<Element: FloatingPointElement>(q: Tensor<Element>, k: Tensor<Element>, v: Tensor<Element>,
                                                         into output: Tensor<Element>, mask: AttentionMask = .none,
                                                         scale: Float? = nil, layout: AttentionLayout = .batchHeadSequence,
                                                         logSumExp: Tensor<Float>? = nil, split: AttentionSplit = .automatic) throws {
        let op = "attention"
        try ensureRecording(op)
        try checkOwnership(op, ("Q", q.context), ("K", k.context), ("V", v.context), ("output", output.context))
        let shape = try AttentionShape(op: op, q: q.shape, k: k.shape, v: v.shape, output: output.shape, layout: layout)
        let scale = scale ?? 1 / Float(shape.headDim).squareRoot()
        try checkFinite(op, ("scale", scale))
        try validate(mask, shape, op: op)
        if let logSumExp {
            try checkOwnership(op, ("logSumExp", logSumExp.context))
            guard logSumExp.shape == [shape.batch, shape.heads, shape.queryLength] else {
                throw KernelError.invalidShape(op: op, operand: "logSumExp", shape: logSumExp.shape,
                                               expected: "[\(shape.batch), \(shape.heads), \(shape.queryLength)]")
            }
        }
        if case .count(let n) = split, n < 1 {
            throw KernelError.invalidParameter(op: op, name: "split", value: "\(n) (must be at least 1)")
        }
        if context.isVulkan {
            try encodeAttention(shape, q: q.storage, k: k.storage, v: v.storage, output: output.storage, dtype: Element.dtype,
                                mask: mask, scale: scale, logSumExp: logSumExp?.storage, split: split)
        } else {
            cpuAttention(shape, q: q.storage, k: k.storage, v: v.storage, output: output.storage, dtype: Element.dtype,
                         mask: mask, scale: scale, logSumExp: logSumExp?.storage)
        }
    }

    private func validate(_ mask: AttentionMask, _ s: AttentionShape, op: String) throws {
        if let window = mask.window, window.left < 0 || window.right < 0 {
            throw KernelError.invalidParameter(op: op, name: "mask.window", value: "(left: \(window.left), right: \(window.right)); both must be ≥ 0")
        }
        for (name, lengths, limit) in [("mask.queryLengths", mask.queryLengths, s.queryLength), ("mask.keyLengths", mask.keyLengths, s.keyLength)] {
            guard let lengths else { continue }
            guard lengths.count == s.batch else {
                throw KernelError.invalidShape(op: op, operand: name, shape: [lengths.count], expected: "[\(s.batch)] (one per sequence)")
            }
            if let bad = lengths.first(where: { !(0...limit).contains($0) }) {
                throw KernelError.invalidParameter(op: op, name: name, value: "\(bad) (must be in 0...\(limit))")
            }
        }
        if let slopes = mask.alibiSlopes {
            guard slopes.count == s.heads else {
                throw KernelError.invalidShape(op: op, operand: "mask.alibiSlopes", shape: [slopes.count], expected: "[\(s.heads)] (one per query head)")
            }
            if let bad = slopes.first(where: { !$0.isFinite }) { throw KernelError.invalidParameter(op: op, name: "mask.alibiSlopes", value: "\(bad)") }
        }
        if let bias = mask.bias {
            try checkOwnership(op, ("mask.bias", bias.context))
            let b = bias.shape
            guard b.count == 4, b[0] == 1 || b[0] == s.batch, b[1] == 1 || b[1] == s.heads, b[2] == s.queryLength, b[3] == s.keyLength else {
                throw KernelError.invalidShape(op: op, operand: "mask.bias", shape: b,
                                               expected: "[\(s.batch) or 1, \(s.heads) or 1, \(s.queryLength), \(s.keyLength)]")
            }
        }
        if let layout = mask.blockLayout {
            guard layout.blockRows > 0, layout.blockColumns > 0 else {
                throw KernelError.invalidParameter(op: op, name: "mask.blockLayout", value: "block size \(layout.blockRows)×\(layout.blockColumns)")
            }
            let rows = (s.queryLength + layout.blockRows - 1) / layout.blockRows
            let columns = (s.keyLength + layout.blockColumns - 1) / layout.blockColumns
            guard layout.headCount == 1 || layout.headCount == s.heads, layout.blocks.count == layout.headCount * rows * columns else {
                throw KernelError.invalidShape(op: op, operand: "mask.blockLayout.blocks", shape: [layout.headCount, layout.blocks.count],
                                               expected: "[1 or \(s.heads)] × \(rows) × \(columns) = \(rows * columns) blocks per head")
            }
        }
    }
}

extension ComputeContext {
    /// Fused attention into a new tensor shaped like `q`, in a batch of its own (see
    /// ``CommandBatch/attention(q:k:v:into:mask:scale:layout:logSumExp:split:)``).
    public func attention<Element: FloatingPointElement>(q: Tensor<Element>, k: Tensor<Element>, v: Tensor<Element>,
                                                         mask: AttentionMask = .none, scale: Float? = nil,
                                                         layout: AttentionLayout = .batchHeadSequence,
                                                         logSumExp: Tensor<Float>? = nil,
                                                         split: AttentionSplit = .automatic) throws -> Tensor<Element> {
        let output: Tensor<Element> = try empty(shape: q.shape)
        try batch { try $0.attention(q: q, k: k, v: v, into: output, mask: mask, scale: scale, layout: layout,
                                     logSumExp: logSumExp, split: split) }
        return output
    }
}
