import Foundation
import VulkanKernels
import XCTest

/// SpMM, the linear form and SpMV on real pruned-network patterns from DLMC (shared/data/dlmc_subset,
/// PROVENANCE.md §3), on both backends, against float64; and the file discovery `vkk bench sparse
/// --matrices` relies on (SparseMatrixCollection).
final class DLMCTests: XCTestCase {
    /// A sample across both models, four methods, the densest and sparsest files and the worst empty rows:
    static let sample = [
        "rn50/variational_dropout/0.5/bottleneck_2_block_group1_1_1.smtx",        // densest file (21% sparse), 64 rows of ~450
        "rn50/extended_magnitude_pruning/0.98/bottleneck_3_block_group3_5_1.smtx", // 88 of 1024 rows empty
        "rn50/random_pruning/0.9/final_dense.smtx",                                // 1000 × 2048, the widest K
        "rn50/magnitude_pruning/0.98/bottleneck_2_block_group1_1_1.smtx",          // ~12 entries a row
        "transformer/l0_regularization/0.98/body_encoder_layer_0_self_attention_multihead_attention_q.smtx", // sparsest (99.6%), 114 empty rows
        "transformer/variational_dropout/0.98/body_decoder_layer_0_ffn_conv1.smtx", // 1686 of 2048 rows empty
        "transformer/magnitude_pruning/0.7/body_decoder_layer_0_ffn_conv1_fully_connected.smtx", // 2048 × 512, 315k entries
    ]
    /// Columns of B: below, at and above multiples of 4 and of an 8-lane × vec4 tile.
    static let widths = [7, 16, 33]

    func dlmcRoot() throws -> URL {
        let root = sharedDataDirectory().appendingPathComponent("dlmc_subset")
        guard FileManager.default.fileExists(atPath: root.path) else {
            throw XCTSkip("shared data not found at \(root.path); set VKK_SHARED_DATA to a copy of shared/data")
        }
        return root
    }

    /// A sample file's pattern with seeded uniform values in [−1, 1) (what the benchmark uses).
    func load(_ relativePath: String, seed: UInt64 = 1) throws -> SparseMatrixData {
        try SparseMatrixFile.readSMTX(contentsOf: try dlmcRoot().appendingPathComponent(relativePath).path).withRandomValues(seed: seed)
    }

    // MARK: - Products against float64

    enum Form: String { case spmm, linear, spmv }

    /// C = alpha·A·B + beta·C in float64 from the CSR arrays, and a per-element error bound for fp32
    /// accumulation: a row of L entries sums L products, so (L + 2)·2⁻²³·(|alpha|·Σ|a·b| + |beta·c|) bounds
    /// the rounding (Higham §3.1, γ with unit roundoff 2⁻²⁴, doubled for paths without FMA, +2 for the
    /// alpha and beta steps: the bound GEMMReference uses with K replaced by the row's length). fp16 storage
    /// adds one rounding of the output (float16RoundingBound); its inputs are rounded before the reference.
    func reference(_ a: SparseMatrixData, values: [Double], b: [Double], c: [Double], n: Int, alpha: Double, beta: Double,
                   f16: Bool) -> (value: [Double], bound: [Double]) {
        var value = [Double](repeating: 0, count: a.rows * n), bound = value
        for row in 0..<a.rows {
            let entries = Int(a.rowOffsets[row])..<Int(a.rowOffsets[row + 1])
            for j in 0..<n {
                var sum = 0.0, magnitude = 0.0
                for index in entries {
                    let product = values[index] * b[Int(a.columnIndices[index]) * n + j]
                    sum += product
                    magnitude += abs(product)
                }
                let scaled = beta == 0 ? 0 : beta * c[row * n + j]
                value[row * n + j] = alpha * sum + scaled
                bound[row * n + j] = Double(entries.count + 2) * 0x1p-23 * (abs(alpha) * magnitude + abs(scaled))
                if f16 { bound[row * n + j] += float16RoundingBound(value[row * n + j]) }
            }
        }
        return (value, bound)
    }

