import ArgumentParser
import FoundationEssentials
import VulkanKernels

/// `vkk bench sparse --matrices DIR`: SpMM (C = A·B at the N each layer really sees) and SpMV on every
/// sparse matrix under DIR (DLMC `.smtx`, Matrix Market `.mtx`), each against the dense GEMM / GEMV of the
/// same shape with A materialised, on the same backend in the same run. Then a summary per model ×
/// pruning method × sparsity, as in Figure 1 of Gale et al., "Sparse GPU Kernels for Deep Learning".
struct MatrixCollectionSweep {
    let options: BenchOptions
    let directory: String
    /// `--tokens`: N for matrices no batch-size file lists.
    let defaultTokens: Int?
    let f16: Bool

    /// Pattern-only files get uniform values in [−1, 1) from this seed (SparseMatrixData.withRandomValues).
    static let valueSeed: UInt64 = 1

    /// One measured matrix, kept for the summary.
    struct Result {
        var entry: SparseMatrixCollection.Entry
        var actualSparsity: Double
        var spmmSpeedup: Double
        var spmvSpeedup: Double
    }

    func run() throws {
        let collection = try SparseMatrixCollection(directory: directory,
                                                    defaultTokens: defaultTokens ?? SparseMatrixCollection.standardDefaultTokens)
        let entries = options.quick ? Self.quickSample(collection.entries) : collection.entries
        // Read and check every file before timing anything, so that a bad file fails the run at once.
        let matrices = try entries.map { entry -> SparseMatrixData in
            let data = try entry.read()
            guard data.rows > 0, data.columns > 0 else {
                throw ValidationError("\(entry.path): an empty matrix (\(data.rows) × \(data.columns)) has nothing to multiply")
            }
            return data.values == nil ? data.withRandomValues(seed: Self.valueSeed) : data
        }
        let context = try options.makeContext()
        // The dense baseline materialises every matrix: refuse one this machine or device cannot hold.
        for (entry, data) in zip(entries, matrices) {
            let what = "the dense baseline of \(entry.path) (\(data.rows) × \(data.columns), N = \(entry.tokens))"
            try RunLimits.checkMemory(RunLimits.floatBytes([[2, data.rows, data.columns], [2, data.columns, entry.tokens], [2, data.rows, entry.tokens]], what),
                                      for: what, context: context)
        }
        let dtype = f16 ? "f16" : "f32"
        let device = context.backendDescription
        print("\(entries.count) \(entries.count == 1 ? "matrix" : "matrices") under \(directory)\(options.quick ? " (--quick sample)" : ""); " + tokensDescription(collection))
        print("sparse: CSR (the library's format for unstructured patterns; spmm, or spmv where N = 1), \(dtype) storage, fp32 accumulation; "
              + "dense: gemm, algorithm \(denseAlgorithmDescription(context, collection: collection)); "
              + "median of \(options.repeats) after \(options.warmup) warm-up, sparse and dense runs interleaved")
        let table = BenchTable(title: "sparse matrices spmm/spmv \(dtype) on \(device), \(todayUTC())")
        var rows: [BenchRow] = [], results: [Result] = []
        for (entry, data) in zip(entries, matrices) {
            let (row, result) = try f16 ? measure(Float16.self, entry, data, context: context)
                                        : measure(Float.self, entry, data, context: context)
            table.add(row)
            rows.append(row)
            results.append(result)
        }
        print("")
        let summary = Self.summary(results)
        let summaryTable = BenchTable(title: "median speedup over dense on \(device) (sparse time / dense time, same run), \(todayUTC())")
        summary.forEach(summaryTable.add)
        if let path = options.json {
            try writeJSON(to: path, device: device, dtype: dtype, tokens: tokensDescription(collection), rows: rows, summary: summary)
        }
    }

