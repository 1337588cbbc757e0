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
    /// The arrays the kernels read, in this format's uploaded form.
    let arrays: UploadedSparseArrays

    init(_ matrix: SparseMatrix<Element>, context: ComputeContext) throws {
        self.matrix = matrix
        self.context = context
        guard case .vulkan = context.backend else { arrays = .host(values: SparseCPU.floatValues(matrix)); return }
        // Every array is padded to at least 16 bytes so that no binding is empty.
        func upload<T: TensorElement & Numeric>(_ values: [T], minimum: Int) throws -> Storage {
            let padded = values.count >= minimum ? values : values + [T](repeating: 0, count: minimum - values.count)
            return try context.tensor(padded, shape: [padded.count]).storage
        }
        switch matrix {
        case .csr(let a):
            arrays = .csr(.init(pointers: try upload(a.rowPointers, minimum: 4), indices: try upload(a.columnIndices, minimum: 4),
                                values: try upload(a.values, minimum: 8), rowOrder: try upload(a.rowsByDescendingLength(), minimum: 4),
                                entryRows: try upload(a.entryRows(), minimum: 4)))
        case .bsr(let a):
            arrays = .bsr(.init(pointers: try upload(a.blockRowPointers, minimum: 4), indices: try upload(a.blockColumnIndices, minimum: 4),
                                values: try upload(a.values, minimum: 16)))
        case .nm(let a):
            arrays = .nm(.init(values: try upload(a.values, minimum: 8), positions: try upload(a.indices, minimum: 16)))
        }
    }

    /// The values widened to fp32 once (CPU backend only), for the CPU kernels.
    var hostValues: [Float] {
        if case .host(let values) = arrays { return values }
        return []
    }

    // The format of `arrays` is the format of `matrix` by construction; the encodings, having matched on
    // `matrix`, take the arrays of that format.
    var csrArrays: UploadedSparseArrays.CSR {
        guard case .csr(let arrays) = arrays else { preconditionFailure("CSR arrays of a \(matrix.formatName) upload") }
        return arrays
    }
    var bsrArrays: UploadedSparseArrays.BSR {
        guard case .bsr(let arrays) = arrays else { preconditionFailure("BSR arrays of a \(matrix.formatName) upload") }
        return arrays
    }
    var nmArrays: UploadedSparseArrays.NM {
        guard case .nm(let arrays) = arrays else { preconditionFailure("N:M arrays of a \(matrix.formatName) upload") }
        return arrays
    }
}

/// A sparse matrix's arrays as one context holds them: device buffers by format on Vulkan, fp32 values on
/// the CPU backend.
enum UploadedSparseArrays: @unchecked Sendable {
    struct CSR {
        let pointers: Storage, indices: Storage, values: Storage
        /// Rows in descending-length order (load balance of the row kernels).
        let rowOrder: Storage
        /// The row of every stored entry (SDDMM's one invocation per entry).
        let entryRows: Storage
    }
    struct BSR {
        /// Block-row pointers and block-column indices.
        let pointers: Storage, indices: Storage, values: Storage
    }
    struct NM {
        /// Stored values, and each one's position (byte) in its group of M.
        let values: Storage, positions: Storage
    }
    case csr(CSR), bsr(BSR), nm(NM)
    case host(values: [Float])
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