    /// Runs one form on `context` and checks every element; B and C (or X and Y) are seeded uniform in [−1, 1),
    /// C full of NaN when beta == 0 (an empty row must still be written, and C never read).
    func check<Element: FloatingPointElement>(_ a: SparseMatrixData, _ name: String, form: Form, n: Int, alpha: Float = 1, beta: Float = 0,
                                              _: Element.Type, on context: ComputeContext) throws {
        let (m, k) = (a.rows, a.columns)
        let matrix = try CSRMatrix<Element>(a)
        let values = matrix.values.map { Double($0) }
        let b = [Float].random(count: k * n, seed: UInt64(k + n)).map { Element($0) }
        let c = beta == 0 ? [Element](repeating: .nan, count: m * n) : [Float].random(count: m * n, seed: 3).map { Element($0) }
        var got: [Element]
        switch form {
        case .spmm:
            let tensorC = try context.tensor(c, shape: [m, n])
            try context.batch { try $0.spmm(.csr(matrix), try context.tensor(b, shape: [k, n]), into: tensorC, alpha: alpha, beta: beta) }
            got = try tensorC.toArray()
        case .linear:
            // X = Bᵀ ([n, k]) and Y = Cᵀ ([n, m]): Y = X·Aᵀ is (A·B)ᵀ.
            let x = (0..<n * k).map { b[($0 % k) * n + $0 / k] }
            let y = try context.tensor((0..<n * m).map { c[($0 % m) * n + $0 / m] }, shape: [n, m])
            try context.batch { try $0.linear(try context.tensor(x, shape: [n, k]), weight: .csr(matrix), into: y, alpha: alpha, beta: beta) }
            let transposed = try y.toArray()
            got = (0..<m * n).map { transposed[($0 % n) * m + $0 / n] }
        case .spmv:
            precondition(n == 1)
            let y = try context.tensor(c, shape: [m])
            try context.batch { try $0.spmv(.csr(matrix), try context.tensor(b, shape: [k]), into: y, alpha: alpha, beta: beta) }
            got = try y.toArray()
        }
        let (want, bound) = reference(a, values: values, b: b.map { Double($0) }, c: c.map { Double($0) }, n: n,
                                      alpha: Double(alpha), beta: Double(beta), f16: Element.self == Float16.self)
        var failures = 0
        for index in want.indices where !(abs(Double(got[index]) - want[index]) <= bound[index]) {
            failures += 1
            if failures <= 3 {
                XCTFail("\(name) \(form) N=\(n) \(Element.self) on \(context.backendDescription): row \(index / n) column \(index % n) "
                        + "is \(got[index]), expected \(want[index]) ± \(bound[index])")
            }
        }
        if failures > 3 { XCTFail("\(name) \(form) N=\(n) on \(context.backendDescription): \(failures) elements wrong in all") }
    }

    func testSpMMOnDLMCSampleMatchesFloat64() throws {
        let matrices = try Self.sample.map { ($0, try load($0)) }
        onEveryBackend { context in
            for (index, (name, a)) in matrices.enumerated() {
                try check(a, name, form: .spmm, n: Self.widths[index % Self.widths.count], Float.self, on: context)
            }
            // alpha and beta on the file with the most empty rows: those rows must come out as beta·C.
            try check(matrices[5].1, matrices[5].0, form: .spmm, n: 16, alpha: -0.5, beta: 1.25, Float.self, on: context)
        }
    }

    func testLinearFormOnDLMCSampleMatchesFloat64() throws {
        let matrices = try Self.sample.map { ($0, try load($0)) }
        onEveryBackend { context in
            for (index, (name, a)) in matrices.enumerated() {
                try check(a, name, form: .linear, n: Self.widths[(index + 1) % Self.widths.count], Float.self, on: context)
            }
            try check(matrices[1].1, matrices[1].0, form: .linear, n: 7, alpha: 2, beta: -1, Float.self, on: context)
        }
    }

    func testSpMVOnDLMCSampleMatchesFloat64() throws {
        let matrices = try Self.sample.map { ($0, try load($0)) }
        onEveryBackend { context in
            for (name, a) in matrices { try check(a, name, form: .spmv, n: 1, Float.self, on: context) }
            try check(matrices[4].1, matrices[4].0, form: .spmv, n: 1, alpha: 0.75, beta: 0.5, Float.self, on: context)
        }
    }

