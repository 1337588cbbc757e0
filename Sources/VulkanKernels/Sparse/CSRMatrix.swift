/// A sparse matrix in compressed sparse row form: row `r` stores `rowPointers[r + 1] - rowPointers[r]`
/// entries, at `columnIndices[rowPointers[r]...]` (sorted, unique) with `values` alongside.
///
/// A host-side value: it holds arrays and is uploaded when an op runs (or once, with
/// ``ComputeContext/upload(_:)-(CSRMatrix<Element>)``). `Element` is `Float` or `Float16`; ops accumulate in fp32.
/// Construction validates everything the kernels rely on, so a `CSRMatrix` can never make a kernel
/// read out of bounds.
public struct CSRMatrix<Element: FloatingPointElement>: Sendable, Equatable {
    public let rows: Int
    public let columns: Int
    public let rowPointers: [Int32]
    public let columnIndices: [Int32]
    public let values: [Element]

    /// Validates and wraps the three arrays. Throws ``SparseMatrixError`` naming the first bad entry.
    public init(rows: Int, columns: Int, rowPointers: [Int32], columnIndices: [Int32], values: [Element]) throws {
        try validateDimensions(format: "CSR", rows: rows, columns: columns)
        guard values.count == columnIndices.count else {
            throw SparseMatrixError.countMismatch(format: "CSR", array: "values", expected: columnIndices.count, got: values.count)
        }
        try validateCompressedRows(format: "CSR", rows: rows, columns: columns, pointers: rowPointers, indices: columnIndices)
        self.init(unchecked: rows, columns, rowPointers, columnIndices, values)
    }

    init(unchecked rows: Int, _ columns: Int, _ rowPointers: [Int32], _ columnIndices: [Int32], _ values: [Element]) {
        self.rows = rows; self.columns = columns
        self.rowPointers = rowPointers; self.columnIndices = columnIndices; self.values = values
    }

    /// A matrix read from a file (DLMC `.smtx`, Matrix Market), validated again; pattern-only files need
    /// values first (``SparseMatrixData/withRandomValues(seed:)``), else this throws.
    public init(_ data: SparseMatrixData) throws {
        guard let values = data.values else {
            throw SparseMatrixError.invalidParameter(name: "values", value: "nil", reason: "a pattern-only matrix needs values (withRandomValues)")
        }
        try self.init(rows: data.rows, columns: data.columns, rowPointers: data.rowOffsets, columnIndices: data.columnIndices,
                      values: values.map { Element($0) })
    }

    /// The nonzero entries of a row-major dense matrix (exact zeros, including -0, are not stored).
    public init(dense: [Element], rows: Int, columns: Int) throws {
        try validateDimensions(format: "CSR", rows: rows, columns: columns)
        guard dense.count == rows * columns else {
            throw SparseMatrixError.countMismatch(format: "CSR", array: "dense values", expected: rows * columns, got: dense.count)
        }
        self.init(rows: rows, columns: columns) { row, column in dense[row * columns + column] != 0 ? dense[row * columns + column] : nil }
    }

    /// Builds from a predicate over positions in row-major order: `entry(row, column)` returns the value
    /// to store there, or nil for none.
    init(rows: Int, columns: Int, entry: (Int, Int) -> Element?) {
        var pointers = [Int32](repeating: 0, count: rows + 1)
        var indices: [Int32] = [], values: [Element] = []
        for row in 0..<rows {
            for column in 0..<columns {
                if let value = entry(row, column) { indices.append(Int32(column)); values.append(value) }
            }
            pointers[row + 1] = Int32(indices.count)
        }
        self.init(unchecked: rows, columns, pointers, indices, values)
    }

    /// Keeps the given row-major positions (ascending) of a dense matrix.
    init(rows: Int, columns: Int, keptPositions: [Int], from dense: [Element]) {
        var pointers = [Int32](repeating: 0, count: rows + 1)
        var indices = [Int32](), values = [Element]()
        indices.reserveCapacity(keptPositions.count); values.reserveCapacity(keptPositions.count)
        for position in keptPositions {
            indices.append(Int32(position % columns))
            values.append(dense[position])
            pointers[position / columns + 1] += 1
        }
        for row in 0..<rows { pointers[row + 1] += pointers[row] }
        self.init(unchecked: rows, columns, pointers, indices, values)
    }

    /// Entries stored (explicit zeros included).
    public var storedCount: Int { values.count }

    /// Fraction of positions that are not stored: exactly `1 - storedCount / (rows · columns)`.
    public var sparsity: Double { rows * columns == 0 ? 0 : 1 - Double(storedCount) / Double(rows * columns) }

    /// Length of row `row`.
    public func rowLength(_ row: Int) -> Int { Int(rowPointers[row + 1] - rowPointers[row]) }

    /// The row-major dense matrix (positions not stored are 0).
    public func toDense() -> [Element] {
        var dense = [Element](repeating: 0, count: rows * columns)
        for row in 0..<rows {
            for position in Int(rowPointers[row])..<Int(rowPointers[row + 1]) {
                dense[row * columns + Int(columnIndices[position])] = values[position]
            }
        }
        return dense
    }

    /// Aᵀ as CSR (a counting sort by column: O(rows + columns + stored)); stored entries keep their values.
    public func transposed() -> CSRMatrix {
        var counts = [Int32](repeating: 0, count: columns + 1)
        for column in columnIndices { counts[Int(column) + 1] += 1 }
        for column in 0..<columns { counts[column + 1] += counts[column] }
        var next = counts
        var indices = [Int32](repeating: 0, count: storedCount)
        var newValues = [Element](repeating: 0, count: storedCount)
        for row in 0..<rows {
            for position in Int(rowPointers[row])..<Int(rowPointers[row + 1]) {
                let column = Int(columnIndices[position])
                let destination = Int(next[column])
                indices[destination] = Int32(row)
                newValues[destination] = values[position]
                next[column] += 1
            }
        }
        return CSRMatrix(unchecked: columns, rows, counts, indices, newValues)
    }

    /// The same structure with values converted to another storage type (fp32 ↔ fp16, rounding to nearest).
    public func converted<Target: FloatingPointElement>(to type: Target.Type = Target.self) -> CSRMatrix<Target> {
        CSRMatrix<Target>(unchecked: rows, columns, rowPointers, columnIndices, values.map { Target($0) })
    }

    /// The row of every stored entry (the SDDMM kernel's per-entry work list).
    func entryRows() -> [UInt32] {
        var rowsOfEntries = [UInt32](repeating: 0, count: storedCount)
        for row in 0..<rows { for position in Int(rowPointers[row])..<Int(rowPointers[row + 1]) { rowsOfEntries[position] = UInt32(row) } }
        return rowsOfEntries
    }

    /// Rows in descending order of length (ties by index): the order the Vulkan kernels visit rows in,
    /// so that the longest rows start first and workgroups next to each other do similar work.
    func rowsByDescendingLength() -> [UInt32] {
        (0..<rows).sorted { lhs, rhs in
            let a = rowLength(lhs), b = rowLength(rhs)
            return a != b ? a > b : lhs < rhs
        }.map { UInt32($0) }
    }
}
