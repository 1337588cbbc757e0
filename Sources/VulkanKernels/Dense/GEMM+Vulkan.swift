import CVulkan

/// Which GEMM kernel runs on a Vulkan device. `.automatic` picks by device and shape; the others exist
/// for benchmarks and tests, and throw if the shape or device cannot use them. (The sparse ops name
/// theirs the same way: ``SpMMKernel``.)
public enum GEMMKernel: String, Sendable, CaseIterable {
    case automatic
    /// Texel-buffer loads, subgroup shuffles, no shared memory: for CPU drivers (lavapipe).
    case subgroup
    /// Shared-memory tiles with register blocking: for GPUs.
    case tiled
    /// Matrix-vector kernel; N must be 1.
    case gemv
    /// One invocation per output element: the baseline benchmarks compare against.
    case naive
}

/// The name ``GEMMKernel`` had before the GEMM and sparse families settled on "kernel".
@available(*, deprecated, renamed: "GEMMKernel")
public typealias GEMMAlgorithm = GEMMKernel

extension ComputeContext {
    /// The kernel `.automatic` runs for a GEMM with `n` columns on this context's device; nil on the CPU.
    public func automaticGEMMKernel(n: Int) -> GEMMKernel? {
        guard let info = deviceInfo else { return nil }
        return GEMMKernel.automatic(n: n, info: info)
    }

    @available(*, deprecated, renamed: "automaticGEMMKernel(n:)")
    public func automaticGEMMAlgorithm(n: Int) -> GEMMKernel? { automaticGEMMKernel(n: n) }
}

extension GEMMKernel {
    static func automatic(n: Int, info: DeviceInfo) -> GEMMKernel {
        if n == 1 && info.supportsSubgroupArithmetic { return .gemv }
        return info.isCPUDriver && info.supportsSubgroupShuffle ? .subgroup : .tiled
    }
}

extension CommandBatch {
    func encodeGEMM(_ s: GEMMShape, a: Storage, b: Storage, c: Storage, dtype: DType, alpha: Float, beta: Float,
                    kernel requested: GEMMKernel = .automatic, on device: VulkanDevice) throws {
        let info = device.info
        try info.requireStorage(of: dtype, op: "gemm")
        let kernel = try resolve(requested, s, info: info)
        if let longest = Self.longestK(kernel, s, info: info), s.k > longest {
            throw KernelError.exceedsDeviceLimit(op: "gemm", what: "K (the device's loop-iteration cap per invocation, \(kernel) kernel)",
                                                 value: s.k, limit: longest)
        }
        let elementBytes = dtype.byteSize
        let plan = GEMMKernelPlan(kernel: kernel, shape: s, dtype: dtype, info: info)

        // Split the output into windows that fit one storage-buffer binding (maxStorageBufferRange):
        // whole batches when they fit, otherwise row ranges of one batch.
        let rowBytes = s.n * elementBytes
        let maxRange = info.maxStorageBufferRange - max(info.minStorageBufferOffsetAlignment, 256)
        guard rowBytes <= maxRange else {
            throw KernelError.exceedsDeviceLimit(op: "gemm", what: "bytes per row of C", value: rowBytes, limit: maxRange)
        }
        let batchBytes = s.strideC * elementBytes
        var windows: [(batch: Range<Int>, rows: Range<Int>)] = []
        if batchBytes * s.batch <= maxRange {
            windows = [(0..<s.batch, 0..<s.m)]
        } else if batchBytes <= maxRange {
            let perWindow = max(1, maxRange / batchBytes)
            windows = stride(from: 0, to: s.batch, by: perWindow).map { ($0..<min(s.batch, $0 + perWindow), 0..<s.m) }
        } else {
            // Whole tiles per window, so window starts keep the vec4 alignment of the full matrix.
            let rowsPerWindow = min(maxRange / rowBytes / plan.tileM, 4096) * plan.tileM
            guard rowsPerWindow > 0 else {
                throw KernelError.exceedsDeviceLimit(op: "gemm", what: "bytes per \(plan.tileM)-row tile of C",
                                                     value: rowBytes * plan.tileM, limit: maxRange)
            }
            for batch in 0..<s.batch {
                windows += stride(from: 0, to: s.m, by: rowsPerWindow).map { (batch..<(batch + 1), $0..<min(s.m, $0 + rowsPerWindow)) }
            }
        }
        for window in windows {
            let rows = window.rows
            // Element where this window's A, B and C start.
            let aStart = window.batch.lowerBound * s.strideA + (s.transposeA ? rows.lowerBound : rows.lowerBound * s.lda)
            let bStart = window.batch.lowerBound * s.strideB
            let cStart = window.batch.lowerBound * s.strideC + rows.lowerBound * s.ldc
            let aElements = s.strideA == 0 ? s.m * s.k : s.strideA * s.batch
            let bElements = s.strideB == 0 ? s.k * s.n : s.strideB * s.batch
            let cEnd = (window.batch.upperBound - 1) * s.strideC + rows.upperBound * s.ldc
            let (aBinding, aOffset) = try bindingWindow(of: a, from: aStart, to: aElements, elementBytes: elementBytes, as: plan.inputKind, device: info)
            let (bBinding, bOffset) = try bindingWindow(of: b, from: bStart, to: bElements, elementBytes: elementBytes, as: plan.inputKind, device: info)
            let (cBinding, cOffset) = try bindingWindow(of: c, from: cStart, to: cEnd, elementBytes: elementBytes,
                                                 as: beta == 0 ? .storageWrite : .storageReadWrite, device: info)
            let push = GEMMPushConstants(M: UInt32(rows.count), N: UInt32(s.n), K: UInt32(s.k),
                                         lda: UInt32(s.lda), ldb: UInt32(s.ldb), ldc: UInt32(s.ldc),
                                         strideA: UInt32(s.strideA), strideB: UInt32(s.strideB), strideC: UInt32(s.strideC),
                                         offsetA: UInt32(aOffset), offsetB: UInt32(bOffset), offsetC: UInt32(cOffset),
                                         alpha: alpha, beta: beta)
            try plan.dispatch(in: self, a: aBinding, b: bBinding, c: cBinding, push: push,
                              groups: plan.groups(m: rows.count, n: s.n, batch: window.batch.count))
        }
    }