    func testFloat16StorageOnTwoDLMCMatrices() throws {
        let matrices = try [Self.sample[1], Self.sample[4]].map { ($0, try load($0)) }
        onEveryBackend { context in
            for (name, a) in matrices {
                try check(a, name, form: .spmm, n: 33, Float16.self, on: context)
                try check(a, name, form: .linear, n: 16, alpha: 1, beta: 0.5, Float16.self, on: context)
                try check(a, name, form: .spmv, n: 1, Float16.self, on: context)
            }
        }
    }

    /// The sample covers what the tests claim: both models, several methods, empty rows, both ends of sparsity.
    func testSampleCoversEmptyRowsModelsMethodsAndSparsityRange() throws {
        let matrices = try Self.sample.map { try load($0) }
        let emptyRows = matrices.map { a in (0..<a.rows).filter { a.rowOffsets[$0] == a.rowOffsets[$0 + 1] }.count }
        XCTAssertEqual(emptyRows[1], 88)
        XCTAssertEqual(emptyRows[5], 1686)
        XCTAssertEqual(Set(Self.sample.map { $0.split(separator: "/")[0] }), ["rn50", "transformer"])
        XCTAssertGreaterThanOrEqual(Set(Self.sample.map { $0.split(separator: "/")[1] }).count, 4)
        let sparsities = matrices.map(\.sparsity)
        XCTAssertLessThan(sparsities.min()!, 0.22)
        XCTAssertGreaterThan(sparsities.max()!, 0.996)
    }

    /// Values from a dense weight (a checkpoint's tensor) instead of the generator: the sparse product equals
    /// the product with the masked dense weight.
    func testValuesFromADenseWeight() throws {
        let pattern = try SparseMatrixFile.readSMTX(contentsOf: try dlmcRoot().appendingPathComponent(Self.sample[3]).path)
        let weight = [Float].random(count: pattern.rows * pattern.columns, seed: 9)
        let a = try pattern.withValues(fromDense: weight)
        let masked = pattern.dense().enumerated().map { $0.element == 0 ? 0 : weight[$0.offset] }
        XCTAssertEqual(a.dense(), masked)
        onEveryBackend { context in try check(a, "dense-weight values", form: .spmm, n: 16, Float.self, on: context) }
    }

    // MARK: - Discovery, grouping and N

    func testCollectionListsEveryDLMCFileWithMethodSparsityAndLayerN() throws {
        let root = try dlmcRoot()
        let collection = try SparseMatrixCollection(directory: root.path)
        XCTAssertEqual(collection.entries.count, 116)
        XCTAssertEqual(Set(collection.entries.map(\.model)), ["rn50", "transformer"])
        XCTAssertEqual(Set(collection.entries.filter { $0.model == "rn50" }.map(\.method)),
                       ["magnitude_pruning", "random_pruning", "variational_dropout", "extended_magnitude_pruning"])
        XCTAssertEqual(Set(collection.entries.filter { $0.model == "transformer" }.map(\.method)),
                       ["magnitude_pruning", "random_pruning", "variational_dropout", "l0_regularization"])
        XCTAssertEqual(collection.batchSizeFiles.keys.sorted(), ["rn50"])
        // rn50_batchsizes.txt: the output spatial size of each convolution for one image; final_dense sees one vector.
        let rn50N = Dictionary(collection.entries.filter { $0.model == "rn50" }.map { ($0.layer, $0.tokens) }) { first, _ in first }
        XCTAssertEqual(rn50N, ["bottleneck_2_block_group1_1_1": 3136, "bottleneck_3_block_group3_5_1": 196, "final_dense": 1])
        XCTAssert(collection.entries.filter { $0.model == "rn50" }.allSatisfy { $0.tokensSource == .batchSizeFile })
        XCTAssert(collection.entries.filter { $0.model == "transformer" }.allSatisfy { $0.tokens == 256 && $0.tokensSource == .default })
        // Every file's folder names agree with INDEX.csv.
        let index = try String(contentsOf: root.appendingPathComponent("INDEX.csv"), encoding: .utf8).split(whereSeparator: \.isNewline)
        let header = index[0].split(separator: ",").map(String.init)
        let field = { (line: Substring, name: String) in String(line.split(separator: ",")[header.firstIndex(of: name)!]) }
        let byPath = Dictionary(uniqueKeysWithValues: collection.entries.map { (String($0.path.dropFirst(root.path.count + 1)), $0) })
        for line in index.dropFirst() {
            let entry = try XCTUnwrap(byPath[field(line, "path")], field(line, "path"))
            XCTAssertEqual(entry.model, field(line, "model"))
            XCTAssertEqual(entry.method, field(line, "method"))
            XCTAssertEqual(entry.nominalSparsity, Double(field(line, "nominal_sparsity")))
            XCTAssertEqual(entry.layer, field(line, "layer"))
        }
        // Listing a model's folder still finds the model name and the batch-size file above it; --tokens changes only the default.
        let rn50 = try SparseMatrixCollection(directory: root.appendingPathComponent("rn50/magnitude_pruning").path, defaultTokens: 64)
        XCTAssertEqual(rn50.entries.count, 17)
        XCTAssert(rn50.entries.allSatisfy { $0.model == "rn50" && $0.method == "magnitude_pruning" && $0.tokensSource == .batchSizeFile })
        let transformer = try SparseMatrixCollection(directory: root.appendingPathComponent("transformer").path, defaultTokens: 512)
        XCTAssertEqual(transformer.entries.count, 56)
        XCTAssert(transformer.entries.allSatisfy { $0.tokens == 512 })
    }

