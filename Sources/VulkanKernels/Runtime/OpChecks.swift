/// The checks every op makes before it records anything, in one place: the batch is still recording,
/// every operand belongs to the batch's context, scalar parameters are finite, the element type is one
/// the op computes in.
extension CommandBatch {
    /// The shared preamble of an op: throws ``KernelError`` naming `op` and the operand at fault.
    func checkOperands(_ op: String, _ operands: (String, ComputeContext)..., finite: [(String, Float)] = []) throws {
        try ensureRecording(op)
        for (name, owner) in operands where owner !== context { throw KernelError.foreignTensor(op: op, operand: name) }
        for (name, value) in finite where !value.isFinite { throw KernelError.invalidParameter(op: op, name: name, value: "\(value)") }
    }

    func checkOwnership(_ op: String, _ operands: (String, ComputeContext)...) throws {
        for (name, owner) in operands where owner !== context { throw KernelError.foreignTensor(op: op, operand: name) }
    }

    func checkFinite(_ op: String, _ values: (String, Float)...) throws {
        for (name, value) in values where !value.isFinite { throw KernelError.invalidParameter(op: op, name: name, value: "\(value)") }
    }

    /// Ops that compute in floating point take `Float`, `Float16` and `BFloat16` tensors only.
    /// Ops without a bf16 kernel (softmaxRows: its CPU and Vulkan paths read only fp32 or fp16) refuse `BFloat16`.
    func refuseBFloat16(_ dtype: DType, op: String) throws {
        if dtype == .bfloat16 { throw KernelError.unsupportedDType(op: op, dtype) }
    }

    func requireFloatElement(_ dtype: DType, op: String) throws {
        guard dtype == .float32 || dtype == .float16 || dtype == .bfloat16 else { throw KernelError.unsupportedDType(op: op, dtype) }
    }
}
