/// An N:M structured sparse matrix: every row is split into groups of `m` consecutive columns and each
/// group stores exactly `n` values (2:4 is the pattern sparse tensor cores run). Stored as compressed
/// values plus per-value metadata, the value's position inside its group:
///   `values[(row · groups + g) · n + i]` sits at column `g · m + indices[(row · groups + g) · n + i]`,
/// with positions strictly increasing within a group. A group with fewer than `n` nonzeros stores
/// explicit zeros. `columns` must be a multiple of `m`; `1 ≤ n ≤ m ≤ 16`.
public struct NMSparseMatrix<Element: FloatingPointElement>: Sendable, Equatable {
    public let rows: Int
    public let columns: Int
    public let n: Int
    public let m: Int
    public let values: [Element]
    public let indices: [UInt8]

    public var groupsPerRow: Int { columns / m }
    /// Values stored: `rows · columns / m · n`.
    public var storedCount: Int { values.count }
    /// Exactly `1 - n / m` (positions not stored).
    public var sparsity: Double { rows * columns == 0 ? 0 : 1 - Double(storedCount) / Double(rows * columns) }

    /// Validates and wraps the arrays; throws ``SparseMatrixError`` naming the first bad entry.
    public init(rows: Int, columns: Int, n: Int, m: Int, values: [Element], indices: [UInt8]) throws {
        try Self.validateShape(rows: rows, columns: columns, n: n, m: m)
        let count = rows * (columns / m) * n
        guard values.count == count else { throw SparseMatrixError.countMismatch(format: "N:M", array: "values", expected: count, got: values.count) }
        guard indices.count == count else { throw SparseMatrixError.countMismatch(format: "N:M", array: "indices", expected: count, got: indices.count) }
        for group in 0..<(count / max(n, 1)) {
            var previous = -1
            for i in 0..<n {
                let position = Int(indices[group * n + i])
                let row = group / max(1, columns / m), column = (group % max(1, columns / m)) * m + position
                guard position < m else {
                    throw SparseMatrixError.invalidColumnIndex(format: "N:M", row: row, position: group * n + i, column: column,
                                                               reason: "has in-group position \(position), outside 0..<\(m)")
                }
                guard position > previous else {
                    throw SparseMatrixError.invalidColumnIndex(format: "N:M", row: row, position: group * n + i, column: column,
                                                               reason: "does not increase within its group (previous position \(previous))")
                }
                previous = position
            }
        }
        self.init(unchecked: rows, columns, n, m, values, indices)
    }

    init(unchecked rows: Int, _ columns: Int, _ n: Int, _ m: Int, _ values: [Element], _ indices: [UInt8]) {
        self.rows = rows; self.columns = columns; self.n = n; self.m = m; self.values = values; self.indices = indices
    }

    static func validateShape(rows: Int, columns: Int, n: Int, m: Int) throws {
        guard (1...16).contains(m), (1...m).contains(n) else {
            throw SparseMatrixError.invalidParameter(name: "N:M", value: "\(n):\(m)", reason: "needs 1 ≤ N ≤ M ≤ 16")
        }
        try validateDimensions(format: "N:M", rows: rows, columns: columns)
        guard columns % m == 0 else {
            throw SparseMatrixError.invalidDimensions(format: "N:M", rows: rows, columns: columns, reason: "columns must be a multiple of M = \(m)")
        }
    }

    /// A dense matrix that already has at most `n` nonzeros in every group (throws naming the first group
    /// with more; prune with ``SparsePruning/nm(_:rows:columns:n:m:)`` first).
    public init(dense: [Element], rows: Int, columns: Int, n: Int, m: Int) throws {
        try Self.validateShape(rows: rows, columns: columns, n: n, m: m)
        guard dense.count == rows * columns else {
            throw SparseMatrixError.countMismatch(format: "N:M", array: "dense values", expected: rows * columns, got: dense.count)
        }
        for row in 0..<rows {
            for group in 0..<columns / m {
                let nonzeros = (0..<m).filter { dense[row * columns + group * m + $0] != 0 }.count
                if nonzeros > n {
                    throw SparseMatrixError.invalidDimensions(format: "N:M", rows: rows, columns: columns,
                        reason: "row \(row), columns \(group * m)..<\(group * m + m) hold \(nonzeros) nonzeros, more than N = \(n)")
                }
            }
        }
        self.init(rows: rows, columns: columns, n: n, m: m) { row, group in
            (0..<m).filter { dense[row * columns + group * m + $0] != 0 }
        } value: { dense[$0 * columns + $1] }
    }

    /// Builds from the kept in-group positions of each group (at most `n`, ascending); groups are padded
    /// with explicit zeros at the lowest unused positions.
    init(rows: Int, columns: Int, n: Int, m: Int, kept: (Int, Int) -> [Int], value: (Int, Int) -> Element) {
        let groups = columns / m
        var values = [Element](), indices = [UInt8]()
        values.reserveCapacity(rows * groups * n); indices.reserveCapacity(rows * groups * n)
        for row in 0..<rows {
            for group in 0..<groups {
                let nonzeroPositions = kept(row, group)
                var positions = nonzeroPositions
                var padding = 0
                while positions.count < n {
                    while positions.contains(padding) { padding += 1 }
                    positions.append(padding)
                    padding += 1
                }
                for position in positions.sorted() {
                    indices.append(UInt8(position))
                    values.append(nonzeroPositions.contains(position) ? value(row, group * m + position) : 0)
                }
            }
        }
        self.init(unchecked: rows, columns, n, m, values, indices)
    }

    /// The row-major dense matrix.
    public func toDense() -> [Element] {
        var dense = [Element](repeating: 0, count: rows * columns)
        let groups = groupsPerRow
        for group in 0..<rows * groups {
            let row = group / groups, column0 = (group % groups) * m
            for i in 0..<n { dense[row * columns + column0 + Int(indices[group * n + i])] = values[group * n + i] }
        }
        return dense
    }

    /// CSR of the nonzero stored values (padding zeros dropped).
    public func toCSR() -> CSRMatrix<Element> {
        let dense = toDense()
        return CSRMatrix(rows: rows, columns: columns) { dense[$0 * columns + $1] != 0 ? dense[$0 * columns + $1] : nil }
    }

    /// Aᵀ. The transpose of an N:M matrix is not N:M along its rows in general, so it is returned as CSR.
    public func transposed() -> CSRMatrix<Element> { toCSR().transposed() }

    /// The same structure with values converted to another storage type.
    public func converted<Target: FloatingPointElement>(to type: Target.Type = Target.self) -> NMSparseMatrix<Target> {
        NMSparseMatrix<Target>(unchecked: rows, columns, n, m, values.map { Target($0) }, indices)
    }
}
