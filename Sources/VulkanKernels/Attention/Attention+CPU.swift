import CKernels
import Foundation

/// The mask of one attention call resolved for fast per-element evaluation on the CPU.
struct ResolvedAttentionMask: @unchecked Sendable {
    let mask: AttentionMask
    let shape: AttentionShape
    let band: (left: Int, right: Int)
    /// The bias widened to fp32 (a copy for Float16), and its broadcast strides (batch, head, query, key).
    let bias: FloatInput?
    let biasStrides: [Int]
    let allowed: UnsafePointer<UInt8>?
    let allowedStrides: [Int]
    /// ggml's max_bias slope per query head (multiplies the bias), nil without max_bias.
    let biasSlopes: [Float]?

    init(_ mask: AttentionMask, _ shape: AttentionShape) {
        self.mask = mask; self.shape = shape
        band = mask.diagonalBand
        biasSlopes = mask.maxBias.map { AttentionMask.maxBiasSlopes($0, heads: shape.heads) }
        let target = [shape.batch, shape.heads, shape.queryLength, shape.keyLength]
        if let (storage, dtype) = mask.biasStorage, let biasShape = mask.bias?.shape {
            bias = widenedInput(storage, count: biasShape.reduce(1, *), dtype: dtype)
            biasStrides = AttentionMask.broadcastStrides(biasShape, to: target)!
        } else {
            bias = nil; biasStrides = [0, 0, 0, 0]
        }
        if let tensor = mask.allowed {
            allowed = UnsafePointer(tensor.storage.hostPointer!.assumingMemoryBound(to: UInt8.self))
            allowedStrides = AttentionMask.broadcastStrides(tensor.shape, to: target)!
        } else {
            allowed = nil; allowedStrides = [0, 0, 0, 0]
        }
    }

    func queryLength(_ batch: Int) -> Int { mask.queryCount(batch, shape.queryLength) }
    func keyLength(_ batch: Int) -> Int { mask.keyCount(batch, shape.keyLength) }
    func diagonalOffset(_ batch: Int) -> Int { mask.alignment.offset(queryLength: queryLength(batch), keyLength: keyLength(batch)) }

    /// The keys `lower..<upper` that causal, window and key length allow query row `i` to see.
    func keyRange(batch: Int, row i: Int) -> Range<Int> {
        let diagonal = i + diagonalOffset(batch)
        var lower = max(0, diagonal - band.left), upper = min(keyLength(batch), diagonal + band.right + 1)
        if let chunk = mask.chunk {
            let start = AttentionMask.chunkStart(diagonal, chunk)
            lower = max(lower, start); upper = min(upper, start + chunk)
        }
        return lower < upper ? lower..<upper : 0..<0
    }

    /// The additive term of the scaled score (bias + ALiBi), or -∞ when the block layout or the boolean
    /// mask masks the pair; `j` must already be inside `keyRange`.
    func additive(batch: Int, head: Int, row i: Int, key j: Int) -> Float {
        var value: Float = 0
        if let allowed, allowed[batch * allowedStrides[0] + head * allowedStrides[1] + i * allowedStrides[2] + j * allowedStrides[3]] == 0 {
            return -.infinity
        }
        if let layout = mask.blockLayout {
            let rows = (shape.queryLength + layout.blockRows - 1) / layout.blockRows
            let columns = (shape.keyLength + layout.blockColumns - 1) / layout.blockColumns
            let h = layout.headCount == 1 ? 0 : head
            if layout.blocks[(h * rows + i / layout.blockRows) * columns + j / layout.blockColumns] == 0 { return -.infinity }
        }
        if let slopes = mask.alibiSlopes {
            let slope = slopes.count == shape.heads ? slopes[head] : slopes[batch * shape.heads + head]
            value -= slope * Float(abs(i + diagonalOffset(batch) - j))
        }
        if let bias {
            let term = bias.pointer[batch * biasStrides[0] + head * biasStrides[1] + i * biasStrides[2] + j * biasStrides[3]]
            value += biasSlopes.map { $0[head] * term } ?? term
        }
        return value
    }

