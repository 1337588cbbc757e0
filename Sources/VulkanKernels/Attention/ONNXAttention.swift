import Foundation

/// The attributes of an ONNX `Attention` node (opset 23; the semantics of ONNX 1.22's reference).
public struct ONNXAttentionAttributes: Sendable, Equatable {
    /// Causal masking aligned as ONNX defines it: query `i` sees keys `j ≤ i + offset`, where `offset`
    /// is the past length when `past_key` is given, `nonpad_kv_seqlen[b] − Sq` per batch when only
    /// `nonpad_kv_seqlen` is, and 0 otherwise (top-left).
    public var isCausal: Bool
    /// Defaults to `1/√dk`.
    public var scale: Float?
    /// `cap·tanh(s/cap)` on the scaled scores before the mask is added; 0 turns it off (ONNX's default).
    public var softcap: Float
    /// Heads of Q and of K/V; required for 3D `[batch, sequence, heads·headDim]` inputs.
    public var qNumHeads: Int?
    public var kvNumHeads: Int?
    /// What `qk_matmul_output` holds, as ONNX 1.22's reference computes it: 0 and 1 the scaled (and,
    /// with a softcap, soft-capped) scores `QKᵀ·scale`; 2 those plus the mask (attn_mask, causal and
    /// padding terms, `-∞` where masked); 3 the softmax of mode 2 (rows with no key: zeros).
    public var qkMatmulOutputMode: Int

    public init(isCausal: Bool = false, scale: Float? = nil, softcap: Float = 0, qNumHeads: Int? = nil, kvNumHeads: Int? = nil,
                qkMatmulOutputMode: Int = 0) {
        self.isCausal = isCausal; self.scale = scale; self.softcap = softcap
        self.qNumHeads = qNumHeads; self.kvNumHeads = kvNumHeads; self.qkMatmulOutputMode = qkMatmulOutputMode
    }
}

/// ONNX `Attention`'s `attn_mask`: additive (Q's element type) or boolean (nonzero = attend), of
/// rank 2...4, broadcastable to `[batch, qNumHeads, Sq, totalSequence]` by NumPy's rules; its last
/// dimension may be shorter than the total sequence (past + new keys), the missing keys masked.
public enum ONNXAttentionMask<Element: FloatingPointElement>: Sendable {
    case additive(Tensor<Element>)
    case boolean(Tensor<UInt8>)
}

/// The outputs of ``ComputeContext/onnxAttention(q:k:v:attentionMask:pastKey:pastValue:nonpadKVSequenceLength:attributes:outputPresent:outputQKMatmul:)``.
public struct ONNXAttentionOutputs<Element: FloatingPointElement>: Sendable {
    /// `[batch, Sq, qNumHeads·dv]` for 3D inputs, `[batch, qNumHeads, Sq, dv]` for 4D.
    public var y: Tensor<Element>
    /// `[batch, kvNumHeads, past + Skv, dk]` and `[…, dv]`: past and new keys / values concatenated.
    public var presentKey: Tensor<Element>?
    public var presentValue: Tensor<Element>?
    /// `[batch, qNumHeads, Sq, past + Skv]`, only when asked for (see ``ONNXAttentionAttributes/qkMatmulOutputMode``).
    public var qkMatmulOutput: Tensor<Element>?
}

