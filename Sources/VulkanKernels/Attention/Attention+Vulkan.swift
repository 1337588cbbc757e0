import CVulkan

/// The tiling of one fused-attention dispatch on one device, as attention_fused.comp's header
/// comment specifies it.
struct AttentionKernelPlan {
    let lanes: Int
    let tileQueries: Int
    var tileKeys: Int { 4 * lanes }

    init(shape s: AttentionShape, info: DeviceInfo) {
        // 8 lanes measured best on lavapipe (DESIGN.md); elsewhere the device's own subgroup size.
        lanes = info.subgroupLanes(.onCPUDriversOnly)
        // Decode (a few query rows) wastes no arithmetic on rows that do not exist. On CPU drivers a
        // 32-row tile halves the K and V fetches per multiply-add, which pays while the per-lane output
        // stays small (head dims ≤ 64; no gain at 128: Benchmarks/RESULTS.md, "Measurements behind choices
        // in the code").
        let cap = info.isCPUDriver && lanes == 8 && max(s.headDim, s.valueDim) <= 64 ? 32 : 16
        var rows = 1
        while rows < min(s.group * s.queryLength, cap) { rows *= 2 }
        tileQueries = rows
    }

    /// A plan with a given tile height (tests of the windowing arithmetic).
    init(tileQueries: Int, lanes: Int = 8) {
        self.lanes = lanes
        self.tileQueries = tileQueries
    }

    /// Tiles of (query head, query row) rows per K/V head.
    func tileCount(_ s: AttentionShape) -> Int { (s.group * s.queryLength + tileQueries - 1) / tileQueries }

    /// The most key tiles one workgroup may loop over on `info` (nil: no cap). Under a per-invocation
    /// loop cap (DeviceInfo.loopIterationsPerInvocation, lavapipe) the kernel's iterations grow as key
    /// tiles × (the head-dim loop of ceil(dk / 4) steps + the tile loop and the shorter loops the compiler
    /// may leave rolled: the P·V loop over the lanes and a few more), plus the per-row set-up and store
    /// loops (TILE_Q × (chunks + 2)) once. Measured on lavapipe (Mesa 22, LLVM 15): keys were lost past
    /// ~146 iterations per tile at dk = 576 (15000 keys wrong, 14000 right), i.e. the head-dim loop and one
    /// or two more. Half the cap is kept as margin against other compilers' unrolling choices.
    func maxKeyTilesPerWorkgroup(_ s: AttentionShape, info: DeviceInfo) -> Int? {
        guard let cap = info.loopIterationsPerInvocation else { return nil }
        let chunks = ((s.valueDim + 3) / 4 + lanes - 1) / lanes
        let perTile = (s.headDim + 3) / 4 + lanes + 4
        return max(1, (cap / 2 - tileQueries * (chunks + 2)) / perTile)
    }

    /// Key ranges per query tile: split when too few workgroups would run to fill the device and
    /// there are enough keys to share (each split keeps at least 512 keys).
    func splitCount(_ split: AttentionSplit, shape s: AttentionShape, info: DeviceInfo) -> Int {
        let groups = tileCount(s) * s.batch * s.kvHeads
        let keyTiles = (s.keyLength + tileKeys - 1) / tileKeys
        switch split {
        case .none: return 1
        case .count(let n): return min(n, keyTiles)
        case .automatic:
            let wanted = info.isCPUDriver ? 8 : 512
            guard groups < wanted else { return 1 }
            return max(1, min((wanted + groups - 1) / groups, s.keyLength / 512))
        }
    }
}

/// One dispatch of the fused kernel: query tiles × batch·kvHead indices, storing only the tile rows in
/// `rows` (rows of one index's group · Lq), whose output elements lie in `firstElement ..< endElement`
/// (bound as one storage buffer range).
struct AttentionOutputWindow: Equatable {
    var tiles: Range<Int>
    var z: Range<Int>
    var rows: Range<Int>
    var firstElement: Int
    var endElement: Int
}

