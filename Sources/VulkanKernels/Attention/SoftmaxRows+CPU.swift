import Foundation

// MARK: - CPU softmaxRows

extension CommandBatch {
    /// Rows in chunks on all cores, each in fp32 with the maximum subtracted before `exp`.
    func cpuSoftmaxRows<Element: FloatingPointElement>(_ x: Tensor<Element>, rows: Int, columns: Int, rowsPerMatrix: Int, scale: Float,
                                                       causal: Bool) {
        let base = UncheckedSendable(x.storage.hostPointer!)
        CPUParallel.forEachChunk(rows, costPerItem: columns * 8) { range in
            var row = [Float](repeating: 0, count: columns)
            for r in range {
                let limit = causal ? r % rowsPerMatrix + columns - rowsPerMatrix : columns - 1
                let pointer = base.value.assumingMemoryBound(to: Element.self) + r * columns
                var top = -Float.infinity
                for c in 0..<columns { row[c] = Float(pointer[c]) * scale; if c <= limit { top = max(top, row[c]) } }
                var total: Float = 0
                for c in 0..<columns { row[c] = c <= limit && top > -.infinity ? Foundation.exp(row[c] - top) : 0; total += row[c] }
                let inverse = total > 0 ? 1 / total : 0
                for c in 0..<columns { pointer[c] = Element(row[c] * inverse) }
            }
        }
    }
}
