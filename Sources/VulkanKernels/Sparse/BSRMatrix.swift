/// A block-sparse matrix: square `blockSize × blockSize` dense blocks (4, 8, 16 or 32) in compressed
/// sparse row form over block rows. Block `j` (in `blockColumnIndices` order) occupies block column
/// `blockColumnIndices[j]` of its block row and its values are `values[j·b² ..< (j + 1)·b²]`, row-major.
/// `rows` and `columns` must be multiples of the block size.
public struct BSRMatrix<Element: FloatingPointElement>: Sendable, Equatable {
    public static var supportedBlockSizes: [Int] { [4, 8, 16, 32] }

    public let rows: Int
    public let columns: Int
    public let blockSize: Int
    public let blockRowPointers: [Int32]
    public let blockColumnIndices: [Int32]
    public let values: [Element]

    public var blockRows: Int { rows / blockSize }
    public var blockColumns: Int { columns / blockSize }
    /// Blocks stored.
    public var blockCount: Int { blockColumnIndices.count }
    /// Values stored (`blockCount · blockSize²`, zeros inside stored blocks included).
    public var storedCount: Int { values.count }
    /// Fraction of positions outside stored blocks, exactly.
    public var sparsity: Double { rows * columns == 0 ? 0 : 1 - Double(storedCount) / Double(rows * columns) }

    /// Validates and wraps the arrays; throws ``SparseMatrixError`` naming the first bad entry.
    public init(rows: Int, columns: Int, blockSize: Int, blockRowPointers: [Int32], blockColumnIndices: [Int32],
                values: [Element]) throws {
        try Self.validateShape(rows: rows, columns: columns, blockSize: blockSize)
        guard values.count == blockColumnIndices.count * blockSize * blockSize else {
            throw SparseMatrixError.countMismatch(format: "BSR", array: "values", expected: blockColumnIndices.count * blockSize * blockSize,
                                                  got: values.count)
        }
        try validateCompressedRows(format: "BSR (block structure)", rows: rows / blockSize, columns: columns / blockSize,
                                   pointers: blockRowPointers, indices: blockColumnIndices)
        self.init(unchecked: rows, columns, blockSize, blockRowPointers, blockColumnIndices, values)
    }

    init(unchecked rows: Int, _ columns: Int, _ blockSize: Int, _ pointers: [Int32], _ indices: [Int32], _ values: [Element]) {
        self.rows = rows; self.columns = columns; self.blockSize = blockSize
        blockRowPointers = pointers; blockColumnIndices = indices; self.values = values
    }

    static func validateShape(rows: Int, columns: Int, blockSize: Int) throws {
        guard supportedBlockSizes.contains(blockSize) else {
            throw SparseMatrixError.invalidParameter(name: "blockSize", value: "\(blockSize)", reason: "must be one of \(supportedBlockSizes)")
        }
        try validateDimensions(format: "BSR", rows: rows, columns: columns)
        guard rows % blockSize == 0, columns % blockSize == 0 else {
            throw SparseMatrixError.invalidDimensions(format: "BSR", rows: rows, columns: columns,
                                                      reason: "must be multiples of the block size \(blockSize)")
        }
    }

    /// Every block of a row-major dense matrix that holds a nonzero.
    public init(dense: [Element], rows: Int, columns: Int, blockSize: Int) throws {
        try Self.validateShape(rows: rows, columns: columns, blockSize: blockSize)
        guard dense.count == rows * columns else {
            throw SparseMatrixError.countMismatch(format: "BSR", array: "dense values", expected: rows * columns, got: dense.count)
        }
        self.init(rows: rows, columns: columns, blockSize: blockSize, value: { dense[$0 * columns + $1] }) { blockRow, blockColumn in
            (0..<blockSize).contains { r in (0..<blockSize).contains { c in dense[(blockRow * blockSize + r) * columns + blockColumn * blockSize + c] != 0 } }
        }
    }

    /// The blocks of a CSR matrix (every block holding a stored entry; positions not stored become 0).
    public init(_ csr: CSRMatrix<Element>, blockSize: Int) throws {
        try Self.validateShape(rows: csr.rows, columns: csr.columns, blockSize: blockSize)
        var occupied = [Set<Int32>](repeating: [], count: csr.rows / blockSize)
        for row in 0..<csr.rows {
            for position in Int(csr.rowPointers[row])..<Int(csr.rowPointers[row + 1]) {
                occupied[row / blockSize].insert(csr.columnIndices[position] / Int32(blockSize))
            }
        }
        var pointers: [Int32] = [0], indices: [Int32] = []
        for blockRow in occupied { indices += blockRow.sorted(); pointers.append(Int32(indices.count)) }
        var values = [Element](repeating: 0, count: indices.count * blockSize * blockSize)
        for row in 0..<csr.rows {
            let blockRow = row / blockSize
            let blocks = indices[Int(pointers[blockRow])..<Int(pointers[blockRow + 1])]
            for position in Int(csr.rowPointers[row])..<Int(csr.rowPointers[row + 1]) {
                let column = Int(csr.columnIndices[position])
                // Binary search for the block (blocks are sorted).
                let block = Int(pointers[blockRow]) + blocks.partitioningIndex { Int($0) >= column / blockSize }
                values[(block * blockSize + row % blockSize) * blockSize + column % blockSize] = csr.values[position]
            }
        }
        self.init(unchecked: csr.rows, csr.columns, blockSize, pointers, indices, values)
    }

