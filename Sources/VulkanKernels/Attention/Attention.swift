/// How the four dimensions of attention's Q, K, V and output tensors are ordered. Head dim is always
/// the last (contiguous) one.
public enum AttentionLayout: Sendable, Equatable {
    /// `[batch, heads, sequence, headDim]` (PyTorch SDPA, FlashAttention's internal layout).
    case batchHeadSequence
    /// `[batch, sequence, heads, headDim]` (FlashAttention's API, most checkpoints' projections).
    case batchSequenceHead
}

/// How the keys of one query tile are divided among workgroups on Vulkan ("flash decoding"). On a device
/// with a per-invocation loop cap (lavapipe) the host splits further, whatever the case, so that no
/// workgroup loops over more keys than the cap allows (docs/attention.md, "Known limits").
public enum AttentionSplit: Sendable, Equatable {
    /// Split when few workgroups would otherwise run (decode: few queries, many keys).
    case automatic
    /// One workgroup sees all keys of its query tile.
    case none
    /// This many key ranges (at least: see above), merged with the log-sum-exp trick (tests, benchmarks).
    case count(Int)
}

/// Head dims the kernels are built for (every head dim 1...``attentionMaxHeadDim`` works, for Q/K and V
/// separately; multiples of 4 take the fast path; these are the common ones, 576 being DeepSeek's MLA
/// Q/K head dim with a 512 V head dim).
public let attentionCommonHeadDims = [32, 64, 80, 96, 128, 256, 512, 576]

/// The largest head dim of Q/K and of V: 576, DeepSeek-style multi-head latent attention (512 latent + 64
/// rotary dims for Q·K, 512 for V), the largest in released models and in ggml's `flash_attn_ext` tests.
/// The Vulkan kernel keeps `TILE_Q · ⌈dv / (4·S)⌉` output vec4s and `4 · ⌈dv / (4·S)⌉` V vec4s per lane
/// (Q·K holds nothing per dim), so its registers grow with V's head dim: at dv = 512 on lavapipe (S = 8,
/// 16-row tiles) 256 + 64 vec4s, which measured faster than 8-row tiles (Benchmarks/RESULTS.md); larger
/// head dims are untested and would only grow those arrays further.
public let attentionMaxHeadDim = 576

/// The sizes and element strides of one attention call, checked against each other.
struct AttentionShape {
    var batch: Int, heads: Int, kvHeads: Int
    /// `headDim` is Q's and K's head dim; `valueDim` is V's and the output's.
    var queryLength: Int, keyLength: Int, headDim: Int, valueDim: Int
    /// Element strides (batch, head, sequence) of Q, K, V and the output.
    var queryStrides: (batch: Int, head: Int, sequence: Int)
    var keyStrides: (batch: Int, head: Int, sequence: Int)
    var valueStrides: (batch: Int, head: Int, sequence: Int)
    var outputStrides: (batch: Int, head: Int, sequence: Int)
    /// Element strides (batch, head) of the log-sum-exp output; its row stride is 1.
    var lseStrides: (batch: Int, head: Int)
    var group: Int { heads / kvHeads }
    /// Whether every head dim is a multiple of 4 (the kernels' vec4 fast path).
    var vectorAligned: Bool { headDim % 4 == 0 && valueDim % 4 == 0 }

    static func dims(_ shape: [Int], _ layout: AttentionLayout) -> (batch: Int, heads: Int, sequence: Int, headDim: Int) {
        layout == .batchHeadSequence ? (shape[0], shape[1], shape[2], shape[3]) : (shape[0], shape[2], shape[1], shape[3])
    }

    static func strides(_ dims: (batch: Int, heads: Int, sequence: Int, headDim: Int), _ layout: AttentionLayout)
        -> (batch: Int, head: Int, sequence: Int) {
        let d = dims.headDim
        return layout == .batchHeadSequence ? (dims.heads * dims.sequence * d, dims.sequence * d, d)
                                            : (dims.sequence * dims.heads * d, d, dims.heads * d)
    }