    func testCollectionOutsideDLMCLayoutGroupsAsOtherAndUsesItsOwnBatchSizes() throws {
        let folder = try temporaryFolder()
        try write("%%MatrixMarket matrix coordinate real general\n2 3 2\n1 1 0.5\n2 3 -1\n", to: folder, "loose.mtx")
        try write("2, 3, 1\n0 1 1\n2\n", to: folder, "net/pruned/0.75/layer_a.smtx")
        try write("2, 3, 1\n0 0 1\n0\n", to: folder, "net/pruned/0.75/layer_b_fully_connected.SMTX")
        try write("1, 1, 0\n0 0\n\n", to: folder, "notes/0.5/too_shallow.smtx")
        try write("# layer,N\nlayer_a, 49\n\nlayer_b,7\n", to: folder, "net_batchsizes.txt")
        try write("not a matrix", to: folder, "readme.txt")
        let collection = try SparseMatrixCollection(directory: folder.path, defaultTokens: 10)
        let byLayer = Dictionary(uniqueKeysWithValues: collection.entries.map { ($0.layer, $0) })
        XCTAssertEqual(byLayer.keys.sorted(), ["layer_a", "layer_b_fully_connected", "loose", "too_shallow"])
        XCTAssertEqual(byLayer["loose"]?.model, "other")
        XCTAssertEqual(byLayer["loose"]?.nominalSparsity, nil)
        XCTAssertEqual(byLayer["loose"]?.tokens, 10)
        XCTAssertEqual(byLayer["layer_a"]?.model, "net")
        XCTAssertEqual(byLayer["layer_a"]?.method, "pruned")
        XCTAssertEqual(byLayer["layer_a"]?.nominalSparsity, 0.75)
        XCTAssertEqual(byLayer["layer_a"]?.tokens, 49)
        XCTAssertEqual(byLayer["layer_b_fully_connected"]?.tokens, 7)
        // The rule reads the absolute path: the model of notes/0.5/x.smtx is the folder above "notes" (here the
        // temporary folder itself), which no batch-size file names, so N is the default.
        XCTAssertEqual(byLayer["too_shallow"]?.model, folder.lastPathComponent)
        XCTAssertEqual(byLayer["too_shallow"]?.method, "notes")
        XCTAssertEqual(byLayer["too_shallow"]?.tokens, 10)
        XCTAssertEqual(try byLayer["loose"]?.read().values, [0.5, -1])
        XCTAssertEqual(try byLayer["layer_a"]?.read().columnIndices, [2])
    }