    /// The longest K whose loop one invocation of `kernel` can run under the device's per-invocation loop
    /// cap (DeviceInfo.loopIterationsPerInvocation, lavapipe), keeping half the cap as margin; nil without
    /// a cap. Each kernel's K loop takes `step` elements per trip of `perStep` loop iterations (the
    /// constant-count inner loops counted as rolled where they might be), plus `extra` for the
    /// per-invocation set-up and store loops. Measured on lavapipe: the subgroup kernel summed only the
    /// first 524 276 of 2²⁰ products (65535 trips of 8), 2¹⁸ were right.
    static func longestK(_ kernel: GEMMKernel, _ s: GEMMShape, info: DeviceInfo) -> Int? {
        guard let cap = info.loopIterationsPerInvocation else { return nil }
        let (step, perStep, extra): (Int, Int, Int) = switch kernel {
        case .subgroup, .automatic: (8, 1, 16)                        // k0 += 8, then a K % 8 tail
        case .tiled: (16, 16 + 8, 8 + 64)                             // BK = 16 steps, tile loads, TM·TN accumulators
        case .gemv: (s.transposeA ? 4 : 4 * info.subgroupSize, 1, 32)   // k += 4 transposed, else k += 4 · lanes
        case .naive: (1, 1, 2)
        }
        return max(0, (cap / 2 - extra) / perStep) * step
    }

    private func resolve(_ kernel: GEMMKernel, _ s: GEMMShape, info: DeviceInfo) throws -> GEMMKernel {
        switch kernel {
        case .automatic:
            return .automatic(n: s.n, info: info)
        case .gemv:
            guard s.n == 1 else { throw KernelError.invalidParameter(op: "gemm", name: "kernel", value: "gemv needs N = 1, got N = \(s.n)") }
            guard info.supportsSubgroupArithmetic else { throw KernelError.unsupportedOnDevice(op: "gemv", feature: "subgroup arithmetic") }
            return .gemv
        case .subgroup:
            guard info.supportsSubgroupShuffle else { throw KernelError.unsupportedOnDevice(op: "gemm", feature: "subgroup shuffle") }
            return .subgroup
        case .tiled, .naive:
            return kernel
        }
    }