    /// Builds from `keep(blockRow, blockColumn)` and an element accessor.
    init(rows: Int, columns: Int, blockSize: Int, value: (Int, Int) -> Element, keep: (Int, Int) -> Bool) {
        var pointers: [Int32] = [0], indices: [Int32] = [], values: [Element] = []
        for blockRow in 0..<rows / blockSize {
            for blockColumn in 0..<columns / blockSize where keep(blockRow, blockColumn) {
                indices.append(Int32(blockColumn))
                for r in 0..<blockSize {
                    for c in 0..<blockSize { values.append(value(blockRow * blockSize + r, blockColumn * blockSize + c)) }
                }
            }
            pointers.append(Int32(indices.count))
        }
        self.init(unchecked: rows, columns, blockSize, pointers, indices, values)
    }

    /// The row-major dense matrix.
    public func toDense() -> [Element] {
        var dense = [Element](repeating: 0, count: rows * columns)
        forEachStored { row, column, value in dense[row * columns + column] = value }
        return dense
    }

    /// CSR holding the nonzero values of the stored blocks (zeros inside blocks are dropped, so
    /// CSR → BSR → CSR is exact for a CSR matrix without explicit zeros).
    public func toCSR() -> CSRMatrix<Element> {
        var pointers = [Int32](repeating: 0, count: rows + 1)
        var indices: [Int32] = [], csrValues: [Element] = []
        for row in 0..<rows {
            let blockRow = row / blockSize, r = row % blockSize
            for block in Int(blockRowPointers[blockRow])..<Int(blockRowPointers[blockRow + 1]) {
                for c in 0..<blockSize {
                    let value = values[(block * blockSize + r) * blockSize + c]
                    if value != 0 { indices.append(blockColumnIndices[block] * Int32(blockSize) + Int32(c)); csrValues.append(value) }
                }
            }
            pointers[row + 1] = Int32(indices.count)
        }
        return CSRMatrix(unchecked: rows, columns, pointers, indices, csrValues)
    }

    /// Aᵀ in BSR with the same block size (each block transposed).
    public func transposed() -> BSRMatrix {
        let b = blockSize, b2 = b * b
        var counts = [Int32](repeating: 0, count: blockColumns + 1)
        for column in blockColumnIndices { counts[Int(column) + 1] += 1 }
        for column in 0..<blockColumns { counts[column + 1] += counts[column] }
        var next = counts
        var indices = [Int32](repeating: 0, count: blockCount)
        var newValues = [Element](repeating: 0, count: values.count)
        for blockRow in 0..<blockRows {
            for block in Int(blockRowPointers[blockRow])..<Int(blockRowPointers[blockRow + 1]) {
                let column = Int(blockColumnIndices[block])
                let destination = Int(next[column])
                next[column] += 1
                indices[destination] = Int32(blockRow)
                for r in 0..<b { for c in 0..<b { newValues[destination * b2 + c * b + r] = values[block * b2 + r * b + c] } }
            }
        }
        return BSRMatrix(unchecked: columns, rows, b, counts, indices, newValues)
    }

    /// The same structure with values converted to another storage type.
    public func converted<Target: FloatingPointElement>(to type: Target.Type = Target.self) -> BSRMatrix<Target> {
        BSRMatrix<Target>(unchecked: rows, columns, blockSize, blockRowPointers, blockColumnIndices, values.map { Target($0) })
    }

    /// Calls `body(row, column, value)` for every stored value.
    func forEachStored(_ body: (Int, Int, Element) -> Void) {
        for blockRow in 0..<blockRows {
            for block in Int(blockRowPointers[blockRow])..<Int(blockRowPointers[blockRow + 1]) {
                let column0 = Int(blockColumnIndices[block]) * blockSize
                for r in 0..<blockSize {
                    for c in 0..<blockSize {
                        body(blockRow * blockSize + r, column0 + c, values[(block * blockSize + r) * blockSize + c])
                    }
                }
            }
        }
    }
}

extension Collection {
    /// The first index whose element satisfies `predicate`, for a collection partitioned by it.
    func partitioningIndex(where predicate: (Element) -> Bool) -> Int where Index == Int {
        var low = startIndex, high = endIndex
        while low < high {
            let middle = low + (high - low) / 2
            if predicate(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low - startIndex
    }
}
