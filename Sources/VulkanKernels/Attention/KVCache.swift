extension CommandBatch {
    /// Writes `new` — `n` sequence positions of keys or values — into `cache` at positions
    /// `position ..< position + n`, in place (a KV cache for decoding). Both tensors use `layout`;
    /// batch, heads and head dim must match, and the cache's sequence length is its capacity.
    ///
    /// Attention then reads the cache with ``AttentionMask/keyLengths`` set to the filled length:
    /// positions past it are never read, so the rest of the cache may hold anything.
    ///
    /// On Vulkan this is one copy command (one region per batch·head, or per batch for
    /// `.batchSequenceHead`), ordered after earlier work in the batch that touched the cache.
    public func appendToCache<Element: FloatingPointElement>(_ new: Tensor<Element>, cache: Tensor<Element>, at position: Int,
                                                             layout: AttentionLayout = .batchHeadSequence) throws {
        let op = "appendToCache"
        try checkOperands(op, ("new", new.context), ("cache", cache.context))
        for (name, tensor) in [("new", new.shape), ("cache", cache.shape)] where tensor.count != 4 {
            throw KernelError.invalidShape(op: op, operand: name, shape: tensor, expected: "rank 4 in the attention layout")
        }
        let n = AttentionShape.dims(new.shape, layout), c = AttentionShape.dims(cache.shape, layout)
        guard n.batch == c.batch, n.heads == c.heads, n.headDim == c.headDim else {
            throw KernelError.shapeMismatch(op: op + " (batch, heads and head dim of new vs cache)", lhs: new.shape, rhs: cache.shape)
        }
        guard position >= 0, position + n.sequence <= c.sequence else {
            throw KernelError.invalidParameter(op: op, name: "position",
                                               value: "\(position) (+ \(n.sequence) new positions exceeds the cache capacity \(c.sequence))")
        }
        let bytes = MemoryLayout<Element>.stride
        // Contiguous runs: one per (batch, head) in [B, H, S, D], one per batch in [B, S, H, D].
        var regions: [(sourceOffset: Int, destinationOffset: Int, bytes: Int)] = []
        if layout == .batchHeadSequence {
            for run in 0..<(n.batch * n.heads) {
                regions.append((run * n.sequence * n.headDim * bytes, (run * c.sequence + position) * n.headDim * bytes, n.sequence * n.headDim * bytes))
            }
        } else {
            let row = n.heads * n.headDim
            for b in 0..<n.batch {
                regions.append((b * n.sequence * row * bytes, (b * c.sequence + position) * row * bytes, n.sequence * row * bytes))
            }
        }
        try copy(from: new.storage, to: cache.storage, regions: regions)
    }
}

extension ComputeContext {
    /// ``CommandBatch/appendToCache(_:cache:at:layout:)`` in a batch of its own.
    public func appendToCache<Element: FloatingPointElement>(_ new: Tensor<Element>, cache: Tensor<Element>, at position: Int,
                                                             layout: AttentionLayout = .batchHeadSequence) throws {
        try batch { try $0.appendToCache(new, cache: cache, at: position, layout: layout) }
    }
}