    var hasAdditiveTerms: Bool { mask.blockLayout != nil || mask.alibiSlopes != nil || bias != nil || allowed != nil }
}

extension CommandBatch {
    /// Tiled online-softmax attention on the CPU threads: each task owns a tile of up to 96 (query head,
    /// query row) rows of the query heads that share one K/V head (so K and V are read once per group, as
    /// in the Vulkan kernel), streams the keys allowed to it in blocks of 64, and keeps a running max, sum
    /// and output per row; memory beyond the inputs is one tile's scores and accumulators per thread.
    func cpuAttention(_ s: AttentionShape, q: Storage, k: Storage, v: Storage, output: Storage, dtype: DType,
                      mask: AttentionMask, scale: Float, softcap: Float?, logSumExp: Storage?) {
        let qCount = s.batch * s.heads * s.queryLength * s.headDim
        let kCount = s.batch * s.kvHeads * s.keyLength * s.headDim
        let qBuffer = widenedInput(q, count: qCount, dtype: dtype)
        // fp16 and bf16 K and V are widened block by block inside the tiles (a decode step reads a long
        // cache once; widening all of it first would triple its traffic and allocate twice its size).
        let halfKV = dtype.isHalfWidthFloat, bf16KV = dtype == .bfloat16
        let kBuffer = halfKV ? nil : widenedInput(k, count: kCount, dtype: dtype)
        let vBuffer = halfKV ? nil : widenedInput(v, count: s.batch * s.kvHeads * s.keyLength * s.valueDim, dtype: dtype)
        let kHalf = UncheckedSendable(UnsafeRawPointer(k.hostPointer!).assumingMemoryBound(to: UInt16.self))
        let vHalf = UncheckedSendable(UnsafeRawPointer(v.hostPointer!).assumingMemoryBound(to: UInt16.self))
        let resolved = ResolvedAttentionMask(mask, s)
        let hasAdditiveTerms = resolved.hasAdditiveTerms
        let streamable = !halfKV && softcap == nil && !hasAdditiveTerms
        let out = UncheckedSendable(output.hostPointer!)
        let lse = UncheckedSendable(logSumExp?.hostPointer?.assumingMemoryBound(to: Float.self))
        let qPointer = UncheckedSendable(qBuffer.pointer)
        let kvPointers = UncheckedSendable((kBuffer?.pointer, vBuffer?.pointer))
        // 96 rows (16 of the AVX-512 path's 6-row register tiles): taller tiles spread each block's
        // softmax bookkeeping over more multiply-adds (4% faster than 48 rows at L = 4096, d = 64).
        let tileRows = 96, keyBlock = Int(VKK_ATTENTION_KEY_BLOCK), dk = s.headDim, d = s.valueDim
        // Tile row R of K/V head kvh: query head kvh·group + R / Lq, query row R % Lq.
        let rowsPerKVHead = s.group * s.queryLength
        let tilesPerKVHead = (rowsPerKVHead + tileRows - 1) / tileRows
        let tasks = s.batch * s.kvHeads * tilesPerKVHead
        // Q's sequence-axis length (packed: every sequence's rows together; else Lq).
        let totalQueries = s.lseStrides.head
        // The streamed tiles of one (sequence, K/V head) share one transposed copy of its keys, made by the
        // first tile a thread runs for that head (the tiles of a head are consecutive tasks): transposing
        // each 64-key block once per tile took 6.5% of prefill at L = 4096, d = 64. Only for keys from the
        // start of each sequence's rows (no packed or offset sequences) and copies up to 32 MiB.
        let transposedKeyCount = (s.keyLength + keyBlock - 1) / keyBlock * keyBlock * dk
        let shareTransposedKeys = streamable && tilesPerKVHead > 1 && mask.packed == nil && mask.keyStarts == nil
            && transposedKeyCount * MemoryLayout<Float>.size <= 32 << 20

        CPUParallel.forEachPiece(tasks, costPerItem: tileRows * s.keyLength * (dk + d) * 2) { range in
            let qp = qPointer.value
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: tileRows * keyBlock)
            let transposedKeys = UnsafeMutablePointer<Float>.allocate(capacity: dk * keyBlock)
            let accumulator = UnsafeMutablePointer<Float>.allocate(capacity: tileRows * d)
            let queryRows = UnsafeMutablePointer<UnsafePointer<Float>?>.allocate(capacity: tileRows)
            // fp16 and bf16 only: this block's keys and values widened to fp32.
            let keyScratch = UnsafeMutablePointer<Float>.allocate(capacity: halfKV ? keyBlock * dk : 0)
            let valueScratch = UnsafeMutablePointer<Float>.allocate(capacity: halfKV ? keyBlock * d : 0)
            defer {
                scores.deallocate(); transposedKeys.deallocate(); accumulator.deallocate(); queryRows.deallocate()
                keyScratch.deallocate(); valueScratch.deallocate()
            }
            var rowMax = [Float](repeating: 0, count: tileRows), rowSum = [Float](repeating: 0, count: tileRows)
            var heads = [Int](repeating: 0, count: tileRows), indices = [Int](repeating: 0, count: tileRows)
            var firstKeys = [Int64](repeating: 0, count: tileRows), endKeys = [Int64](repeating: 0, count: tileRows)
            var headKeys: UnsafeMutablePointer<Float>? = nil
            var headKeysOf: (batch: Int, kvHead: Int)? = nil
            defer { headKeys?.deallocate() }
            for task in range {
                let tile = task % tilesPerKVHead, kvHead = (task / tilesPerKVHead) % s.kvHeads, b = task / (tilesPerKVHead * s.kvHeads)
                let rowCount = min(tileRows, rowsPerKVHead - tile * tileRows)
                let validRows = resolved.queryLength(b), queryStart = mask.queryStart(b), keyStart = mask.keyStart(b)
                for r in 0..<rowCount {
                    let combined = tile * tileRows + r
                    heads[r] = kvHead * s.group + combined / s.queryLength
                    indices[r] = combined % s.queryLength
                    // Rows past the sequence read its last row (packed sequences end where the next begins;
                    // an empty one reads row 0 or the tensor's last), and are never stored.
                    let fetched = min(queryStart + min(indices[r], max(validRows, 1) - 1), max(s.queryLength, totalQueries) - 1)
                    queryRows[r] = qp + b * s.queryStrides.batch + heads[r] * s.queryStrides.head + fetched * s.queryStrides.sequence
                }
                for index in 0..<(rowCount * d) { accumulator[index] = 0 }
                for r in 0..<rowCount { rowMax[r] = -.infinity; rowSum[r] = 0 }
                // Keys any row of the tile may see.
                var tileKeys = Int.max..<Int.max
                for r in 0..<rowCount where indices[r] < validRows {
                    let keys = resolved.keyRange(batch: b, row: indices[r])
                    if keys.isEmpty { continue }
                    tileKeys = min(tileKeys.lowerBound, keys.lowerBound)..<(tileKeys.upperBound == Int.max ? keys.upperBound : max(tileKeys.upperBound, keys.upperBound))
                }
                // Masks that are key ranges only (none, causal, windows, lengths), fp32 K/V and no soft-cap:
                // the whole key range in one C call (vkk_attention_stream), no per-block Swift work.
                if tileKeys.lowerBound != Int.max && streamable {
                    for r in 0..<rowCount {
                        let keys = indices[r] < validRows ? resolved.keyRange(batch: b, row: indices[r]) : 0..<0
                        firstKeys[r] = Int64(keys.lowerBound); endKeys[r] = Int64(keys.upperBound)
                    }
                    let keyRows = kvPointers.value.0! + b * s.keyStrides.batch + kvHead * s.keyStrides.head + keyStart * s.keyStrides.sequence
                    var sharedKeys: UnsafePointer<Float>? = nil
                    if shareTransposedKeys && vkk_attention_uses_transposed_keys(Int64(rowCount)) != 0 {
                        if headKeysOf == nil || headKeysOf! != (b, kvHead) {
                            if headKeys == nil { headKeys = .allocate(capacity: transposedKeyCount) }
                            vkk_attention_transpose_keys(keyRows, Int64(s.keyStrides.sequence), Int64(s.keyLength), Int64(dk), headKeys)
                            headKeysOf = (b, kvHead)
                        }
                        sharedKeys = UnsafePointer(headKeys)
                    }
                    vkk_attention_stream(queryRows, Int64(rowCount), keyRows, Int64(s.keyStrides.sequence),
                                         kvPointers.value.1! + b * s.valueStrides.batch + kvHead * s.valueStrides.head + keyStart * s.valueStrides.sequence, Int64(s.valueStrides.sequence),
                                         Int64(dk), Int64(d), scale, firstKeys, endKeys, &rowMax, &rowSum, accumulator, Int64(d),
                                         sharedKeys, transposedKeys, scores)
                } else if tileKeys.lowerBound != Int.max {
                    let kOffset = b * s.keyStrides.batch + kvHead * s.keyStrides.head + keyStart * s.keyStrides.sequence
                    let vOffset = b * s.valueStrides.batch + kvHead * s.valueStrides.head + keyStart * s.valueStrides.sequence
                    for block in stride(from: tileKeys.lowerBound, to: tileKeys.upperBound, by: keyBlock) {
                        let blockKeys = block..<min(tileKeys.upperBound, block + keyBlock)
                        // This block's K and V rows in fp32: in place, or widened into the scratch rows.
                        let (keys, keyStride) = blockRows(kvPointers.value.0, kHalf.value, bf16: bf16KV, kOffset + block * s.keyStrides.sequence,
                                                          s.keyStrides.sequence, count: blockKeys.count, width: dk, scratch: keyScratch)
                        let (values, valueStride) = blockRows(kvPointers.value.1, vHalf.value, bf16: bf16KV, vOffset + block * s.valueStrides.sequence,
                                                              s.valueStrides.sequence, count: blockKeys.count, width: d, scratch: valueScratch)
                        // Scores of every tile row against the block (CKernels), then the masks and
                        // the online softmax per row, then P·V for the whole tile.
                        vkk_attention_scores(queryRows, Int64(rowCount), keys, Int64(keyStride),
                                             Int64(blockKeys.count), Int64(dk), scale, transposedKeys, scores)
                        for r in 0..<rowCount {
                            let row = scores + r * keyBlock, i = indices[r]
                            let allowed = i < validRows ? resolved.keyRange(batch: b, row: i).clamped(to: blockKeys) : block..<block
                            if allowed != blockKeys || softcap != nil || hasAdditiveTerms {
                                for j in blockKeys {
                                    guard allowed.contains(j) else { row[j - block] = -.infinity; continue }
                                    var score = row[j - block]
                                    if let softcap { score = softcap * Foundation.tanh(score / softcap) }
                                    if hasAdditiveTerms { score += resolved.additive(batch: b, head: heads[r], row: i, key: j) }
                                    row[j - block] = score
                                }
                            }
                            vkk_attention_softmax_row(row, Int64(blockKeys.count), &rowMax[r], &rowSum[r], accumulator + r * d, Int64(d))
                        }
                        vkk_attention_pv(scores, Int64(rowCount), Int64(blockKeys.count), values, Int64(valueStride), Int64(d),
                                         accumulator, Int64(d))
                    }
                }
                for r in 0..<rowCount {
                    let head = heads[r], i = indices[r]
                    // Packed rows past their sequence belong to no sequence (the next one's rows): not stored.
                    if mask.packed != nil && i >= validRows { continue }
                    var sum = i < validRows ? rowSum[r] : 0
                    var inverse: Float = sum > 0 ? 1 / sum : 0
                    // The sink joins the denominator of valid rows: max M' = max(M, sink), sum rescaled to M'.
                    if let sinks = mask.sinks, i < validRows {
                        let newMax = max(rowMax[r], sinks[head])
                        let correction = rowMax[r] == -.infinity ? 0 : Foundation.exp(rowMax[r] - newMax)
                        sum = sum * correction + Foundation.exp(sinks[head] - newMax)
                        rowMax[r] = newMax
                        inverse = correction / sum
                    }
                    let outIndex = b * s.outputStrides.batch + head * s.outputStrides.head + (queryStart + i) * s.outputStrides.sequence
                    if dtype == .float32 {
                        let row = out.value.assumingMemoryBound(to: Float.self) + outIndex
                        for e in 0..<d { row[e] = accumulator[r * d + e] * inverse }
                    } else if dtype == .bfloat16 {
                        // Normalised in place (the accumulators are reset per tile), then rounded to bf16
                        // in one call (AVX512-BF16's vcvtneps2bf16 where the CPU has it).
                        for e in 0..<d { accumulator[r * d + e] *= inverse }
                        vkk_narrow_bf16(accumulator + r * d, out.value.assumingMemoryBound(to: UInt16.self) + outIndex, Int64(d))
                    } else {
                        let row = out.value.assumingMemoryBound(to: Float16.self) + outIndex
                        for e in 0..<d { row[e] = Float16(accumulator[r * d + e] * inverse) }
                    }
                    lse.value?[b * s.lseStrides.batch + head * s.lseStrides.head + queryStart + i] = sum > 0 ? rowMax[r] + Foundation.log(sum) : -.infinity
                }
            }
        }
        withExtendedLifetime((qBuffer, kBuffer, vBuffer, resolved.bias)) {}
    }
}