    /// A binding that starts at the aligned byte offset at or below element `start` and reaches element
    /// `end`, plus `start`'s element offset inside it.
    private func bindingWindow(of storage: Storage, from start: Int, to end: Int, elementBytes: Int, as kind: BufferBinding.Kind,
                        device: DeviceInfo) throws -> (BufferBinding, Int) {
        let alignment: Int
        if case .texel = kind { alignment = max(device.minTexelBufferOffsetAlignment, 16) } else {
            alignment = max(device.minStorageBufferOffsetAlignment, 16)
        }
        let startByte = start * elementBytes / alignment * alignment
        let endByte = max(end * elementBytes, startByte + elementBytes)
        return (BufferBinding(storage, kind, byteOffset: startByte, byteCount: min(endByte, storage.byteCount) - startByte),
                (start * elementBytes - startByte) / elementBytes)
    }
}

/// The four GEMM shaders share one push-constant block (Shaders/common/gemm_params.glsl). Each shader's
/// generated `PushConstants` conforms below: the conformance stops compiling if any shader's block stops
/// matching this member list (names, order and types).
typealias GEMMPushConstants = Shader.dense_gemm_subgroup.PushConstants
protocol GEMMParameterBlock: PushConstantBlock {
    init(M: UInt32, N: UInt32, K: UInt32, lda: UInt32, ldb: UInt32, ldc: UInt32, strideA: UInt32, strideB: UInt32, strideC: UInt32,
         offsetA: UInt32, offsetB: UInt32, offsetC: UInt32, alpha: Float, beta: Float)
    var M: UInt32 { get }; var N: UInt32 { get }; var K: UInt32 { get }
    var lda: UInt32 { get }; var ldb: UInt32 { get }; var ldc: UInt32 { get }
    var strideA: UInt32 { get }; var strideB: UInt32 { get }; var strideC: UInt32 { get }
    var offsetA: UInt32 { get }; var offsetB: UInt32 { get }; var offsetC: UInt32 { get }
    var alpha: Float { get }; var beta: Float { get }
}
extension GEMMParameterBlock {
    init(_ p: some GEMMParameterBlock) {
        self.init(M: p.M, N: p.N, K: p.K, lda: p.lda, ldb: p.ldb, ldc: p.ldc, strideA: p.strideA, strideB: p.strideB, strideC: p.strideC,
                  offsetA: p.offsetA, offsetB: p.offsetB, offsetC: p.offsetC, alpha: p.alpha, beta: p.beta)
    }
}
extension Shader.dense_gemm_subgroup.PushConstants: GEMMParameterBlock {}
extension Shader.dense_gemm_tiled.PushConstants: GEMMParameterBlock {}
extension Shader.dense_gemv.PushConstants: GEMMParameterBlock {}
extension Shader.dense_gemm_naive.PushConstants: GEMMParameterBlock {}

/// The pipeline, binding kinds and dispatch geometry of one GEMM kernel for one shape, as each
/// shader's header comment (Shaders/dense/*.comp) specifies them.
struct GEMMKernelPlan {
    private enum Pipeline {
        case subgroup(Kernel<Shader.dense_gemm_subgroup>)
        case tiled(Kernel<Shader.dense_gemm_tiled>)
        case gemv(Kernel<Shader.dense_gemv>)
        case naive(Kernel<Shader.dense_gemm_naive>)
    }
    private let pipeline: Pipeline
    let inputKind: BufferBinding.Kind
    /// Rows of C one workgroup covers: row windows are whole multiples of it (keeps vec4 alignment).
    let tileM: Int
    private let groupsFor: (_ m: Int, _ n: Int) -> (Int, Int)