    /// `layout` orders Q and the output, `keyLayout` (default: the same) K and V.
    init(op: String, q: [Int], k: [Int], v: [Int], output: [Int], layout: AttentionLayout,
         keyLayout: AttentionLayout? = nil) throws {
        let keyLayout = keyLayout ?? layout
        func expected(_ l: AttentionLayout) -> String {
            l == .batchHeadSequence ? "[batch, heads, sequence, headDim]" : "[batch, sequence, heads, headDim]"
        }
        for (name, shape, l) in [("Q", q, layout), ("K", k, keyLayout), ("V", v, keyLayout), ("output", output, layout)] where shape.count != 4 {
            throw KernelError.invalidShape(op: op, operand: name, shape: shape, expected: expected(l))
        }
        let qd = Self.dims(q, layout), kd = Self.dims(k, keyLayout), vd = Self.dims(v, keyLayout), od = Self.dims(output, layout)
        guard kd.batch == vd.batch, kd.heads == vd.heads, kd.sequence == vd.sequence else {
            throw KernelError.shapeMismatch(op: op + " (K vs V: batch, heads and sequence must match)", lhs: k, rhs: v)
        }
        guard od.batch == qd.batch, od.heads == qd.heads, od.sequence == qd.sequence, od.headDim == vd.headDim else {
            throw KernelError.shapeMismatch(op: op + " (output must be Q's shape with V's head dim)", lhs: output, rhs: q)
        }
        guard qd.batch == kd.batch else { throw KernelError.shapeMismatch(op: op + " (batch of Q vs K)", lhs: q, rhs: k) }
        guard qd.headDim == kd.headDim else { throw KernelError.shapeMismatch(op: op + " (head dim of Q vs K)", lhs: q, rhs: k) }
        guard kd.heads > 0, qd.heads % kd.heads == 0 else {
            throw KernelError.shapeMismatch(op: op + " (query heads must be a multiple of key/value heads)", lhs: q, rhs: k)
        }
        for (name, d) in [("headDim", qd.headDim), ("value headDim", vd.headDim)] where !(1...attentionMaxHeadDim).contains(d) {
            throw KernelError.invalidParameter(op: op, name: name,
                                               value: "\(d) (supported: 1...\(attentionMaxHeadDim); multiples of 4 are fastest, e.g. \(attentionCommonHeadDims))")
        }
        for (name, shape) in [("Q", q), ("K", k)] where shape.contains(0) { throw KernelError.emptyTensor(op: op, operand: name) }
        batch = qd.batch; heads = qd.heads; kvHeads = kd.heads
        queryLength = qd.sequence; keyLength = kd.sequence; headDim = qd.headDim; valueDim = vd.headDim
        queryStrides = Self.strides(qd, layout)
        keyStrides = Self.strides(kd, keyLayout)
        valueStrides = Self.strides(vd, keyLayout)
        outputStrides = Self.strides(od, layout)
        lseStrides = (heads * queryLength, queryLength)
    }

    /// The shape of a packed call (``AttentionMask/PackedSequences``) as the kernels walk it: one batch
    /// index per sequence, whose rows start at its offsets (batch strides 0), with the longest sequences'
    /// lengths as `queryLength` and `keyLength`; the log-sum-exp keeps the tensors' `[1, heads, total]`.
    func packed(_ p: AttentionMask.PackedSequences) -> AttentionShape {
        var s = self
        var longestQuery = 1, longestKey = 0
        for b in 0..<p.count {
            longestQuery = max(longestQuery, p.queryOffsets[b + 1] - p.queryOffsets[b])
            longestKey = max(longestKey, p.keyOffsets[b + 1] - p.keyOffsets[b])
        }
        s.batch = p.count
        s.queryLength = longestQuery
        s.keyLength = longestKey
        s.queryStrides.batch = 0; s.keyStrides.batch = 0; s.valueStrides.batch = 0; s.outputStrides.batch = 0
        s.lseStrides = (0, queryLength)
        return s
    }

