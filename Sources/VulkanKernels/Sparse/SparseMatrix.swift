/// Any of the sparse formats, as the ops take them.
public enum SparseMatrix<Element: FloatingPointElement>: Sendable, Equatable {
    case csr(CSRMatrix<Element>)
    case bsr(BSRMatrix<Element>)
    case nm(NMSparseMatrix<Element>)

    public var rows: Int {
        switch self { case .csr(let a): a.rows; case .bsr(let a): a.rows; case .nm(let a): a.rows }
    }
    public var columns: Int {
        switch self { case .csr(let a): a.columns; case .bsr(let a): a.columns; case .nm(let a): a.columns }
    }
    /// Values stored (the multiply-adds one product row of B costs).
    public var storedCount: Int {
        switch self { case .csr(let a): a.storedCount; case .bsr(let a): a.storedCount; case .nm(let a): a.storedCount }
    }
    public var formatName: String {
        switch self { case .csr: "CSR"; case .bsr(let a): "BSR-\(a.blockSize)"; case .nm(let a): "\(a.n):\(a.m)" }
    }
}

/// A sparse matrix uploaded to one context, for ops that run many times on the same weight (the
/// per-call upload of a host-side matrix is then skipped). On the CPU backend it only holds the matrix.
public final class UploadedSparseMatrix<Element: FloatingPointElement>: @unchecked Sendable {
    public let matrix: SparseMatrix<Element>
    public let context: ComputeContext
    /// Device copies by role (Vulkan only): "pointers", "indices", "values", "rowOrder", "entryRows", "positions".
    let buffers: [String: Storage]
    /// The values widened to fp32 once (CPU backend only), for the CPU kernels.
    let hostValues: [Float]

    init(_ matrix: SparseMatrix<Element>, context: ComputeContext) throws {
        self.matrix = matrix
        self.context = context
        guard case .vulkan = context.backend else { buffers = [:]; hostValues = SparseCPU.floatValues(matrix); return }
        hostValues = []
        // Every array is padded to at least 16 bytes so that no binding is empty.
        func upload<T: TensorElement & Numeric>(_ values: [T], minimum: Int) throws -> Storage {
            let padded = values.count >= minimum ? values : values + [T](repeating: 0, count: minimum - values.count)
            return try context.tensor(padded, shape: [padded.count]).storage
        }
        switch matrix {
        case .csr(let a):
            buffers = ["pointers": try upload(a.rowPointers, minimum: 4), "indices": try upload(a.columnIndices, minimum: 4),
                       "values": try upload(a.values, minimum: 8), "rowOrder": try upload(a.rowsByDescendingLength(), minimum: 4),
                       "entryRows": try upload(a.entryRows(), minimum: 4)]
        case .bsr(let a):
            buffers = ["pointers": try upload(a.blockRowPointers, minimum: 4), "indices": try upload(a.blockColumnIndices, minimum: 4),
                       "values": try upload(a.values, minimum: 16)]
        case .nm(let a):
            buffers = ["values": try upload(a.values, minimum: 8), "positions": try upload(a.indices, minimum: 16)]
        }
    }
}

extension ComputeContext {
    /// Uploads a sparse matrix once for repeated ops.
    public func upload<Element>(_ matrix: SparseMatrix<Element>) throws -> UploadedSparseMatrix<Element> {
        try UploadedSparseMatrix(matrix, context: self)
    }
    public func upload<Element>(_ matrix: CSRMatrix<Element>) throws -> UploadedSparseMatrix<Element> { try upload(.csr(matrix)) }
    public func upload<Element>(_ matrix: BSRMatrix<Element>) throws -> UploadedSparseMatrix<Element> { try upload(.bsr(matrix)) }
    public func upload<Element>(_ matrix: NMSparseMatrix<Element>) throws -> UploadedSparseMatrix<Element> { try upload(.nm(matrix)) }
}