    /// One SpMM at the layer's N and one SpMV, each against dense GEMM / GEMV of the same shape.
    private func measure<Element: FloatingPointElement>(_: Element.Type, _ entry: SparseMatrixCollection.Entry, _ data: SparseMatrixData,
                                                        context: ComputeContext) throws -> (BenchRow, Result) {
        let csr: CSRMatrix<Element>
        do {
            csr = try CSRMatrix<Float>(data).converted()
        } catch {
            throw ValidationError("\(entry.path): \(error)")
        }
        let (m, k, n) = (csr.rows, csr.columns, entry.tokens)
        let sparse = try context.upload(csr)
        let dense = try context.tensor(csr.toDense(), shape: [m, k])
        let b = try context.tensor([Float].benchData(count: k * n, seed: 2).map { Element($0) }, shape: [k, n])
        let c = try context.zeros(Element.self, shape: [m, n])
        let x = try context.tensor([Float].benchData(count: k, seed: 3).map { Element($0) }, shape: [k])
        let y = try context.zeros(Element.self, shape: [m])
        let (xColumn, yColumn) = (try x.reshaped([k, 1]), try y.reshaped([m, 1]))
        // At N = 1 the library's matrix-vector kernel is the right one for the "SpMM" too (spmm's column tiles
        // would be 1 wide), so that is what runs; the kernel column says so.
        let bodies: [(CommandBatch) throws -> Void] = [
            n == 1 ? { try $0.spmv(sparse, x, into: y) } : { try $0.spmm(sparse, b, into: c) },
            n == 1 ? { try $0.gemm(dense, xColumn, into: yColumn) } : { try $0.gemm(dense, b, into: c) },
            { try $0.spmv(sparse, x, into: y) },
            { try $0.gemm(dense, xColumn, into: yColumn) },
        ]
        let medians = try interleavedMedians(warmup: options.warmup, repeats: options.repeats, bodies.map { body in { try timedSeconds(context, body) } })
        let (spmm, gemm, spmv, gemv) = (medians[0], medians[1], medians[2], medians[3])
        let usefulFlops = 2 * Double(csr.storedCount) * Double(n)
        let row = BenchRow([
            "nominal %": .number(100 * (entry.nominalSparsity ?? .nan), digits: 0), "actual %": .number(100 * csr.sparsity, digits: 2),
            "M": .integer(m), "K": .integer(k), "N": .integer(n),
            "SpMM ms": .number(spmm * 1e3, digits: 3), "GFLOP/s": .number(usefulFlops / spmm * 1e-9, digits: 2),
            "dense ms": .number(gemm * 1e3, digits: 3), "SpMM x": .number(gemm / spmm, digits: 2),
            "SpMV us": .number(spmv * 1e6, digits: 1), "MV GFLOP/s": .number(2 * Double(csr.storedCount) / spmv * 1e-9, digits: 2),
            "GEMV us": .number(gemv * 1e6, digits: 1), "SpMV x": .number(gemv / spmv, digits: 2),
            "kernel": .text(n == 1 ? "spmv" : "spmm"),
            // Text of varying width last, so that the numbers stay aligned.
            "model": .text(entry.model), "method": .text(entry.method), "layer": .text(entry.layer),
        ])
        return (row, Result(entry: entry, actualSparsity: csr.sparsity, spmmSpeedup: gemm / spmm, spmvSpeedup: gemv / spmv))
    }

