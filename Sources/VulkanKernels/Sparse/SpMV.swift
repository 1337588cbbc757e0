/// Sparse matrix × vector: y = alpha·A·x + beta·y.
extension CommandBatch {
    /// y = alpha·A·x + beta·y with A sparse M×K, x a `[K]` tensor and y a `[M]` tensor (`Float`,
    /// `Float16` or `BFloat16` storage, fp32 accumulation; `beta == 0` never reads y). Every format runs the
    /// matrix-vector kernel Shaders/sparse/spmv_csr.comp (a subgroup per row, lanes striding over its
    /// entries and reducing with subgroupAdd; CSR rows longest first).
    public func spmv<Element>(_ a: UploadedSparseMatrix<Element>, _ x: Tensor<Element>, into y: Tensor<Element>,
                              alpha: Float = 1, beta: Float = 0) throws {
        let op = "spmv"
        try checkOperands(op, ("A", a.context), ("x", x.context), ("y", y.context), finite: [("alpha", alpha), ("beta", beta)])
        guard x.shape == [a.matrix.columns] else { throw KernelError.invalidShape(op: op, operand: "x", shape: x.shape, expected: "[\(a.matrix.columns)]") }
        guard y.shape == [a.matrix.rows] else { throw KernelError.invalidShape(op: op, operand: "y", shape: y.shape, expected: "[\(a.matrix.rows)]") }
        guard a.matrix.rows > 0 else { throw KernelError.emptyTensor(op: op, operand: "y") }
        guard a.matrix.columns > 0 else { throw KernelError.emptyTensor(op: op, operand: "x") }
        _ = try SpMMShape(op: op, a: a.matrix, b: [a.matrix.columns, 1], c: [a.matrix.rows, 1], linear: false)
        switch backend {
        case .vulkan(let device): try encodeSpMV(a, x: x.storage, y: y.storage, alpha: alpha, beta: beta, on: device)
        case .cpu: cpuSpMV(a, x: x.storage, y: y.storage, alpha: alpha, beta: beta)
        }
    }

    /// ``spmv(_:_:into:alpha:beta:)`` with a host-side matrix, uploaded for this batch.
    public func spmv<Element>(_ a: SparseMatrix<Element>, _ x: Tensor<Element>, into y: Tensor<Element>,
                              alpha: Float = 1, beta: Float = 0) throws {
        try spmv(try context.upload(a), x, into: y, alpha: alpha, beta: beta)
    }
}

extension ComputeContext {
    /// A·x into a new `[M]` tensor, in a batch of its own.
    public func spmv<Element>(_ a: SparseMatrix<Element>, _ x: Tensor<Element>) throws -> Tensor<Element> {
        let y: Tensor<Element> = try empty(shape: [a.rows])
        try batch { try $0.spmv(a, x, into: y) }
        return y
    }
}