extension ComputeContext {
    /// ONNX `Attention` (opset 23) with its own semantics, on this context's backend: `Y` comes from
    /// the fused kernel (``CommandBatch/attention(q:k:v:into:mask:scale:softcap:layout:logSumExp:split:)``),
    /// 3D inputs are read in place as `[batch, sequence, heads, headDim]`, and `present_key/value`
    /// are copies of past and new keys/values.
    ///
    /// - Q `[B, Hq, Sq, dk]`, K `[B, Hkv, Skv, dk]`, V `[B, Hkv, Skv, dv]`, or all three 3D
    ///   `[B, S, H·d]` with `qNumHeads` / `kvNumHeads` set. `pastKey` / `pastValue`
    ///   `[B, Hkv, P, dk | dv]` (always 4D), both or neither. `nonpadKVSequenceLength`: valid keys per
    ///   batch over the total `P + Skv` (keys past it are masked).
    /// - `present_key/value` are returned when a past is given or `outputPresent` is true.
    /// - `qk_matmul_output` (when `outputQKMatmul`) is the materialised `[B, Hq, Sq, P + Skv]` score
    ///   matrix, computed on the host after the fused pass (O(Sq·(P+Skv)) memory, one download of Q,
    ///   K and the mask); it is for inspection, not speed.
    /// - Differences from ONNX's reference: a query row with no key left outputs zeros in `Y` (and in
    ///   mode 3), where the reference's softmax gives NaN.
    public func onnxAttention<Element: FloatingPointElement>(
        q: Tensor<Element>, k: Tensor<Element>, v: Tensor<Element>, attentionMask: ONNXAttentionMask<Element>? = nil,
        pastKey: Tensor<Element>? = nil, pastValue: Tensor<Element>? = nil, nonpadKVSequenceLength: [Int]? = nil,
        attributes: ONNXAttentionAttributes = .init(), outputPresent: Bool = false, outputQKMatmul: Bool = false
    ) throws -> ONNXAttentionOutputs<Element> {
        let op = "onnxAttention"
        let a = attributes
        guard q.rank == k.rank, k.rank == v.rank, q.rank == 3 || q.rank == 4 else {
            throw KernelError.invalidShape(op: op, operand: "Q, K, V", shape: [q.rank, k.rank, v.rank], expected: "all rank 3 or all rank 4")
        }
        guard (0...3).contains(a.qkMatmulOutputMode) else {
            throw KernelError.invalidParameter(op: op, name: "qk_matmul_output_mode", value: "\(a.qkMatmulOutputMode) (0...3)")
        }
        guard a.softcap.isFinite, a.softcap >= 0 else {
            throw KernelError.invalidParameter(op: op, name: "softcap", value: "\(a.softcap) (0 = off, else finite and > 0)")
        }
        // 3D [B, S, H·d] is [B, S, H, d] in the sequence-major layout: a reshape, no copy.
        let layout: AttentionLayout = q.rank == 3 ? .batchSequenceHead : .batchHeadSequence
        var q4 = q, k4 = k, v4 = v
        if q.rank == 3 {
            guard let hq = a.qNumHeads, let hkv = a.kvNumHeads, hq > 0, hkv > 0 else {
                throw KernelError.invalidParameter(op: op, name: "q_num_heads / kv_num_heads", value: "required (> 0) for 3D inputs")
            }
            for (name, tensor, heads) in [("Q", q, hq), ("K", k, hkv), ("V", v, hkv)] where tensor.shape[2] % heads != 0 {
                throw KernelError.invalidShape(op: op, operand: name, shape: tensor.shape, expected: "hidden size a multiple of \(heads) heads")
            }
            q4 = try q.reshaped([q.shape[0], q.shape[1], hq, q.shape[2] / hq])
            k4 = try k.reshaped([k.shape[0], k.shape[1], hkv, k.shape[2] / hkv])
            v4 = try v.reshaped([v.shape[0], v.shape[1], hkv, v.shape[2] / hkv])
        } else {
            for (name, given, actual) in [("q_num_heads", a.qNumHeads, q.shape[1]), ("kv_num_heads", a.kvNumHeads, k.shape[1])] {
                if let given, given != actual { throw KernelError.invalidParameter(op: op, name: name, value: "\(given) (the 4D tensor has \(actual))") }
            }
        }
        let qd = AttentionShape.dims(q4.shape, layout), kd = AttentionShape.dims(k4.shape, layout), vd = AttentionShape.dims(v4.shape, layout)
        guard (pastKey == nil) == (pastValue == nil) else {
            throw KernelError.invalidParameter(op: op, name: "past_key / past_value", value: "give both or neither")
        }
        let past = pastKey?.shape[safe: 2] ?? 0
        if let pastKey, let pastValue {
            guard pastKey.shape == [kd.batch, kd.heads, past, kd.headDim] else {
                throw KernelError.invalidShape(op: op, operand: "past_key", shape: pastKey.shape, expected: "[\(kd.batch), \(kd.heads), past, \(kd.headDim)]")
            }
            guard pastValue.shape == [vd.batch, vd.heads, past, vd.headDim] else {
                throw KernelError.invalidShape(op: op, operand: "past_value", shape: pastValue.shape, expected: "[\(vd.batch), \(vd.heads), \(past), \(vd.headDim)]")
            }
        }
        let total = past + kd.sequence
        if let lengths = nonpadKVSequenceLength {
            guard lengths.count == qd.batch, lengths.allSatisfy({ (0...total).contains($0) }) else {
                throw KernelError.invalidParameter(op: op, name: "nonpad_kv_seqlen", value: "\(lengths) (one per batch, each in 0...\(total))")
            }
        }

        var mask = AttentionMask(keyLengths: nonpadKVSequenceLength)
        if a.isCausal {
            mask.isCausal = true
            mask.alignment = pastKey != nil ? .offset(past) : nonpadKVSequenceLength != nil ? .bottomRight : .topLeft
        }
        let wantsPresent = pastKey != nil || outputPresent
        let presentKey: Tensor<Element>? = wantsPresent ? try empty(shape: [kd.batch, kd.heads, total, kd.headDim]) : nil
        let presentValue: Tensor<Element>? = wantsPresent ? try empty(shape: [vd.batch, vd.heads, total, vd.headDim]) : nil
        let yShape = layout == .batchHeadSequence ? [qd.batch, qd.heads, qd.sequence, vd.headDim] : [qd.batch, qd.sequence, qd.heads, vd.headDim]
        let y: Tensor<Element> = try empty(shape: yShape)

        try batch { batch in
            if let presentKey, let presentValue {
                try batch.concatenateCache(past: pastKey, new: k4, newLayout: layout, into: presentKey)
                try batch.concatenateCache(past: pastValue, new: v4, newLayout: layout, into: presentValue)
            }
            let target = [qd.batch, qd.heads, qd.sequence, total]
            switch attentionMask {
            case .additive(let tensor)?: mask.bias = try batch.paddedMask(tensor, target: target, fillWord: Element.negativeInfinityWord, op: op)
            case .boolean(let tensor)?: mask.allowed = try batch.paddedMask(tensor, target: target, fillWord: 0, op: op)
            case nil: break
            }
            try batch.attention(q: q4, k: presentKey ?? k4, v: presentValue ?? v4, into: y, mask: mask, scale: a.scale,
                                softcap: a.softcap > 0 ? a.softcap : nil, layout: layout,
                                keyLayout: presentKey != nil ? .batchHeadSequence : layout, logSumExp: nil, split: .automatic)
        }
        let scores = outputQKMatmul
            ? try onnxScores(q: q4, k: presentKey ?? k4, layout: layout, keyLayout: presentKey != nil ? .batchHeadSequence : layout,
                             mask: mask, attributes: a)
            : nil
        return ONNXAttentionOutputs(y: try y.reshaped(q.rank == 3 ? [qd.batch, qd.sequence, qd.heads * vd.headDim] : yShape),
                                    presentKey: presentKey, presentValue: presentValue, qkMatmulOutput: scores)
    }

