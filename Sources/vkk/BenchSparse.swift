import ArgumentParser
import VulkanKernels

struct BenchSparse: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sparse",
        abstract: "Sparsity sweep of SpMM (pruned weight × activations): CSR (magnitude and random pruning), BSR 16/32 and 2:4, "
            + "against dense GEMM on the same backend and OpenBLAS sgemm on this CPU, measured in the same run. "
            + "With --matrices DIR: SpMM and SpMV on every .smtx/.mtx file under DIR (e.g. DLMC) against dense on the same backend.")

    @OptionGroup var options: BenchOptions

    @Option(help: "Storage type: f32, f16 or bf16 (16-bit storage, fp32 accumulation; bf16 with the synthetic sweep only).")
    var dtype: DTypeChoice = .f32

    @Option(parsing: .upToNextOption, help: "Sparsities in percent (default 50 70 80 90 95 98; --quick: 70 90).")
    var sparsity: [Double] = []

    @Option(parsing: .upToNextOption, help: ArgumentHelp("Token counts N (default 1 16 256; --quick: 1 256). With --matrices: one N for every "
            + "matrix no batch-size file lists (default 256)."))
    var tokens: [Int] = []

    @Option(help: ArgumentHelp("Run on the sparse matrices under this folder (.smtx / .mtx, recursively) instead of pruned "
            + "synthetic weights; see docs/real-data.md."))
    var matrices: String?

    @Option(parsing: .upToNextOption, help: "Weight shapes as OUTxIN (default 4096x4096 4096x16384; --quick: 4096x4096).")
    var weight: [String] = []

    @Option(parsing: .upToNextOption, help: "Formats: csr-magnitude csr-random bsr16 bsr32 2:4 (default all; --quick: csr-magnitude bsr32 2:4).")
    var format: [String] = []

    @Option(help: "Vulkan SpMM kernel (N > 1): automatic, rowEntries, nmTiles or blockTiles; a forced kernel must fit every format run.")
    var kernel: String = SpMMKernel.automatic.rawValue

    @Flag(help: ArgumentHelp("Time the linear-layer form Y = X·Wᵀ (X stored tokens × K, Y tokens × M) instead of C = W·B; "
                             + "the dense baselines stay W·B (the same multiply-adds)."))
    var linear = false

    enum DTypeChoice: String, ExpressibleByArgument { case f32, f16, bf16 }

    private var spmmKernel: SpMMKernel { SpMMKernel(rawValue: kernel) ?? .automatic }

    func validate() throws {
        guard tokens.allSatisfy({ $0 > 0 }) else { throw ValidationError("--tokens must be positive") }
        guard sparsity.allSatisfy({ $0.isFinite && $0 >= 0 && $0 < 100 }) else { throw ValidationError("--sparsity takes percentages in [0, 100)") }
        guard SpMMKernel(rawValue: kernel) != nil else {
            throw ValidationError("unknown --kernel \(kernel): \(SpMMKernel.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        if let matrices {
            guard sparsity.isEmpty, weight.isEmpty, format.isEmpty else {
                throw ValidationError("--matrices takes its shapes and sparsities from the files: drop --sparsity, --weight and --format")
            }
            guard tokens.count <= 1, tokens.allSatisfy({ $0 > 0 }) else { throw ValidationError("--tokens takes one positive N with --matrices") }
            guard dtype != .bf16 else { throw ValidationError("--matrices runs f32 or f16; bf16 runs with the synthetic sweep") }
            try MatrixCollectionSweep(options: options, directory: matrices, defaultTokens: tokens.first, f16: dtype == .f16).run()
            return
        }
        let context = try options.makeContext()
        let blas = try ComputeContext(backend: .cpu)
        let table = BenchTable(title: "sparse \(linear ? "linear (Y = X·Wᵀ)" : "spmm") \(dtype.rawValue) on \(context.backendDescription), \(todayUTC())")
        let sparsities = sparsity.isEmpty ? (options.quick ? [70.0, 90] : [50.0, 70, 80, 90, 95, 98]) : sparsity
        let tokenCounts = tokens.isEmpty ? (options.quick ? [1, 256] : [1, 16, 256]) : tokens
        let formats = format.isEmpty ? (options.quick ? ["csr-magnitude", "bsr32", "2:4"] : ["csr-magnitude", "csr-random", "bsr16", "bsr32", "2:4"])
                                     : format
        let weights = try (weight.isEmpty ? (options.quick ? ["4096x4096"] : ["4096x4096", "4096x16384"]) : weight).map { text in
            let parts = text.split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2, parts.allSatisfy({ $0 > 0 }) else { throw ValidationError("--weight takes OUTxIN, got \(text)") }
            return (rows: parts[0], columns: parts[1])
        }
        for shape in weights {
            // The dense weight (host, device, pruned copies and the OpenBLAS baseline) and B and C at the largest N.
            let what = "sparse --weight \(shape.rows)x\(shape.columns)"
            let n = tokenCounts.max() ?? 1
            try RunLimits.checkMemory(RunLimits.floatBytes([[4, shape.rows, shape.columns], [3, shape.columns, n], [3, shape.rows, n]], what),
                                      for: what, context: context)
        }
        for shape in weights {
            let dense = [Float].benchData(count: shape.rows * shape.columns, seed: 11)
            for n in tokenCounts {
                let blasBaseline = try BLASBaseline(m: shape.rows, k: shape.columns, n: n, blas: blas, repeats: options.repeats)
                // Dense Vulkan GEMM is timed once per shape (it is slow); on the CPU backend the dense
                // baseline is OpenBLAS itself.
                let vulkanDense = context.isVulkan ? try measureVulkanDense(shape.rows, shape.columns, n, context: context) : nil
                for name in formats {
                    for target in (name == "2:4" ? [50.0] : sparsities) {
                        let matrix = try prune(dense, shape.rows, shape.columns, format: name, sparsity: target / 100)
                        let row: BenchRow = switch dtype {
                        case .f32: try measure(Float.self, matrix, name: name, n: n, vulkanDense: vulkanDense, blas: blasBaseline, context: context)
                        case .f16: try measure(Float16.self, matrix, name: name, n: n, vulkanDense: vulkanDense, blas: blasBaseline, context: context)
                        case .bf16: try measure(BFloat16.self, matrix, name: name, n: n, vulkanDense: vulkanDense, blas: blasBaseline, context: context)
                        }
                        table.add(row)
                    }
                }
            }
        }
        if let path = options.json {
            try table.writeJSON(to: path, device: context.backendDescription, extra: ["date": todayUTC(), "dtype": dtype.rawValue, "form": linear ? "linear" : "spmm"])
        }
    }

    private func prune(_ dense: [Float], _ rows: Int, _ columns: Int, format: String, sparsity: Double) throws -> SparseMatrix<Float> {
        switch format {
        case "csr-magnitude": .csr(try SparsePruning.magnitude(dense, rows: rows, columns: columns, sparsity: sparsity))
        case "csr-random": .csr(try SparsePruning.random(dense, rows: rows, columns: columns, sparsity: sparsity, seed: 5))
        case "bsr16": .bsr(try SparsePruning.blockMagnitude(dense, rows: rows, columns: columns, blockSize: 16, sparsity: sparsity))
        case "bsr32": .bsr(try SparsePruning.blockMagnitude(dense, rows: rows, columns: columns, blockSize: 32, sparsity: sparsity))
        case "2:4": .nm(try SparsePruning.nm(dense, rows: rows, columns: columns, n: 2, m: 4))
        default: throw ValidationError("unknown format \(format): csr-magnitude, csr-random, bsr16, bsr32 or 2:4")
        }
    }

    /// Dense GEMM on the Vulkan backend (automatic kernel), M×K · K×N.
    private func measureVulkanDense(_ m: Int, _ k: Int, _ n: Int, context: ComputeContext) throws -> Double {
        let a = try context.tensor([Float].benchData(count: m * k, seed: 1), shape: [m, k])
        let b = try context.tensor([Float].benchData(count: k * n, seed: 2), shape: [k, n])
        let c = try context.zeros(Float.self, shape: [m, n])
        return try medianSeconds(context, warmup: options.warmup, repeats: options.repeats) { try $0.gemm(a, b, into: c) }
    }

    private func measure<Element: FloatingPointElement>(_: Element.Type, _ matrix32: SparseMatrix<Float>, name: String, n: Int,
                                                        vulkanDense: Double?, blas: BLASBaseline, context: ComputeContext) throws -> BenchRow {
        let matrix: SparseMatrix<Element> = switch matrix32 {
        case .csr(let a): .csr(a.converted())
        case .bsr(let a): .bsr(a.converted())
        case .nm(let a): .nm(a.converted())
        }
        let (m, k) = (matrix.rows, matrix.columns)
        let uploaded = try context.upload(matrix)
        let b = try context.tensor([Float].benchData(count: k * n, seed: 2).map { Element($0) }, shape: linear ? [n, k] : [k, n])
        let c = try context.zeros(Element.self, shape: linear ? [n, m] : [m, n])
        let body: (CommandBatch) throws -> Void = { batch in
            if n == 1 {
                try batch.spmv(uploaded, try b.reshaped([k]), into: try c.reshaped([m]))
            } else if linear {
                try batch.linear(b, weight: uploaded, into: c, kernel: spmmKernel)
            } else {
                try batch.spmm(uploaded, b, into: c, kernel: spmmKernel)
            }
        }
        // OpenBLAS is timed again for every row. On the CPU backend, where it is also the dense baseline,
        // run for run in turn with the sparse product (sparse, sgemm, sparse, sgemm, …), so that bursts of
        // other load on the machine (this VM's host) fall on both sides of the ratio alike; beside a Vulkan
        // row, before it.
        let seconds: Double, baseline: (dense: Double, blas: Double)
        if let vulkanDense {
            let blasSeconds = try blas.time()
            seconds = try medianSeconds(context, warmup: options.warmup, repeats: options.repeats, body)
            baseline = (vulkanDense, blasSeconds)
        } else {
            let medians = try interleavedMedians(warmup: options.warmup, repeats: options.repeats,
                                                 [{ try timedSeconds(context, body) }, { try blas.timeOnce() }])
            seconds = medians[0]
            baseline = (medians[1], medians[1])
        }
        let elementBytes = Double(MemoryLayout<Element>.stride)
        let stored = Double(matrix.storedCount)
        let structureBytes: Double = switch matrix {
        case .csr(let a): Double(a.storedCount + a.rows + 1) * 4
        case .bsr(let a): Double(a.blockCount + a.blockRows + 1) * 4
        case .nm(let a): Double(a.storedCount)
        }
        let bytes = stored * elementBytes + structureBytes + Double(k * n + m * n) * elementBytes
        let flops = 2 * stored * Double(n)
        return BenchRow([
            "format": .text(name), "sparsity %": .number(100 * sparsityOf(matrix), digits: 2), "M": .integer(m), "K": .integer(k),
            "N": .integer(n), "ms": .number(seconds * 1e3, digits: 3), "GFLOP/s": .number(flops / seconds * 1e-9, digits: 1),
            "GB/s": .number(bytes / seconds * 1e-9, digits: 2), "vs dense": .number(baseline.dense / seconds, digits: 2),
            "vs BLAS": .number(baseline.blas / seconds, digits: 2), "dense ms": .number(baseline.dense * 1e3, digits: 3),
            "BLAS ms": .number(baseline.blas * 1e3, digits: 3),
        ])
    }

    /// OpenBLAS sgemm (sgemv at N = 1) on one shape, kept allocated so it can be re-timed per row.
    struct BLASBaseline {
        let a: Tensor<Float>, b: Tensor<Float>, c: Tensor<Float>
        let context: ComputeContext
        let repeats: Int

        init(m: Int, k: Int, n: Int, blas: ComputeContext, repeats: Int) throws {
            a = try blas.tensor([Float].benchData(count: m * k, seed: 1), shape: [m, k])
            b = try blas.tensor([Float].benchData(count: k * n, seed: 2), shape: [k, n])
            c = try blas.zeros(Float.self, shape: [m, n])
            context = blas
            self.repeats = repeats
        }

        func time() throws -> Double {
            try medianSeconds(context, warmup: 1, repeats: repeats) { try $0.gemm(a, b, into: c) }
        }

        /// One timed sgemm.
        func timeOnce() throws -> Double {
            try timedSeconds(context) { try $0.gemm(a, b, into: c) }
        }
    }

    private func sparsityOf<Element>(_ matrix: SparseMatrix<Element>) -> Double {
        switch matrix {
        case .csr(let a): a.sparsity
        case .bsr(let a): a.sparsity
        case .nm(let a): a.sparsity
        }
    }
}
