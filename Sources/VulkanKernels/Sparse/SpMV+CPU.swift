import CKernels

// MARK: - CPU

extension CommandBatch {
    /// Rows in stored-entry-balanced chunks on all cores; each row a gather-dot in fp32 (CKernels).
    /// fp32 tensors are read and written in place (alpha and beta applied by the kernel); fp16 ones go
    /// through fp32 copies of x and of the row sums.
    func cpuSpMV<Element: FloatingPointElement>(_ uploaded: UploadedSparseMatrix<Element>, x: Storage, y: Storage, alpha: Float, beta: Float) {
        let a = uploaded.matrix, values = uploaded.hostValues
        let chunks = SparseCPU.chunkBoundaries(a, work: 1)
        func run(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, alpha: Float, beta: Float) {
            SparseCPU.withRows(a, values: values) { rows in
                let shared = UncheckedSendable((rows, x, y))
                CPUParallel.forEachChunk(chunks.count - 1, costPerItem: 1_000_000) { range in
                    for chunk in range {
                        vkk_spmv_rows(shared.value.0, shared.value.1, shared.value.2, Int64(chunks[chunk]), Int64(chunks[chunk + 1]),
                                      alpha, beta)
                    }
                }
            }
        }
        if Element.self == Float.self {
            run(UnsafePointer(x.hostPointer!.assumingMemoryBound(to: Float.self)), y.hostPointer!.assumingMemoryBound(to: Float.self),
                alpha: alpha, beta: beta)
            return
        }
        let xFloat = SparseCPU.widened(x.hostPointer!.assumingMemoryBound(to: Element.self), count: a.columns)
        var sums = [Float](repeating: 0, count: a.rows)
        xFloat.withUnsafeBufferPointer { x in
            sums.withUnsafeMutableBufferPointer { sums in run(x.baseAddress!, sums.baseAddress!, alpha: 1, beta: 0) }
        }
        sums.withUnsafeBufferPointer { rowSums in
            SparseCPU.storeScaled(into: y.hostPointer!, as: Element.self, count: a.rows, alpha: alpha, beta: beta) { rowSums[$0] }
        }
    }
}