    /// ONNX's `qk_matmul_output`, materialised on the host in fp64 from Q, K and the resolved mask.
    private func onnxScores<Element: FloatingPointElement>(q: Tensor<Element>, k: Tensor<Element>, layout: AttentionLayout,
                                                            keyLayout: AttentionLayout, mask: AttentionMask,
                                                            attributes a: ONNXAttentionAttributes) throws -> Tensor<Element> {
        let qd = AttentionShape.dims(q.shape, layout), kd = AttentionShape.dims(k.shape, keyLayout)
        let qs = AttentionShape.strides(qd, layout), ks = AttentionShape.strides(kd, keyLayout)
        let qv = try q.toArray().map { Double(Float($0)) }, kv = try k.toArray().map { Double(Float($0)) }
        let target = [qd.batch, qd.heads, qd.sequence, kd.sequence]
        let bias = try (mask.bias as? Tensor<Float>)?.toArray().map(Double.init) ?? (mask.bias as? Tensor<Float16>)?.toArray().map { Double(Float($0)) }
            ?? (mask.bias as? Tensor<BFloat16>)?.toArray().map { Double($0.floatValue) }
        let biasStrides = mask.bias.flatMap { AttentionMask.broadcastStrides($0.shape, to: target) } ?? [0, 0, 0, 0]
        let allowed = try mask.allowed?.toArray()
        let allowedStrides = mask.allowed.flatMap { AttentionMask.broadcastStrides($0.shape, to: target) } ?? [0, 0, 0, 0]
        let scale = Double(a.scale ?? 1 / Float(qd.headDim).squareRoot()), cap = Double(a.softcap)
        let group = qd.heads / kd.heads
        var out = [Element](repeating: 0, count: target.reduce(1, *))
        var row = [Double](repeating: 0, count: kd.sequence)
        for b in 0..<qd.batch {
            let validKeys = mask.keyLengths?[b] ?? kd.sequence
            let offset = mask.alignment.offset(queryLength: qd.sequence, keyLength: validKeys)
            for h in 0..<qd.heads {
                for i in 0..<qd.sequence {
                    for j in 0..<kd.sequence {
                        var dot = 0.0
                        for e in 0..<qd.headDim {
                            dot += qv[b * qs.batch + h * qs.head + i * qs.sequence + e] * kv[b * ks.batch + (h / group) * ks.head + j * ks.sequence + e]
                        }
                        var s = dot * scale
                        if cap > 0 { s = cap * Foundation.tanh(s / cap) }
                        if a.qkMatmulOutputMode >= 2 {
                            let index = [b, h, i, j]
                            let keep = j < validKeys && (!mask.isCausal || j <= i + offset)
                                && (allowed.map { $0[zip(index, allowedStrides).map(*).reduce(0, +)] != 0 } ?? true)
                            s = keep ? s + (bias.map { $0[zip(index, biasStrides).map(*).reduce(0, +)] } ?? 0) : -.infinity
                        }
                        row[j] = s
                    }
                    if a.qkMatmulOutputMode == 3 {
                        let top = row.max() ?? -.infinity
                        let weights = row.map { top == -.infinity || $0 == -.infinity ? 0 : Foundation.exp($0 - top) }
                        let sum = weights.reduce(0, +)
                        row = weights.map { sum > 0 ? $0 / sum : 0 }
                    }
                    let base = ((b * qd.heads + h) * qd.sequence + i) * kd.sequence
                    for j in 0..<kd.sequence { out[base + j] = Element(Float(row[j])) }
                }
            }
        }
        return try tensor(out, shape: target)
    }
}

