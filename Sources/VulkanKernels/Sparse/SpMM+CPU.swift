import CKernels
import Dispatch

// MARK: - CPU SpMM
//
// Rows of the sparse matrix are split into chunks of about equal stored-entry count (so one long row
// does not serialise a thread's share) and C's columns into groups of 64; the pieces (group × chunk) run
// on all cores, group by group (see `run`), each through the row kernel in CKernels (B packed into
// contiguous 32-column tiles in a reused workspace, a tile of C kept in registers, one packed B row read
// per stored value; on AVX-512 the K-blocked kernel with two tiles at once).
// fp16 and bf16 storage is widened to fp32 first and rounded back once at the end.

extension CommandBatch {
    func cpuSpMM<Element: FloatingPointElement>(_ uploaded: UploadedSparseMatrix<Element>, _ s: SpMMShape, b: Storage, c: Storage,
                                                alpha: Float, beta: Float) {
        let a = uploaded.matrix, values = uploaded.hostValues
        // C (M × N) row-major, or Y = Cᵀ (N × M) for the linear form: C(i, j) at i·rowStride + j·columnStride.
        let (rowStride, columnStride) = s.linear ? (1, s.m) : (s.n, 1)
        // op(B) in fp32 is B itself (K × N) or, for the linear form, X (N × K), which the kernel packs
        // transposed in one pass.
        if Element.self == Float.self {
            SparseCPU.spmm(a, values: values, b: UnsafePointer(b.hostPointer!.assumingMemoryBound(to: Float.self)), bIsX: s.linear,
                           n: s.n, c: c.hostPointer!.assumingMemoryBound(to: Float.self),
                           rowStride: rowStride, columnStride: columnStride, alpha: alpha, beta: beta)
        } else {
            // fp16 / bf16: widen op(B), Z = A·op(B) in fp32 in C's storage order, then C = alpha·Z + beta·C with one rounding.
            let bFloat = SparseCPU.widened(b.hostPointer!.assumingMemoryBound(to: Element.self), count: s.k * s.n)
            var z = [Float](repeating: 0, count: s.m * s.n)
            bFloat.withUnsafeBufferPointer { bFloat in
                z.withUnsafeMutableBufferPointer {
                    SparseCPU.spmm(a, values: values, b: bFloat.baseAddress!, bIsX: s.linear, n: s.n, c: $0.baseAddress!,
                                   rowStride: rowStride, columnStride: columnStride, alpha: 1, beta: 0)
                }
            }
            z.withUnsafeBufferPointer { zBuffer in
                SparseCPU.storeScaled(into: c.hostPointer!, as: Element.self, count: s.m * s.n, alpha: alpha, beta: beta) { zBuffer[$0] }
            }
        }
        withExtendedLifetime(values) {}
    }
}

enum SparseCPU {
    /// C(M×N) = alpha·A·B + beta·C with fp32 B (K×N, row stride N) and C (row stride N).
    /// B is packed into contiguous 32-column tiles first when its rows are long and many (see
    /// CKernels): read in place, the 128 bytes a tile takes from each B row sit at B's row stride,
    /// and at a power-of-two stride (N = 256: 1 KiB) they share a few L2 cache sets — a 4096-row slice
    /// (512 KiB) thrashed a 1 MiB L2. Small B (K < 1024: the strided slice fits the sets it maps to) or
    /// few stored values per B row (the one-pass copy would cost more than it saves) are read in place.
    /// With `bIsX` the operand is X (N × K, row stride K) and B = Xᵀ; it is always packed (transposed on the
    /// way). C(i, j) is written at c[i·rowStride + j·columnStride].
    static func spmm<Element>(_ a: SparseMatrix<Element>, values: [Float], b: UnsafePointer<Float>, bIsX: Bool = false, n: Int,
                              c: UnsafeMutablePointer<Float>, rowStride cRowStride: Int, columnStride cColumnStride: Int,
                              alpha: Float, beta: Float) {
        let k = a.columns, tiles = (n + 31) / 32
        // Narrow B (N < 32) is packed too: the zero padding lets the AVX kernel run on it.
        let pack = bIsX || ((k >= 1024 || n < 32) && a.storedCount >= 2 * k)
        guard pack else {
            run(a, values: values, source: b, rowStride: n, tileStride: 32, pack: false, n: n, c: c,
                rowStride: cRowStride, columnStride: cColumnStride, alpha: alpha, beta: beta)
            return
        }
        // 64-byte aligned, so each packed 128-byte row is two whole cache lines; reused between calls.
        CPUWorkspace.withBuffer(bytes: tiles * k * 32 * 4) { raw in
            let packed = raw.bindMemory(to: Float.self, capacity: tiles * k * 32)
            let packing = UncheckedSendable((b, packed))
            DispatchQueue.concurrentPerform(iterations: tiles) { tile in
                if bIsX {
                    vkk_pack_bt(packing.value.0, Int64(k), Int64(k), Int64(n), packing.value.1, Int64(tile), Int64(tile + 1))
                } else {
                    vkk_pack_b(packing.value.0, Int64(n), Int64(k), Int64(n), packing.value.1, Int64(tile), Int64(tile + 1))
                }
            }
            run(a, values: values, source: UnsafePointer(packed), rowStride: 32, tileStride: k * 32, pack: true, n: n, c: c,
                rowStride: cRowStride, columnStride: cColumnStride, alpha: alpha, beta: beta)
        }
    }