    /// Useful flops: 2·(dk + dv) per attended (query, key) pair (QKᵀ and PV), counting only unmasked
    /// pairs of causal / windowed masks over the full lengths.
    func flops(mask: AttentionMask) -> Double {
        var pairs = 0.0
        let band = mask.diagonalBand
        let offset = mask.alignment.offset(queryLength: queryLength, keyLength: keyLength)
        for i in 0..<queryLength {
            let lower = max(0, i + offset - band.left), upper = min(keyLength - 1, i + offset + band.right)
            pairs += Double(max(0, upper - lower + 1))
        }
        return 2 * Double(headDim + valueDim) * pairs * Double(batch * heads)
    }
}

extension CommandBatch {
    /// Scaled dot-product attention, fused: `output = softmax(softcap(scale·Q·Kᵀ) + mask)·V` per batch
    /// and head, without ever storing the `Lq × Lk` score matrix (FlashAttention: Dao et al. 2022,
    /// online softmax of Milakov & Gimelshein 2018). Memory use is linear in the sequence lengths.
    ///
    /// - Q: `[batch, heads, Lq, dk]`; K: `[batch, kvHeads, Lk, dk]`; V: `[batch, kvHeads, Lk, dv]`;
    ///   output: `[batch, heads, Lq, dv]` (or the `.batchSequenceHead` order). `heads` must be a
    ///   multiple of `kvHeads`: query head `h` reads key/value head `h / (heads / kvHeads)`
    ///   (grouped-query and multi-query attention).
    /// - `dk` and `dv` any of 1...576 (``attentionMaxHeadDim``), independently: DeepSeek's MLA is dk = 576,
    ///   dv = 512. Multiples of 4 (32, 64, 80, 96, 128, 256, 512, 576 are the common ones) take the vector
    ///   fast path; other head dims read one element per fetch on Vulkan (about 4× the
    ///   fetches; no copies). Any lengths ≥ 1.
    /// - `scale` defaults to `1/√dk`. `softcap` (> 0, Gemma 2's logit soft-capping) replaces the scaled
    ///   score `s` by `softcap·tanh(s/softcap)` before the mask's additive terms (as ONNX Attention).
    ///   Storage `Float`, `Float16` or `BFloat16`; products, softmax statistics and sums are fp32.
    /// - A query row whose keys are all masked outputs zeros (and log-sum-exp `-∞`), never NaN.
    /// - `logSumExp`, when given (`[batch, heads, Lq]`, fp32), receives `log Σ_j exp(score_ij)` per row.
    /// - `logSumExp` is `[1, heads, total queries]` for packed sequences; with ``AttentionMask/sinks`` it
    ///   includes the sink (FlashAttention-4's convention).
    /// - `split` divides keys among workgroups on Vulkan (flash decoding); the CPU backend ignores it.
    /// - Variants (all in ``AttentionMask``): causal in either alignment, sliding windows, chunked local
    ///   attention, lengths, left-padded caches, packed sequences, ALiBi per head or per (batch, head),
    ///   additive bias (optionally scaled per head by ggml's `maxBias`), boolean and block-sparse masks,
    ///   attention sinks; docs/attention.md tabulates them with their FlashAttention / ggml / PyTorch names.
    /// - Throws ``KernelError`` for mismatched shapes, an unsupported head dim, a mask of the wrong shape
    ///   or out-of-range lengths, a softcap that is not finite and positive, before anything runs.
    public func attention<Element: FloatingPointElement>(q: Tensor<Element>, k: Tensor<Element>, v: Tensor<Element>,
                                                         into output: Tensor<Element>, mask: AttentionMask = .none,
                                                         scale: Float? = nil, softcap: Float? = nil,
                                                         layout: AttentionLayout = .batchHeadSequence,
                                                         logSumExp: Tensor<Float>? = nil, split: AttentionSplit = .automatic) throws {
        try attention(q: q, k: k, v: v, into: output, mask: mask, scale: scale, softcap: softcap, layout: layout, keyLayout: layout,
                      logSumExp: logSumExp, split: split)
    }