extension CommandBatch {
    /// `into[b, h, 0..<P] = past[b, h]`, `into[b, h, P..<P+S] = new[b, h]` with `into` and `past` in
    /// `[batch, heads, sequence, headDim]` and `new` in `newLayout`: one copy region per (batch, head)
    /// run, or per (batch, head, position) row when `new` is sequence-major.
    func concatenateCache<Element: FloatingPointElement>(past: Tensor<Element>?, new: Tensor<Element>, newLayout: AttentionLayout,
                                                         into present: Tensor<Element>) throws {
        let bytes = MemoryLayout<Element>.stride
        let n = AttentionShape.dims(new.shape, newLayout), total = present.shape[2], d = n.headDim
        let pastLength = past?.shape[2] ?? 0
        var pastRegions: [(sourceOffset: Int, destinationOffset: Int, bytes: Int)] = []
        var newRegions: [(sourceOffset: Int, destinationOffset: Int, bytes: Int)] = []
        let newStrides = AttentionShape.strides(n, newLayout)
        for run in 0..<(n.batch * n.heads) {
            let b = run / n.heads, h = run % n.heads
            pastRegions.append((run * pastLength * d * bytes, run * total * d * bytes, pastLength * d * bytes))
            if newLayout == .batchHeadSequence {
                newRegions.append((run * n.sequence * d * bytes, (run * total + pastLength) * d * bytes, n.sequence * d * bytes))
            } else {
                for s in 0..<n.sequence {
                    newRegions.append(((b * newStrides.batch + h * newStrides.head + s * newStrides.sequence) * bytes,
                                       (run * total + pastLength + s) * d * bytes, d * bytes))
                }
            }
        }
        if let past { try copy(from: past.storage, to: present.storage, regions: pastRegions) }
        try copy(from: new.storage, to: present.storage, regions: newRegions)
    }

    /// The mask itself when its last dimension covers every key, else a copy widened to `totalKeys`
    /// columns with the missing ones set to `fillWord` (−∞ or false): ONNX pads short masks so.
    func paddedMask<Element: TensorElement>(_ mask: Tensor<Element>, target: [Int], fillWord: UInt32, op: String) throws -> Tensor<Element> {
        try checkOwnership(op, ("attn_mask", mask.context))
        let totalKeys = target[3]
        guard (2...4).contains(mask.rank), let columns = mask.shape.last, columns <= totalKeys, columns > 0,
              AttentionMask.broadcastStrides(Array(mask.shape.dropLast()) + [totalKeys], to: target) != nil else {
            throw KernelError.invalidShape(op: op, operand: "attn_mask", shape: mask.shape,
                                           expected: "rank 2...4, broadcastable to [batch, q_num_heads, Sq, total keys] = \(target) "
                                               + "(the last dimension may be shorter than the total; missing keys are masked)")
        }
        if columns == totalKeys { return mask }
        var shape = mask.shape
        shape[shape.count - 1] = totalKeys
        let padded: Tensor<Element> = try context.empty(shape: shape)
        let bytes = MemoryLayout<Element>.stride
        try fill(padded.storage, word: fillWord)
        let rows = mask.count / columns
        try copy(from: mask.storage, to: padded.storage,
                 regions: (0..<rows).map { ($0 * columns * bytes, $0 * totalKeys * bytes, columns * bytes) })
        return padded
    }
}

extension FloatingPointElement {
    /// Two −∞ of this type packed in a 32-bit fill word.
    static var negativeInfinityWord: UInt32 {
        switch dtype {
        case .float16: 0xfc00_fc00
        case .bfloat16: 0xff80_ff80
        default: 0xff80_0000
        }
    }
}

private extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