    /// The row kernel over pieces of (64 columns of C) × (a chunk of A's rows), on all cores, handed out
    /// column group by column group as threads become free: a thread's consecutive pieces then share the
    /// group's two packed tiles of B (K × 64 floats), which stay in its L2, while a thread slowed by other
    /// load (another library's spinning threads, the host) leaves its pieces to the others. One chunk of
    /// rows per thread over all of N streamed every tile through L2 once per thread but stalled the whole
    /// product behind a slowed thread; several chunks over all of N reloaded B once per chunk.
    private static func run<Element>(_ a: SparseMatrix<Element>, values: [Float], source: UnsafePointer<Float>, rowStride: Int, tileStride: Int,
                                     pack: Bool, n: Int, c: UnsafeMutablePointer<Float>, rowStride cRowStride: Int, columnStride cColumnStride: Int,
                                     alpha: Float, beta: Float) {
        withRows(a, values: values) { rows in
            let chunks = chunkBoundaries(a, work: n)
            let groups = (n + 63) / 64, pieces = groups * (chunks.count - 1)
            let shared = UncheckedSendable((rows, source, c))
            let piece: (Int) -> Void = { index in
                let group = index / (chunks.count - 1), chunk = index % (chunks.count - 1)
                var descriptor = shared.value.0.pointee
                vkk_spmm_rows(&descriptor, shared.value.1 + 2 * group * tileStride, Int64(rowStride), Int64(tileStride), pack ? 1 : 0,
                              Int64(min(64, n - 64 * group)), shared.value.2 + 64 * group * cColumnStride, Int64(cRowStride),
                              Int64(cColumnStride), Int64(chunks[chunk]), Int64(chunks[chunk + 1]), alpha, beta)
            }
            guard chunks.count > 2 else { for index in 0..<pieces { piece(index) }; return }
            // One piece per range, in order, to whichever thread is free.
            CPUParallel.forEachPiece(pieces, costPerItem: 50_000, piecesPerThread: pieces) { range in
                for index in range { piece(index) }
            }
        }
    }

    /// Calls `body` with the C descriptor of `a` (pointers valid for the call).
    static func withRows<Element>(_ a: SparseMatrix<Element>, values: [Float], _ body: (UnsafePointer<vkk_sparse_rows>) -> Void) {
        values.withUnsafeBufferPointer { v in
            switch a {
            case .csr(let m):
                m.rowPointers.withUnsafeBufferPointer { p in
                    m.columnIndices.withUnsafeBufferPointer { i in
                        var rows = vkk_sparse_rows(kind: 0, pointers: p.baseAddress, indices: i.baseAddress, positions: nil,
                                                   values: v.baseAddress, block: 0, n: 0, m: 0, groups: 0)
                        body(&rows)
                    }
                }
            case .bsr(let m):
                m.blockRowPointers.withUnsafeBufferPointer { p in
                    m.blockColumnIndices.withUnsafeBufferPointer { i in
                        var rows = vkk_sparse_rows(kind: 1, pointers: p.baseAddress, indices: i.baseAddress, positions: nil,
                                                   values: v.baseAddress, block: Int64(m.blockSize), n: 0, m: 0, groups: 0)
                        body(&rows)
                    }
                }
            case .nm(let m):
                m.indices.withUnsafeBufferPointer { positions in
                    var rows = vkk_sparse_rows(kind: 2, pointers: nil, indices: nil, positions: positions.baseAddress,
                                               values: v.baseAddress, block: 0, n: Int64(m.n), m: Int64(m.m), groups: Int64(m.groupsPerRow))
                    body(&rows)
                }
            }
        }
    }