extension AttentionKernelPlan {
    /// Dispatch windows whose output ranges fit one storage binding of `limit` bytes (one window when the
    /// whole output fits): whole batch·kvHead indices together while they fit, else runs of query rows
    /// of one query head (contiguous in either layout), each as long as fits. Window starts are rounded
    /// down to `alignment` bytes.
    func outputWindows(_ s: AttentionShape, elementBytes: Int, alignment: Int, limit: Int) throws -> [AttentionOutputWindow] {
        let zCount = s.batch * s.kvHeads, groupRows = s.group * s.queryLength
        let alignElements = alignment / elementBytes
        let o = s.outputStrides
        let lastRow = (s.queryLength - 1) * o.sequence + s.valueDim
        // Index z's heads start at rowStart(z, 0); its last element is that of head group − 1, row Lq − 1,
        // or of head 0's last row when heads are interleaved (sequence stride > head stride); the
        // maximum covers both. Starts and ends grow with z (positive strides, a batch holds all its heads).
        func rowStart(_ z: Int, _ headOffset: Int) -> Int {
            (z / s.kvHeads) * o.batch + ((z % s.kvHeads) * s.group + headOffset) * o.head
        }
        func wholeIndices(_ z: Range<Int>) -> AttentionOutputWindow {
            let end = (0..<s.group).map { rowStart(z.upperBound - 1, $0) + lastRow }.max()!
            return AttentionOutputWindow(tiles: 0..<tileCount(s), z: z, rows: 0..<groupRows,
                                         firstElement: rowStart(z.lowerBound, 0) / alignElements * alignElements, endElement: end)
        }
        func rowRun(_ z: Int, _ headOffset: Int, _ queries: Range<Int>) -> AttentionOutputWindow {
            let first = headOffset * s.queryLength + queries.lowerBound, last = headOffset * s.queryLength + queries.upperBound - 1
            return AttentionOutputWindow(tiles: (first / tileQueries)..<(last / tileQueries + 1), z: z..<(z + 1),
                                         rows: first..<(last + 1),
                                         firstElement: (rowStart(z, headOffset) + queries.lowerBound * o.sequence) / alignElements * alignElements,
                                         endElement: rowStart(z, headOffset) + (queries.upperBound - 1) * o.sequence + s.valueDim)
        }
        func fits(_ w: AttentionOutputWindow) -> Bool { (w.endElement - w.firstElement) * elementBytes <= limit }

        if fits(wholeIndices(0..<zCount)) { return [wholeIndices(0..<zCount)] }
        var windows: [AttentionOutputWindow] = []
        var z = 0
        while z < zCount {
            var count = 0
            while z + count < zCount && fits(wholeIndices(z..<(z + count + 1))) { count += 1 }
            if count > 0 {
                windows.append(wholeIndices(z..<(z + count))); z += count; continue
            }
            for headOffset in 0..<s.group {
                // Rows of one head: the span grows with the run's length (binary search for the longest).
                var query = 0
                while query < s.queryLength {
                    guard fits(rowRun(z, headOffset, query..<(query + 1))) else {
                        throw KernelError.exceedsDeviceLimit(op: "attention", what: "output bytes of one row (one storage binding)",
                                                             value: s.valueDim * elementBytes, limit: limit)
                    }
                    var low = 1, high = s.queryLength - query
                    while low < high {
                        let middle = (low + high + 1) / 2
                        if fits(rowRun(z, headOffset, query..<(query + middle))) { low = middle } else { high = middle - 1 }
                    }
                    windows.append(rowRun(z, headOffset, query..<(query + low)))
                    query += low
                }
            }
            z += 1
        }
        return windows
    }
}

