/// A malformed sparse matrix or a bad pruning request, found before anything runs. Each case names the
/// first offending entry so that a user can find it.
public enum SparseMatrixError: Error, CustomStringConvertible, Equatable {
    /// Dimensions that are negative, or not multiples of a block size / group size.
    case invalidDimensions(format: String, rows: Int, columns: Int, reason: String)
    /// An array whose length does not fit the matrix.
    case countMismatch(format: String, array: String, expected: Int, got: Int)
    /// A row pointer (or block-row pointer) that is out of range or decreases.
    case invalidRowPointer(format: String, index: Int, value: Int, reason: String)
    /// A column index out of range, or not strictly increasing within its row.
    case invalidColumnIndex(format: String, row: Int, position: Int, column: Int, reason: String)
    /// A parameter (block size, N, M, sparsity, …) outside its range.
    case invalidParameter(name: String, value: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidDimensions(format, rows, columns, reason): "\(format) \(rows)×\(columns): \(reason)"
        case let .countMismatch(format, array, expected, got): "\(format): \(array) has \(got) entries, expected \(expected)"
        case let .invalidRowPointer(format, index, value, reason): "\(format): row pointer [\(index)] = \(value) \(reason)"
        case let .invalidColumnIndex(format, row, position, column, reason):
            "\(format): row \(row), entry \(position): column \(column) \(reason)"
        case let .invalidParameter(name, value, reason): "invalid \(name) = \(value): \(reason)"
        }
    }
}

/// Checks CSR-shaped structure (also BSR's block structure): `pointers` has `rows + 1` monotone entries
/// from 0 to `indices.count`, and each row's indices are in `0..<columns`, strictly increasing.
func validateCompressedRows(format: String, rows: Int, columns: Int, pointers: [Int32], indices: [Int32]) throws {
    guard pointers.count == rows + 1 else {
        throw SparseMatrixError.countMismatch(format: format, array: "row pointers", expected: rows + 1, got: pointers.count)
    }
    guard pointers[0] == 0 else { throw SparseMatrixError.invalidRowPointer(format: format, index: 0, value: Int(pointers[0]), reason: "must be 0") }
    for row in 0..<rows where pointers[row + 1] < pointers[row] {
        throw SparseMatrixError.invalidRowPointer(format: format, index: row + 1, value: Int(pointers[row + 1]),
                                                  reason: "is less than row pointer [\(row)] = \(pointers[row])")
    }
    guard Int(pointers[rows]) == indices.count else {
        throw SparseMatrixError.invalidRowPointer(format: format, index: rows, value: Int(pointers[rows]),
                                                  reason: "must equal the number of stored entries, \(indices.count)")
    }
    for row in 0..<rows {
        var previous = -1
        for position in Int(pointers[row])..<Int(pointers[row + 1]) {
            let column = Int(indices[position])
            guard column >= 0, column < columns else {
                throw SparseMatrixError.invalidColumnIndex(format: format, row: row, position: position, column: column,
                                                           reason: "is outside 0..<\(columns)")
            }
            guard column > previous else {
                throw SparseMatrixError.invalidColumnIndex(format: format, row: row, position: position, column: column,
                                                           reason: "does not increase (previous column \(previous)); columns must be sorted and unique")
            }
            previous = column
        }
    }
}

/// Rows and columns checked non-negative and the product representable as an element count.
func validateDimensions(format: String, rows: Int, columns: Int) throws {
    guard rows >= 0, columns >= 0, !rows.multipliedReportingOverflow(by: columns).overflow,
          rows < Int(Int32.max), columns < Int(Int32.max) else {
        throw SparseMatrixError.invalidDimensions(format: format, rows: rows, columns: columns, reason: "dimensions must be in 0..<2^31")
    }
}
