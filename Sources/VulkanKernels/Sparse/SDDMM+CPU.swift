import CKernels

// MARK: - CPU SDDMM

extension CommandBatch {
    /// Rows in entry-balanced chunks on all cores; each entry one AVX2 dot product of fp32 rows.
    func cpuSDDMM<Element: FloatingPointElement>(_ p: CSRMatrix<Element>, k: Int, a: Storage, b: Storage, out: Storage,
                                                 alpha: Float, beta: Float) {
        let a32 = SparseCPU.widened(a.hostPointer!.assumingMemoryBound(to: Element.self), count: p.rows * k)
        let b32 = SparseCPU.widened(b.hostPointer!.assumingMemoryBound(to: Element.self), count: p.columns * k)
        var dots = [Float](repeating: 0, count: p.storedCount)
        let chunks = SparseCPU.chunkBoundaries(.csr(p), work: k)
        a32.withUnsafeBufferPointer { aBuffer in
            b32.withUnsafeBufferPointer { bBuffer in
                let shared = UncheckedSendable((aBuffer.baseAddress!, bBuffer.baseAddress!, dots.withUnsafeMutableBufferPointer { $0.baseAddress! }))
                CPUParallel.forEachChunk(chunks.count - 1, costPerItem: 1_000_000) { range in
                    for chunk in range {
                        for row in chunks[chunk]..<chunks[chunk + 1] {
                            for j in Int(p.rowPointers[row])..<Int(p.rowPointers[row + 1]) {
                                shared.value.2[j] = vkk_dot(shared.value.0 + row * k, shared.value.1 + Int(p.columnIndices[j]) * k, Int64(k))
                            }
                        }
                    }
                }
            }
        }
        dots.withUnsafeBufferPointer { dots in
            SparseCPU.storeScaled(into: out.hostPointer!, as: Element.self, count: p.storedCount, alpha: alpha, beta: beta) { dots[$0] }
        }
    }
}