extension CommandBatch {
    func encodeAttention(_ s: AttentionShape, q: Storage, k: Storage, v: Storage, output: Storage, dtype: DType,
                         mask: AttentionMask, scale: Float, softcap: Float?, logSumExp: Storage?, split: AttentionSplit,
                         on device: VulkanDevice) throws {
        let op = "attention"
        let info = device.info
        try info.requireStorage(of: dtype, op: op)
        guard info.supportsSubgroupShuffle, info.supportsSubgroupArithmetic else {
            throw KernelError.unsupportedOnDevice(op: op, feature: "subgroup shuffle and arithmetic")
        }
        let plan = AttentionKernelPlan(shape: s, info: info)
        // Packed sequences never split (the merge pass writes the dense [batch, heads, Lq] rows).
        var splits = mask.packed == nil ? plan.splitCount(split, shape: s, info: info) : 1
        // Under a per-invocation loop cap, split (whatever `split` asked) so that no workgroup loops over
        // more key tiles than the cap allows; packed sequences cannot split, so a longer one is refused.
        if let maxTiles = plan.maxKeyTilesPerWorkgroup(s, info: info) {
            if mask.packed != nil {
                let longest = (0..<s.batch).map { mask.keyCount($0, s.keyLength) }.max() ?? 0
                if longest > maxTiles * plan.tileKeys {
                    throw KernelError.exceedsDeviceLimit(op: op, what: "keys of one packed sequence (one workgroup's loop-iteration cap)",
                                                         value: longest, limit: maxTiles * plan.tileKeys)
                }
            } else {
                let keyTiles = (s.keyLength + plan.tileKeys - 1) / plan.tileKeys
                splits = max(splits, (keyTiles + maxTiles - 1) / maxTiles)
            }
        }
        let keysPerSplit = ((s.keyLength + splits - 1) / splits + plan.tileKeys - 1) / plan.tileKeys * plan.tileKeys
        let splitCount = (s.keyLength + keysPerSplit - 1) / keysPerSplit
        let rows = s.batch * s.heads * s.queryLength
        let elementBytes = dtype.byteSize
        if let logSumExp, logSumExp.byteCount > info.maxStorageBufferRange {
            throw KernelError.exceedsDeviceLimit(op: op, what: "log-sum-exp bytes (one storage binding)", value: logSumExp.byteCount,
                                                 limit: info.maxStorageBufferRange)
        }

        // The vec4 fast path when every head dim is a multiple of 4; else one element per texel.
        let width = s.vectorAligned ? 4 : 1
        let texel = BufferBinding.Kind.floatTexels(dtype, vec4: width == 4)
        let (aux, maskFeatures) = try auxiliaryWords(mask, s, plan: plan)
        let features = maskFeatures | (softcap != nil ? 32 : 0)
        let bias = try mask.biasStorage ?? (context.zeros(Float.self, shape: [4]).storage, .float32)
        let allowed = try mask.allowed?.storage ?? context.zeros(UInt8.self, shape: [4]).storage
        let lseTarget = try logSumExp ?? context.empty(Float.self, shape: [1]).storage
        let band = mask.diagonalBand
        let paddedValueDim = (s.valueDim + 3) / 4 * 4

        let splitOutput = splitCount > 1 ? try context.empty(Float.self, shape: [splitCount * rows * paddedValueDim]) : nil
        let splitLse = splitCount > 1 ? try context.empty(Float.self, shape: [splitCount * rows]) : nil
        if let splitOutput, splitOutput.byteCount > info.maxStorageBufferRange || rows * s.valueDim * elementBytes > info.maxStorageBufferRange {
            throw KernelError.exceedsDeviceLimit(op: op, what: "split partial-output or output bytes (one storage binding)",
                                                 value: max(splitOutput.byteCount, rows * s.valueDim * elementBytes),
                                                 limit: info.maxStorageBufferRange)
        }
        // Output strides in elements: the caller's layout, or the dense [split][z][Lq][dv padded to 4] partials.
        let outputStrides: [Int] = splitCount > 1
            ? [s.heads * s.queryLength * paddedValueDim, s.queryLength * paddedValueDim, paddedValueDim, rows * paddedValueDim]
            : [s.outputStrides.batch, s.outputStrides.head, s.outputStrides.sequence, 0]
        let shift: Int = if case .offset(let n) = mask.alignment { n } else { 0 }
        let (qs, ks, vs) = (s.queryStrides, s.keyStrides, s.valueStrides)
        // Input strides in texels of `width` elements; the window members are set per dispatch below.
        var push = Shader.attention_attention_fused.PushConstants(
            qLen: UInt32(s.queryLength), kLen: UInt32(s.keyLength), heads: UInt32(s.heads), group: UInt32(s.group),
            qStrideB: UInt32(qs.batch / width), qStrideH: UInt32(qs.head / width), qStrideS: UInt32(qs.sequence / width),
            kStrideB: UInt32(ks.batch / width), kStrideH: UInt32(ks.head / width), kStrideS: UInt32(ks.sequence / width),
            vStrideB: UInt32(vs.batch / width), vStrideH: UInt32(vs.head / width), vStrideS: UInt32(vs.sequence / width),
            oStrideB: UInt32(outputStrides[0]), oStrideH: UInt32(outputStrides[1]), oStrideS: UInt32(outputStrides[2]),
            oStrideSplit: UInt32(outputStrides[3]),
            scaleLog2: scale * 1.442_695_04, windowLeft: Int32(band.left), windowRight: Int32(band.right),
            bottomRight: mask.alignment == .bottomRight ? 1 : 0, diagonalShift: Int32(clamping: shift), keysPerSplit: UInt32(keysPerSplit),
            softcapLog2: (softcap ?? 1) * 1.442_695_04, tileBase: 0, zBase: 0, outputBase: 0, storeRowLo: 0, storeRowHi: 0)

        // The variant is the output's type (split mode writes fp32 partials) and, for bf16, the inputs'
        // (bf16 is read through unsigned views; fp16 through R16F views of the fp32-input shader).
        let variant: Shader.attention_attention_fused.Variant = switch (dtype, splitCount == 1) {
        case (.float16, true): .f16
        case (.bfloat16, true): .bf16
        case (.bfloat16, false): .bf16_input
        default: .base
        }
        // The bias is read as raw bits whatever its type (BIAS_FORMAT decodes them; its type is not Q's).
        let (biasView, biasFormat): (BufferBinding.Kind, UInt32) = switch bias.dtype {
        case .float16: (.texel(VK_FORMAT_R16_UINT, texelBytes: 2), 1)
        case .bfloat16: (.texel(VK_FORMAT_R16_UINT, texelBytes: 2), 2)
        default: (.texel(VK_FORMAT_R32_UINT, texelBytes: 4), 0)
        }
        let kernel = Kernel<Shader.attention_attention_fused>(
            variant,
            specialization: [UInt32(s.headDim), UInt32(plan.tileQueries), UInt32(plan.lanes), features,
                             logSumExp == nil ? 0 : 1, splitCount > 1 ? 1 : 0, UInt32(s.valueDim), UInt32(width), biasFormat],
            requiredSubgroupSize: plan.lanes)
        let fusedLse = splitLse?.storage ?? lseTarget
        // Output bindings start at a multiple of the offset alignment and of a vec4 (the fast path's stores).
        let alignment = max(info.minStorageBufferOffsetAlignment, 4 * elementBytes)
        let target = splitOutput?.storage ?? output
        let targetElementBytes = splitOutput == nil ? elementBytes : 4
        if mask.packed != nil, output.byteCount > info.maxStorageBufferRange {
            throw KernelError.exceedsDeviceLimit(op: op, what: "packed output bytes (one storage binding)", value: output.byteCount,
                                                 limit: info.maxStorageBufferRange)
        }
        let windows = try mask.packed != nil
            ? [AttentionOutputWindow(tiles: 0..<plan.tileCount(s), z: 0..<(s.batch * s.kvHeads), rows: 0..<(s.group * s.queryLength),
                                     firstElement: 0, endElement: output.byteCount / elementBytes)]
            : splitOutput == nil
            ? plan.outputWindows(s, elementBytes: elementBytes, alignment: alignment, limit: info.maxStorageBufferRange)
            : [AttentionOutputWindow(tiles: 0..<plan.tileCount(s), z: 0..<(s.batch * s.kvHeads), rows: 0..<(s.group * s.queryLength), firstElement: 0,
                                     endElement: splitCount * rows * paddedValueDim)]
        for window in windows {
            push.tileBase = UInt32(window.tiles.lowerBound)
            push.zBase = UInt32(window.z.lowerBound)
            push.outputBase = UInt32(window.firstElement)
            push.storeRowLo = UInt32(window.rows.lowerBound)
            push.storeRowHi = UInt32(window.rows.upperBound)
            try dispatch(kernel, .init(queries: BufferBinding(q, texel), keys: BufferBinding(k, texel), values: BufferBinding(v, texel),
                                       outputBuffer: BufferBinding(target, .storageWrite, byteOffset: window.firstElement * targetElementBytes,
                                                                   byteCount: (window.endElement - window.firstElement) * targetElementBytes),
                                       lseBuffer: BufferBinding(fusedLse, .storageWrite), aux: BufferBinding(aux.storage, .storageRead),
                                       bias: BufferBinding(bias.storage, biasView),
                                       allowedMask: BufferBinding(allowed, .texel(VK_FORMAT_R8_UINT, texelBytes: 1))),
                         push: push, groups: (window.tiles.count, splitCount, window.z.count))
        }

        guard let splitOutput, let splitLse else { return }
        let mergePush = Shader.attention_attention_merge_splits.PushConstants(
            qLen: UInt32(s.queryLength), heads: UInt32(s.heads), dim4: UInt32(paddedValueDim / 4), splits: UInt32(splitCount),
            oStrideB: UInt32(s.outputStrides.batch), oStrideH: UInt32(s.outputStrides.head), oStrideS: UInt32(s.outputStrides.sequence),
            writeLse: logSumExp == nil ? 0 : 1, rows: UInt32(rows), dim: UInt32(s.valueDim))
        try dispatch(Kernel<Shader.attention_attention_merge_splits>(dtype.storageVariant(base: .base, f16: .f16, bf16: .bf16)),
                     .init(partialOutput: BufferBinding(splitOutput.storage, .storageRead), partialLse: BufferBinding(splitLse.storage, .storageRead),
                           outputBuffer: BufferBinding(output, .storageWrite, byteCount: rows * s.valueDim * elementBytes),
                           lseBuffer: BufferBinding(lseTarget, .storageWrite)),
                     push: mergePush, groups: ((rows * paddedValueDim / 4 + 63) / 64, 1, 1))
    }