    /// Median speedups per model × method × nominal sparsity, then per model × method over all sparsities.
    static func summary(_ results: [Result]) -> [BenchRow] {
        struct Key: Hashable { var model: String, method: String, sparsity: Double? }
        func row(_ key: Key, _ group: [Result]) -> BenchRow {
            let tokens = Set(group.map(\.entry.tokens)).sorted { $0 > $1 }.map { String($0) }.joined(separator: "/")
            return BenchRow([
                "sparsity": key.sparsity.map { .number(100 * $0, digits: 0) } ?? .text("all"),
                "matrices": .integer(group.count), "actual % (median)": .number(100 * median(group.map(\.actualSparsity)), digits: 1),
                "SpMM x (median)": .number(median(group.map(\.spmmSpeedup)), digits: 2),
                "SpMV x (median)": .number(median(group.map(\.spmvSpeedup)), digits: 2),
                "SpMM faster": .text("\(group.filter { $0.spmmSpeedup > 1 }.count)/\(group.count)"),
                "N": .text(tokens), "model": .text(key.model), "method": .text(key.method),
            ])
        }
        var rows: [BenchRow] = []
        let byMethod = Dictionary(grouping: results) { Key(model: $0.entry.model, method: $0.entry.method, sparsity: nil) }
        for methodKey in byMethod.keys.sorted(by: { ($0.model, $0.method) < ($1.model, $1.method) }) {
            let group = byMethod[methodKey]!
            let bySparsity = Dictionary(grouping: group) { $0.entry.nominalSparsity ?? -1 }
            for sparsity in bySparsity.keys.sorted() where sparsity >= 0 {
                rows.append(row(Key(model: methodKey.model, method: methodKey.method, sparsity: sparsity), bySparsity[sparsity]!))
            }
            rows.append(row(methodKey, group))
        }
        return rows
    }

    /// `--quick`: per model × method, the files of the nominal sparsity closest to 90% (every layer), and
    /// every file outside the DLMC layout.
    static func quickSample(_ entries: [SparseMatrixCollection.Entry]) -> [SparseMatrixCollection.Entry] {
        let groups = Dictionary(grouping: entries) { "\($0.model)/\($0.method)" }
        return entries.filter { entry in
            guard let sparsity = entry.nominalSparsity else { return true }
            let closest = groups["\(entry.model)/\(entry.method)"]!.compactMap(\.nominalSparsity).min { abs($0 - 0.9) < abs($1 - 0.9) }!
            return sparsity == closest
        }
    }

    private func tokensDescription(_ collection: SparseMatrixCollection) -> String {
        var parts = collection.batchSizeFiles.keys.sorted().map { "\($0) layers: N from \(collection.batchSizeFiles[$0]!)" }
        parts.append("N = \(collection.defaultTokens) for every other matrix"
                     + (defaultTokens == nil ? " (default; --tokens sets it)" : " (--tokens)"))
        return parts.joined(separator: "; ")
    }

    private func denseAlgorithmDescription(_ context: ComputeContext, collection: SparseMatrixCollection) -> String {
        guard context.isVulkan else { return "OpenBLAS sgemm on the CPU backend" }
        let wide = context.automaticGEMMKernel(n: collection.defaultTokens).map(\.rawValue) ?? "?"
        let vector = context.automaticGEMMKernel(n: 1).map(\.rawValue) ?? "?"
        return "automatic (\(wide) for N > 1, \(vector) for N = 1)"
    }

    private func writeJSON(to path: String, device: String, dtype: String, tokens: String, rows: [BenchRow], summary: [BenchRow]) throws {
        func objects(_ rows: [BenchRow]) -> String {
            rows.map { row in "    {" + row.columns.map { "\(jsonString($0.0)): \($0.1.json)" }.joined(separator: ", ") + "}" }
                .joined(separator: ",\n")
        }
        let fields: [(String, String)] = [
            ("benchmark", "sparse matrices spmm/spmv"), ("device", device), ("date", todayUTC()), ("dtype", dtype),
            ("directory", directory), ("tokens", tokens),
            ("values", "uniform [-1, 1) from SeededGenerator(seed: \(Self.valueSeed)) for pattern-only files"),
            ("timing", "median of \(options.repeats) after \(options.warmup) warm-up, sparse and dense interleaved"
                + (options.quick ? ", --quick sample" : "")),
        ]
        var text = "{\n" + fields.map { "  \(jsonString($0.0)): \(jsonString($0.1)),\n" }.joined()
        text += "  \"rows\": [\n\(objects(rows))\n  ],\n  \"summary\": [\n\(objects(summary))\n  ]\n}\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        print("wrote \(path)")
    }
}