    init(kernel: GEMMKernel, shape s: GEMMShape, dtype: DType, info: DeviceInfo) {
        let transA = UInt32(s.transposeA ? 1 : 0), transB = UInt32(s.transposeB ? 1 : 0)
        func texel(vec4: Bool) -> BufferBinding.Kind { .floatTexels(dtype, vec4: vec4) }
        func ceilDiv(_ a: Int, _ b: Int) -> Int { (a + b - 1) / b }
        switch kernel {
        case .subgroup, .automatic:
            // 4-wide loads need every row and batch start of A and B on a multiple of 4 elements.
            let vec4 = s.lda % 4 == 0 && s.ldb % 4 == 0 && s.strideA % 4 == 0 && s.strideB % 4 == 0
            // One subgroup per 16 × 4·S tile; 8 lanes where the size can be chosen (fastest measured on
            // lavapipe), else the device's size.
            let lanes = info.subgroupLanes(.whereverAvailable)
            pipeline = .subgroup(Kernel(dtype.storageVariant(base: .base, f16: .f16, bf16: .bf16), specialization: [transA, transB, vec4 ? 1 : 0, UInt32(lanes)],
                                        requiredSubgroupSize: lanes))
            inputKind = texel(vec4: vec4)
            tileM = 16
            groupsFor = { m, n in (ceilDiv(n, 4 * lanes), ceilDiv(m, 16)) }
        case .tiled:
            // Shared memory holds BK·(BM + BN) fp32 values; pick the largest tile the device allows.
            let (bm, bn, bk, tm, tn): (Int, Int, Int, Int, Int) =
                if info.maxComputeSharedMemorySize >= 48 << 10 && info.maxComputeWorkGroupInvocations >= 256 { (128, 128, 16, 8, 8) }
                else if info.maxComputeWorkGroupInvocations >= 256 { (64, 64, 16, 4, 4) }
                else { (64, 32, 16, 4, 4) }
            let invocations = (bm / tm) * (bn / tn)
            pipeline = .tiled(Kernel(dtype.storageVariant(base: .base, f16: .f16, bf16: .bf16),
                                     specialization: [transA, transB, UInt32(bm), UInt32(bn), UInt32(bk), UInt32(tm), UInt32(tn), UInt32(invocations)]))
            inputKind = .storageRead
            tileM = bm
            groupsFor = { m, n in (ceilDiv(n, bn), ceilDiv(m, bm)) }
        case .gemv:
            let vec4 = s.lda % 4 == 0 && s.strideA % 4 == 0 && s.strideB % 4 == 0
            let lanes = info.subgroupSize
            let rows = 4
            pipeline = .gemv(Kernel(dtype.storageVariant(base: .base, f16: .f16, bf16: .bf16), specialization: [transA, transB, vec4 ? 1 : 0, UInt32(lanes), UInt32(rows)],
                                    requiredSubgroupSize: lanes))
            inputKind = texel(vec4: vec4)
            tileM = s.transposeA ? 4 * lanes : rows
            groupsFor = { m, _ in (s.transposeA ? ceilDiv(m, 4 * lanes) : ceilDiv(m, rows), 1) }
        case .naive:
            pipeline = .naive(Kernel(dtype.storageVariant(base: .base, f16: .f16, bf16: .bf16), specialization: [transA, transB, 16, 8]))
            inputKind = .storageRead
            tileM = 8
            groupsFor = { m, n in (ceilDiv(n, 16), ceilDiv(m, 8)) }
        }
    }

    /// Records this plan's kernel over one window of C.
    func dispatch(in batch: CommandBatch, a: BufferBinding, b: BufferBinding, c: BufferBinding, push: GEMMPushConstants,
                  groups: (Int, Int, Int)) throws {
        switch pipeline {
        case .subgroup(let kernel): try batch.dispatch(kernel, .init(matrixA: a, matrixB: b, outputC: c), push: .init(push), groups: groups)
        case .tiled(let kernel): try batch.dispatch(kernel, .init(inputA: a, inputB: b, outputC: c), push: .init(push), groups: groups)
        case .gemv(let kernel): try batch.dispatch(kernel, .init(matrixA: a, vectorX: b, outputC: c), push: .init(push), groups: groups)
        case .naive(let kernel): try batch.dispatch(kernel, .init(inputA: a, inputB: b, outputC: c), push: .init(push), groups: groups)
        }
    }

    func groups(m: Int, n: Int, batch: Int) -> (Int, Int, Int) {
        let (x, y) = groupsFor(m, n)
        return (x, y, batch)
    }
}