    /// The aux binding's words (header of offsets, strides and block size, then lengths, ALiBi slopes
    /// and the packed block layout) and the FEATURES specialization bits they imply.
    private func auxiliaryWords(_ mask: AttentionMask, _ s: AttentionShape, plan: AttentionKernelPlan) throws -> (Tensor<UInt32>, UInt32) {
        var words = [UInt32](repeating: 0, count: 23)
        var features: UInt32 = 0
        let target = [s.batch, s.heads, s.queryLength, s.keyLength]
        if let shape = mask.bias?.shape, let strides = AttentionMask.broadcastStrides(shape, to: target) {
            for axis in 0..<4 { words[5 + axis] = UInt32(strides[axis]) }
        }
        if let shape = mask.allowed?.shape, let strides = AttentionMask.broadcastStrides(shape, to: target) {
            for axis in 0..<4 { words[9 + axis] = UInt32(strides[axis]) }
            features |= 64
        }
        words[13] = UInt32(mask.blockLayout?.blockRows ?? 1)
        words[14] = UInt32(mask.blockLayout?.blockColumns ?? 1)
        // Lengths are counts from each sequence's start (packed offsets, left padding).
        let sequences = 0..<s.batch
        if mask.queryLengths != nil || mask.packed != nil {
            words[0] = UInt32(words.count); words += sequences.map { UInt32(mask.queryCount($0, s.queryLength)) }; features |= 1
        }
        if mask.keyLengths != nil || mask.keyStarts != nil || mask.packed != nil {
            words[1] = UInt32(words.count); words += sequences.map { UInt32(mask.keyCount($0, s.keyLength)) }; features |= 1
        }
        if let packed = mask.packed {
            // An empty sequence's start may be the tensor's end: clamp it to a row that exists (never used
            // for anything but a fetch whose result is discarded).
            let totalQueries = s.lseStrides.head
            words[15] = UInt32(words.count); words += sequences.map { UInt32(min(packed.queryOffsets[$0], totalQueries - 1)) }
            words[16] = UInt32(words.count); words += sequences.map { UInt32(packed.keyOffsets[$0]) }
            features |= 512
        } else if let starts = mask.keyStarts {
            words[16] = UInt32(words.count); words += starts.map { UInt32($0) }
            features |= 512
        }
        words[17] = UInt32(s.lseStrides.batch)
        words[18] = UInt32(s.lseStrides.head)
        if let slopes = mask.alibiSlopes, slopes.count != s.heads { words[19] = UInt32(s.heads) }
        if let maxBias = mask.maxBias, mask.bias != nil {
            words[20] = UInt32(words.count); words += AttentionMask.maxBiasSlopes(maxBias, heads: s.heads).map(\.bitPattern)
        }
        if let sinks = mask.sinks {
            words[21] = UInt32(words.count); words += sinks.map(\.bitPattern); features |= 128
        }
        if let chunk = mask.chunk { words[22] = UInt32(chunk); features |= 256 }
        if mask.bias != nil { features |= 2 }
        if let slopes = mask.alibiSlopes {
            words[2] = UInt32(words.count); words += slopes.map(\.bitPattern); features |= 4
        }
        if let layout = mask.blockLayout {
            let perHead = layout.blocks.count / layout.headCount
            words[3] = UInt32(words.count * 4)
            words[4] = layout.headCount == 1 ? 0 : UInt32(perHead)
            var packed = [UInt32](repeating: 0, count: (layout.blocks.count + 3) / 4)
            for (index, block) in layout.blocks.enumerated() { packed[index / 4] |= UInt32(block) << (8 * UInt32(index % 4)) }
            words += packed
            features |= 8
            if layout.blockRows % plan.tileQueries == 0 && layout.blockColumns % plan.tileKeys == 0
                && (s.group == 1 || s.queryLength % plan.tileQueries == 0) { features |= 16 }
        }
        return (try context.tensor(words, shape: [words.count]), features)
    }
}
