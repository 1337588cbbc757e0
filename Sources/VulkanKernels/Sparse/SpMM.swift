/// Sparse × dense products: C = alpha·A·B + beta·C with A sparse (SpMM), and the linear-layer form
/// Y = alpha·X·Wᵀ + beta·Y with W sparse (activations × pruned weightᵀ).
extension CommandBatch {
    /// C = alpha·A·B + beta·C. A is a sparse M×K matrix (CSR, BSR or N:M), B is a dense `[K, N]` tensor,
    /// C a dense `[M, N]` tensor, all of one element type (`Float`, `Float16` or `BFloat16` storage; products are
    /// accumulated in fp32). `beta == 0` never reads C. `kernel` forces one Vulkan kernel (benchmarks,
    /// tests; see ``SpMMKernel``). Throws ``KernelError`` for mismatched shapes, tensors of another context,
    /// non-finite alpha/beta or a forced kernel that does not apply, before anything runs.
    public func spmm<Element>(_ a: UploadedSparseMatrix<Element>, _ b: Tensor<Element>, into c: Tensor<Element>,
                              alpha: Float = 1, beta: Float = 0, kernel: SpMMKernel = .automatic) throws {
        let op = "spmm"
        try checkOperands(op, ("A", a.context), ("B", b.context), ("C", c.context), finite: [("alpha", alpha), ("beta", beta)])
        let shape = try SpMMShape(op: op, a: a.matrix, b: b.shape, c: c.shape, linear: false)
        switch backend {
        case .vulkan(let device): try encodeSpMM(a, shape, b: b.storage, c: c.storage, alpha: alpha, beta: beta, kernel: kernel, on: device)
        case .cpu: cpuSpMM(a, shape, b: b.storage, c: c.storage, alpha: alpha, beta: beta)
        }
    }

    /// Y = alpha·X·Wᵀ + beta·Y, the product a linear layer with a pruned weight computes: X is `[T, K]`
    /// (T tokens), W a sparse `[O, K]` weight, Y `[T, O]`. Same types, accumulation and errors as
    /// ``spmm(_:_:into:alpha:beta:kernel:)-(UploadedSparseMatrix<Element>,_,_,_,_,_)``.
    public func linear<Element>(_ x: Tensor<Element>, weight: UploadedSparseMatrix<Element>, into y: Tensor<Element>,
                                alpha: Float = 1, beta: Float = 0, kernel: SpMMKernel = .automatic) throws {
        let op = "linear"
        try checkOperands(op, ("X", x.context), ("W", weight.context), ("Y", y.context), finite: [("alpha", alpha), ("beta", beta)])
        let shape = try SpMMShape(op: op, a: weight.matrix, b: x.shape, c: y.shape, linear: true)
        switch backend {
        case .vulkan(let device): try encodeSpMM(weight, shape, b: x.storage, c: y.storage, alpha: alpha, beta: beta, kernel: kernel, on: device)
        case .cpu: cpuSpMM(weight, shape, b: x.storage, c: y.storage, alpha: alpha, beta: beta)
        }
    }

    /// ``spmm(_:_:into:alpha:beta:kernel:)-(UploadedSparseMatrix<Element>,_,_,_,_,_)`` with a host-side matrix, uploaded for this batch.
    public func spmm<Element>(_ a: SparseMatrix<Element>, _ b: Tensor<Element>, into c: Tensor<Element>,
                              alpha: Float = 1, beta: Float = 0, kernel: SpMMKernel = .automatic) throws {
        try spmm(try context.upload(a), b, into: c, alpha: alpha, beta: beta, kernel: kernel)
    }

    /// ``linear(_:weight:into:alpha:beta:kernel:)-(_,UploadedSparseMatrix<Element>,_,_,_,_)`` with a host-side weight, uploaded for this batch.
    public func linear<Element>(_ x: Tensor<Element>, weight: SparseMatrix<Element>, into y: Tensor<Element>,
                                alpha: Float = 1, beta: Float = 0, kernel: SpMMKernel = .automatic) throws {
        try linear(x, weight: try context.upload(weight), into: y, alpha: alpha, beta: beta, kernel: kernel)
    }
}

extension ComputeContext {
    /// A·B into a new `[M, N]` tensor, in a batch of its own.
    public func spmm<Element>(_ a: SparseMatrix<Element>, _ b: Tensor<Element>) throws -> Tensor<Element> {
        guard b.rank == 2 else { throw KernelError.invalidShape(op: "spmm", operand: "B", shape: b.shape, expected: "[K, N]") }
        let c: Tensor<Element> = try empty(shape: [a.rows, b.shape[1]])
        try batch { try $0.spmm(a, b, into: c) }
        return c
    }

    /// X·Wᵀ into a new `[T, O]` tensor, in a batch of its own.
    public func linear<Element>(_ x: Tensor<Element>, weight: SparseMatrix<Element>) throws -> Tensor<Element> {
        guard x.rank == 2 else { throw KernelError.invalidShape(op: "linear", operand: "X", shape: x.shape, expected: "[T, K]") }
        let y: Tensor<Element> = try empty(shape: [x.shape[0], weight.rows])
        try batch { try $0.linear(x, weight: weight, into: y) }
        return y
    }
}

/// The sizes of one SpMM, checked: the sparse operand is M×K, the dense one K×N (stored N×K when
/// `linear`, as X), the output M×N (stored N×M when `linear`, as Y).
struct SpMMShape {
    let m: Int, n: Int, k: Int
    let linear: Bool

    /// Useful flops: 2 per stored value per output column.
    static func flops(stored: Int, n: Int) -> Double { 2 * Double(stored) * Double(n) }

    init(op: String, a: SparseMatrix<some FloatingPointElement>, b: [Int], c: [Int], linear: Bool) throws {
        let (bName, cName) = linear ? ("X", "Y") : ("B", "C")
        guard b.count == 2 else { throw KernelError.invalidShape(op: op, operand: bName, shape: b, expected: linear ? "[T, K]" : "[K, N]") }
        guard c.count == 2 else { throw KernelError.invalidShape(op: op, operand: cName, shape: c, expected: linear ? "[T, O]" : "[M, N]") }
        let (bK, bN) = linear ? (b[1], b[0]) : (b[0], b[1])
        guard bK == a.columns else { throw KernelError.shapeMismatch(op: op + " (columns of the sparse matrix vs \(bName))", lhs: [a.rows, a.columns], rhs: b) }
        let expected = linear ? [bN, a.rows] : [a.rows, bN]
        guard c == expected else { throw KernelError.invalidShape(op: op, operand: cName, shape: c, expected: "\(expected)") }
        guard a.rows > 0, bN > 0 else { throw KernelError.emptyTensor(op: op, operand: cName) }
        guard a.columns > 0 else { throw KernelError.emptyTensor(op: op, operand: bName) }
        m = a.rows; n = bN; k = a.columns
        self.linear = linear
    }
}