    func testCollectionErrorsNameTheFolderOrFile() throws {
        let folder = try temporaryFolder()
        XCTAssertThrowsError(try SparseMatrixCollection(directory: folder.appendingPathComponent("missing").path)) { error in
            XCTAssert("\(error)".contains("missing") && "\(error)".contains("no such directory"), "\(error)")
        }
        XCTAssertThrowsError(try SparseMatrixCollection(directory: folder.path)) { error in
            XCTAssert("\(error)".contains("no .smtx or .mtx files"), "\(error)")
        }
        try write("2, 3, 2\n0 1 2\n5 0\n", to: folder, "m/p/0.5/bad.smtx")
        let collection = try SparseMatrixCollection(directory: folder.path)
        XCTAssertThrowsError(try collection.entries[0].read()) { error in
            XCTAssert("\(error)".contains("bad.smtx") && "\(error)".contains("out of range"), "\(error)")
        }
        try write("layer,0\n", to: folder, "m_batchsizes.txt")
        XCTAssertThrowsError(try SparseMatrixCollection(directory: folder.path)) { error in
            XCTAssert("\(error)".contains("m_batchsizes.txt") && "\(error)".contains("line 1"), "\(error)")
        }
        XCTAssertThrowsError(try SparseMatrixCollection.parseBatchSizes("a,1\na,2\n", name: "x.txt")) { error in
            XCTAssert("\(error)".contains("a listed with N 1 and 2"), "\(error)")
        }
        XCTAssertThrowsError(try SparseMatrixCollection(directory: folder.path, defaultTokens: 0))
    }

    // MARK: - Reader robustness (found while writing these tests)