/// `count` rows of `width` elements starting at element `offset` (rows `stride` apart) as fp32: the rows in
/// place when the tensor is fp32 (`float` non-nil), else widened from the fp16 (or, with `bf16`, bf16)
/// bits `half` into `scratch` (rows `width` apart).
private func blockRows(_ float: UnsafePointer<Float>?, _ half: UnsafePointer<UInt16>, bf16: Bool, _ offset: Int, _ stride: Int,
                       count: Int, width: Int, scratch: UnsafeMutablePointer<Float>) -> (UnsafePointer<Float>, Int) {
    if let float { return (float + offset, stride) }
    for row in 0..<count {
        if bf16 { vkk_widen_bf16(half + offset + row * stride, scratch + row * width, Int64(width)) }
        else { vkk_widen_half(half + offset + row * stride, scratch + row * width, Int64(width)) }
    }
    return (UnsafePointer(scratch), width)
}

/// The elements as fp32: the storage itself for Float, a widened copy for Float16 and BFloat16.
func widenedInput(_ storage: Storage, count: Int, dtype: DType) -> FloatInput {
    if dtype == .float32 { return FloatInput(pointer: UnsafePointer(storage.hostPointer!.assumingMemoryBound(to: Float.self)), owned: nil) }
    let copy = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
    if dtype == .bfloat16 {
        widenBFloat16(storage.hostPointer!.assumingMemoryBound(to: BFloat16.self), into: copy, count: count)
        return FloatInput(pointer: UnsafePointer(copy), owned: copy)
    }
    widenFloat16(storage.hostPointer!.assumingMemoryBound(to: Float16.self), into: copy, count: count)
    return FloatInput(pointer: UnsafePointer(copy), owned: copy)
}

/// An fp32 view of an input, owning the widened copy when there is one.
final class FloatInput: @unchecked Sendable {
    let pointer: UnsafePointer<Float>
    private let owned: UnsafeMutablePointer<Float>?
    init(pointer: UnsafePointer<Float>, owned: UnsafeMutablePointer<Float>?) { self.pointer = pointer; self.owned = owned }
    deinit { owned?.deallocate() }
}