    /// ``attention(q:k:v:into:mask:scale:softcap:layout:logSumExp:split:)`` with K and V in their own
    /// layout (ONNX's 3D Q with a `[batch, heads, sequence, headDim]` KV cache).
    func attention<Element: FloatingPointElement>(q: Tensor<Element>, k: Tensor<Element>, v: Tensor<Element>,
                                                  into output: Tensor<Element>, mask: AttentionMask, scale: Float?, softcap: Float?,
                                                  layout: AttentionLayout, keyLayout: AttentionLayout,
                                                  logSumExp: Tensor<Float>?, split: AttentionSplit) throws {
        let op = "attention"
        try checkOperands(op, ("Q", q.context), ("K", k.context), ("V", v.context), ("output", output.context))
        var shape = try AttentionShape(op: op, q: q.shape, k: k.shape, v: v.shape, output: output.shape, layout: layout, keyLayout: keyLayout)
        let scale = scale ?? 1 / Float(shape.headDim).squareRoot()
        try checkFinite(op, ("scale", scale))
        if let softcap, !(softcap.isFinite && softcap > 0) {
            throw KernelError.invalidParameter(op: op, name: "softcap", value: "\(softcap) (must be finite and > 0; nil turns it off)")
        }
        try validate(mask, shape, op: op)
        if let packed = mask.packed { shape = shape.packed(packed) }
        if let logSumExp {
            try checkOwnership(op, ("logSumExp", logSumExp.context))
            let lseShape = mask.packed == nil ? [shape.batch, shape.heads, shape.queryLength] : [1, shape.heads, shape.lseStrides.head]
            guard logSumExp.shape == lseShape else {
                throw KernelError.invalidShape(op: op, operand: "logSumExp", shape: logSumExp.shape, expected: "\(lseShape)")
            }
        }
        if case .count(let n) = split, n < 1 {
            throw KernelError.invalidParameter(op: op, name: "split", value: "\(n) (must be at least 1)")
        }
        switch backend {
        case .vulkan(let device):
            try encodeAttention(shape, q: q.storage, k: k.storage, v: v.storage, output: output.storage, dtype: Element.dtype,
                                mask: mask, scale: scale, softcap: softcap, logSumExp: logSumExp?.storage, split: split, on: device)
        case .cpu:
            cpuAttention(shape, q: q.storage, k: k.storage, v: v.storage, output: output.storage, dtype: Element.dtype,
                         mask: mask, scale: scale, softcap: softcap, logSumExp: logSumExp?.storage)
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
        // Sequences: the tensors' batch, or the packed count.
        let sequences = mask.packed?.count ?? s.batch
        if let slopes = mask.alibiSlopes {
            guard slopes.count == s.heads || slopes.count == sequences * s.heads else {
                throw KernelError.invalidShape(op: op, operand: "mask.alibiSlopes", shape: [slopes.count],
                                               expected: "[\(s.heads)] (one per query head) or [\(sequences * s.heads)] (batch · heads)")
            }
            if let bad = slopes.first(where: { !$0.isFinite }) { throw KernelError.invalidParameter(op: op, name: "mask.alibiSlopes", value: "\(bad)") }
        }
        if let sinks = mask.sinks {
            guard sinks.count == s.heads else {
                throw KernelError.invalidShape(op: op, operand: "mask.sinks", shape: [sinks.count], expected: "[\(s.heads)] (one per query head)")
            }
            if let bad = sinks.first(where: { !$0.isFinite }) {
                throw KernelError.invalidParameter(op: op, name: "mask.sinks", value: "\(bad) (must be finite)")
            }
        }
        if let chunk = mask.chunk, !(1...Int(Int32.max / 4)).contains(chunk) {
            throw KernelError.invalidParameter(op: op, name: "mask.chunk", value: "\(chunk) (must be in 1...\(Int32.max / 4))")
        }
        if let maxBias = mask.maxBias, !(maxBias.isFinite && maxBias >= 0) {
            throw KernelError.invalidParameter(op: op, name: "mask.maxBias", value: "\(maxBias) (must be finite and ≥ 0)")
        }
        if let starts = mask.keyStarts {
            guard starts.count == s.batch else {
                throw KernelError.invalidShape(op: op, operand: "mask.keyStarts", shape: [starts.count], expected: "[\(s.batch)] (one per sequence)")
            }
            for (b, start) in starts.enumerated() where !(0...(mask.keyLengths?[b] ?? s.keyLength)).contains(start) {
                throw KernelError.invalidParameter(op: op, name: "mask.keyStarts", value: "\(start) at batch \(b) (must be in 0...\(mask.keyLengths?[b] ?? s.keyLength), the sequence's key length)")
            }
        }
        if let packed = mask.packed {
            for (name, conflict) in [("queryLengths", mask.queryLengths != nil), ("keyLengths", mask.keyLengths != nil), ("keyStarts", mask.keyStarts != nil),
                                     ("bias", mask.bias != nil), ("allowed", mask.allowed != nil), ("blockLayout", mask.blockLayout != nil)] where conflict {
                throw KernelError.invalidParameter(op: op, name: "mask.packed", value: "combined with mask.\(name) (packed sequences carry their own lengths; [batch, …] masks have no packed meaning)")
            }
            guard s.batch == 1 else {
                throw KernelError.invalidParameter(op: op, name: "mask.packed", value: "tensors of batch \(s.batch) (packed sequences need batch 1)")
            }
            for (name, offsets, total) in [("queryOffsets", packed.queryOffsets, s.queryLength), ("keyOffsets", packed.keyOffsets, s.keyLength)] {
                guard offsets.count == packed.queryOffsets.count, offsets.count >= 2 else {
                    throw KernelError.invalidShape(op: op, operand: "mask.packed.\(name)", shape: [offsets.count],
                                                   expected: "[sequences + 1] ≥ 2, queryOffsets and keyOffsets alike (\(packed.queryOffsets.count))")
                }
                guard offsets[0] == 0, zip(offsets, offsets.dropFirst()).allSatisfy({ $0 <= $1 }), offsets.last! <= total else {
                    throw KernelError.invalidParameter(op: op, name: "mask.packed.\(name)", value: "\(offsets) (must start at 0, never decrease, end ≤ \(total))")
                }
            }
        }
        let target = [s.batch, s.heads, s.queryLength, s.keyLength]
        for (name, shape, owner) in [("mask.bias", mask.bias?.shape, mask.bias?.context), ("mask.allowed", mask.allowed?.shape, mask.allowed?.context)] {
            guard let shape, let owner else { continue }
            try checkOwnership(op, (name, owner))
            guard AttentionMask.broadcastStrides(shape, to: target) != nil else {
                throw KernelError.invalidShape(op: op, operand: name, shape: shape,
                                               expected: "rank 1...4, broadcastable (NumPy rules) to [batch, heads, Lq, Lk] = \(target)")
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
    /// Fused attention into a new tensor shaped like `q` with V's head dim, in a batch of its own (see
    /// ``CommandBatch/attention(q:k:v:into:mask:scale:softcap:layout:logSumExp:split:)``).
    public func attention<Element: FloatingPointElement>(q: Tensor<Element>, k: Tensor<Element>, v: Tensor<Element>,
                                                         mask: AttentionMask = .none, scale: Float? = nil, softcap: Float? = nil,
                                                         layout: AttentionLayout = .batchHeadSequence,
                                                         logSumExp: Tensor<Float>? = nil,
                                                         split: AttentionSplit = .automatic) throws -> Tensor<Element> {
        var shape = q.shape
        if shape.count == 4, v.rank == 4 { shape[3] = v.shape[3] }
        let output: Tensor<Element> = try empty(shape: shape)
        try batch { try $0.attention(q: q, k: k, v: v, into: output, mask: mask, scale: scale, softcap: softcap, layout: layout,
                                     logSumExp: logSumExp, split: split) }
        return output
    }
}