    /// Row boundaries of work chunks: about 4 per thread, balanced by stored entries (plus one per row),
    /// and a single chunk when the whole product is small.
    static func chunkBoundaries<Element>(_ a: SparseMatrix<Element>, work n: Int) -> [Int] {
        let rows = a.rows
        let total = Double(a.storedCount + rows) * Double(max(n, 1))
        let chunks = total < 200_000 ? 1 : min(rows, CPUParallel.threadCount * 4)
        guard chunks > 1 else { return [0, rows] }
        guard case .csr(let m) = a else { return (0...chunks).map { rows * $0 / chunks } }
        var boundaries = [0]
        let perChunk = Double(m.storedCount + rows) / Double(chunks)
        for row in 0..<rows where Double(Int(m.rowPointers[row + 1]) + row + 1) >= perChunk * Double(boundaries.count) {
            if row + 1 > boundaries.last! && boundaries.count < chunks { boundaries.append(row + 1) }
        }
        if boundaries.last! != rows { boundaries.append(rows) }
        return boundaries
    }

    // Generic code in this module is not specialised for callers in other modules, so every per-element
    // conversion below is written for the concrete types (Float, Float16, BFloat16) and picked by a type check.

    static func floatValues<Element>(_ a: SparseMatrix<Element>) -> [Float] {
        switch a {
        case .csr(let m): floatArray(m.values)
        case .bsr(let m): floatArray(m.values)
        case .nm(let m): floatArray(m.values)
        }
    }

    static func floatArray<Element: FloatingPointElement>(_ values: [Element]) -> [Float] {
        if let floats = values as? [Float] { return floats }
        if let halves = values as? [Float16] { return halves.map { Float($0) } }
        if let bf16 = values as? [BFloat16] { return bf16.map(\.floatValue) }
        return values.map { Float($0) }
    }

    static func widened<Element: FloatingPointElement>(_ source: UnsafePointer<Element>, count: Int) -> [Float] {
        if Element.self == Float.self {
            return Array(UnsafeBufferPointer(start: UnsafeRawPointer(source).assumingMemoryBound(to: Float.self), count: count))
        }
        return widenedHalfWidth(UnsafeRawPointer(source), dtype: Element.dtype, count: count)
    }

    /// out[i] = alpha·value(i) + beta·out[i] for i < count, in `Element` storage (beta == 0 never reads out).
    static func storeScaled<Element: FloatingPointElement>(into raw: UnsafeMutableRawPointer, as: Element.Type, count: Int, alpha: Float,
                                                           beta: Float, _ value: (Int) -> Float) {
        withoutActuallyEscaping(value) { value in
            let shared = UncheckedSendable((raw, value))
            CPUParallel.forEachChunk(count, costPerItem: 2) { range in
                let (raw, value) = shared.value
                if Element.self == Float.self {
                    let out = raw.assumingMemoryBound(to: Float.self)
                    for i in range { out[i] = alpha * value(i) + (beta == 0 ? 0 : beta * out[i]) }
                } else if Element.self == BFloat16.self {
                    let out = raw.assumingMemoryBound(to: BFloat16.self)
                    for i in range { out[i] = BFloat16(alpha * value(i) + (beta == 0 ? 0 : beta * out[i].floatValue)) }
                } else {
                    let out = raw.assumingMemoryBound(to: Float16.self)
                    for i in range { out[i] = Float16(alpha * value(i) + (beta == 0 ? 0 : beta * Float(out[i]))) }
                }
            }
        }
    }
}