    /// scipy `.npz` CSR files with a decreasing `indptr` ([0, 3, 2] over 2 entries) and with an int64 index past
    /// Int32 (both written by `np.savez`), and the same offsets in a `.smtx`, are clear errors; the readers used to
    /// trap (a reversed range while sorting rows, a read past the indices while validating, an Int32 conversion).
    func testDamagedScipyNPZIsAnErrorNotATrap() {
        let decreasingIndptr = Data(base64Encoded: ""
            + "UEsDBC0AAAAAAAAAIQCjw3SX//////////8KABQAZm9ybWF0Lm5weQEAEACDAAAAAAAAAIMAAAAAAAAAk05VTVBZAQB2AHsnZGVzY3InOiAnfF"
            + "MzJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg"
            + "ICAgICAgICAgICAgICAgICAgICAgIApjc3JQSwMELQAAAAAAAAAhAGBIfgz//////////wkAFABzaGFwZS5ucHkBABAAkAAAAAAAAACQAAAAAA"
            + "AAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJzxpOCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgyLCksIH0gICAgICAgICAgICAg"
            + "ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAgAAAAAAAAADAAAAAAAAAFBLAwQtAAAAAAAAACEAf+uY6/"
            + "//////////CgAUAGluZHB0ci5ucHkBABAAjAAAAAAAAACMAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJzxpNCcsICdmb3J0cmFuX29yZGVy"
            + "JzogRmFsc2UsICdzaGFwZSc6ICgzLCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIC"
            + "AgICAKAAAAAAMAAAACAAAAUEsDBC0AAAAAAAAAIQB7VrXz//////////8LABQAaW5kaWNlcy5ucHkBABAAiAAAAAAAAACIAAAAAAAAAJNOVU1Q"
            + "WQEAdgB7J2Rlc2NyJzogJzxpNCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgyLCksIH0gICAgICAgICAgICAgICAgICAgIC"
            + "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAAAAAAEAAABQSwMELQAAAAAAAAAhAJrKq+f//////////wgAFABkYXRh"
            + "Lm5weQEAEACIAAAAAAAAAIgAAAAAAAAAk05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJz"
            + "ogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAIA/AAAAQFBLAQIt"
            + "Ay0AAAAAAAAAIQCjw3SXgwAAAIMAAAAKAAAAAAAAAAAAAACAAQAAAABmb3JtYXQubnB5UEsBAi0DLQAAAAAAAAAhAGBIfgyQAAAAkAAAAAkAAA"
            + "AAAAAAAAAAAIABvwAAAHNoYXBlLm5weVBLAQItAy0AAAAAAAAAIQB/65jrjAAAAIwAAAAKAAAAAAAAAAAAAACAAYoBAABpbmRwdHIubnB5UEsB"
            + "Ai0DLQAAAAAAAAAhAHtWtfOIAAAAiAAAAAsAAAAAAAAAAAAAAIABUgIAAGluZGljZXMubnB5UEsBAi0DLQAAAAAAAAAhAJrKq+eIAAAAiAAAAA"
            + "gAAAAAAAAAAAAAAIABFwMAAGRhdGEubnB5UEsFBgAAAAAFAAUAFgEAANkDAAAAAA==")!
        let hugeIndex = Data(base64Encoded: ""
            + "UEsDBC0AAAAAAAAAIQCjw3SX//////////8KABQAZm9ybWF0Lm5weQEAEACDAAAAAAAAAIMAAAAAAAAAk05VTVBZAQB2AHsnZGVzY3InOiAnfF"
            + "MzJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg"
            + "ICAgICAgICAgICAgICAgICAgICAgIApjc3JQSwMELQAAAAAAAAAhAGBIfgz//////////wkAFABzaGFwZS5ucHkBABAAkAAAAAAAAACQAAAAAA"
            + "AAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJzxpOCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgyLCksIH0gICAgICAgICAgICAg"
            + "ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAgAAAAAAAAADAAAAAAAAAFBLAwQtAAAAAAAAACEA90AS6v"
            + "//////////CgAUAGluZHB0ci5ucHkBABAAmAAAAAAAAACYAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJzxpOCcsICdmb3J0cmFuX29yZGVy"
            + "JzogRmFsc2UsICdzaGFwZSc6ICgzLCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIC"
            + "AgICAKAAAAAAAAAAABAAAAAAAAAAIAAAAAAAAAUEsDBC0AAAAAAAAAIQDXAJME//////////8LABQAaW5kaWNlcy5ucHkBABAAkAAAAAAAAACQ"
            + "AAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJzxpOCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgyLCksIH0gICAgICAgIC"
            + "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAAAAAAAAAAAAAAAAAAEAAFBLAwQtAAAAAAAAACEA"
            + "msqr5///////////CAAUAGRhdGEubnB5AQAQAIgAAAAAAAAAiAAAAAAAAACTTlVNUFkBAHYAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcm"
            + "Rlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg"
            + "ICAgICAgCgAAgD8AAABAUEsBAi0DLQAAAAAAAAAhAKPDdJeDAAAAgwAAAAoAAAAAAAAAAAAAAIABAAAAAGZvcm1hdC5ucHlQSwECLQMtAAAAAA"
            + "AAACEAYEh+DJAAAACQAAAACQAAAAAAAAAAAAAAgAG/AAAAc2hhcGUubnB5UEsBAi0DLQAAAAAAAAAhAPdAEuqYAAAAmAAAAAoAAAAAAAAAAAAA"
            + "AIABigEAAGluZHB0ci5ucHlQSwECLQMtAAAAAAAAACEA1wCTBJAAAACQAAAACwAAAAAAAAAAAAAAgAFeAgAAaW5kaWNlcy5ucHlQSwECLQMtAA"
            + "AAAAAAACEAmsqr54gAAACIAAAACAAAAAAAAAAAAAAAgAErAwAAZGF0YS5ucHlQSwUGAAAAAAUABQAWAQAA7QMAAAAA")!
        XCTAssertThrowsError(try ScipySparseFile(bytes: [UInt8](decreasingIndptr), name: "decreasing.npz")) { error in
            XCTAssert("\(error)".contains("decreasing.npz") && "\(error)".contains("row 0"), "\(error)")
        }
        XCTAssertThrowsError(try ScipySparseFile(bytes: [UInt8](hugeIndex), name: "huge.npz")) { error in
            XCTAssert("\(error)".contains("huge.npz") && "\(error)".contains("out of range"), "\(error)")
        }
        XCTAssertThrowsError(try SparseMatrixFile.readSMTX(text: "2, 3, 2\n0 3 2\n0 1\n", name: "past.smtx")) { error in
            XCTAssert("\(error)".contains("past.smtx") && "\(error)".contains("row 0"), "\(error)")
        }
    }

    private func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vkk-dlmc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        return folder
    }

    private func write(_ text: String, to folder: URL, _ relativePath: String) throws {
        let url = folder.appendingPathComponent(relativePath)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }
}
