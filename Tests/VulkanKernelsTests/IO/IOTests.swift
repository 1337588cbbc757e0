import Foundation
import VulkanKernels
import XCTest

final class NPYTests: XCTestCase {
    private func bytes(_ base64: String) -> [UInt8] { [UInt8](Data(base64Encoded: base64)!) }

    func testReadsArraysNumPyWrote() throws {
        let f32 = try NPY.read(bytes: bytes(Fixtures.f32), name: "f32.npy")
        XCTAssertEqual(f32.shape, [2, 3])
        XCTAssertEqual(try f32.values(as: Float.self), [0, 0.25, 0.5, 0.75, 1, 1.25])
        let f16 = try NPY.read(bytes: bytes(Fixtures.f16), name: "f16.npy")
        XCTAssertEqual(f16.dtype, .float16)
        XCTAssertEqual(f16.floats(), [1.5, -2.25, 0.125, 65504])
        XCTAssertEqual(try NPY.read(bytes: bytes(Fixtures.i32), name: "i32.npy").values(as: Int32.self), [-7, 0, .max])
        XCTAssertEqual(try NPY.read(bytes: bytes(Fixtures.u8), name: "u8.npy").values(as: UInt8.self), [0, 1, 2, 3, 4])
        let scalar = try NPY.read(bytes: bytes(Fixtures.scalar), name: "scalar.npy")
        XCTAssertEqual(scalar.shape, [])
        XCTAssertEqual(scalar.floats(), [3.5])
        XCTAssertEqual(try NPY.read(bytes: bytes(Fixtures.v2), name: "v2.npy").floats(), [0, 1, 2, 3])
    }

    func testWritesTheBytesNumPyWrites() throws {
        XCTAssertEqual(try NPY.bytes((0..<6).map { Float($0) / 4 }, shape: [2, 3]), bytes(Fixtures.f32))
        XCTAssertEqual(try NPY.bytes([-7, 0, .max] as [Int32], shape: [3]), bytes(Fixtures.i32))
        XCTAssertEqual(try NPY.bytes([3.5] as [Float], shape: []), bytes(Fixtures.scalar))
    }

    func testUnsupportedLayoutsAreClearErrors() {
        XCTAssertThrowsError(try NPY.read(bytes: bytes(Fixtures.f64), name: "f64.npy")) { error in
            guard case DataFileError.unsupported(_, let what) = error else { return XCTFail("\(error)") }
            XCTAssert(what.contains("<f8"), what)
        }
        XCTAssertThrowsError(try NPY.read(bytes: bytes(Fixtures.fortran), name: "fortran.npy")) { error in
            guard case DataFileError.unsupported = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try NPY.read(bytes: Array("not numpy".utf8), name: "text.npy"))
    }

    /// Every prefix of a valid file is an error, never a crash or a short array.
    func testEveryTruncationThrows() {
        for fixture in [Fixtures.f32, Fixtures.v2, Fixtures.scalar] {
            let full = bytes(fixture)
            for length in 0..<full.count {
                XCTAssertThrowsError(try NPY.read(bytes: Array(full.prefix(length)), name: "cut.npy"), "prefix \(length)")
            }
        }
    }

    func testRoundTripThroughATensorOnEveryBackend() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vkk-roundtrip.npy").path
        onEveryBackend { context in
            let values = [Float].random(count: 24, seed: 9)
            try NPY.write(values, shape: [2, 3, 4], to: path)
            let tensor: Tensor<Float> = try context.tensor(try NPY.read(contentsOf: path))
            XCTAssertEqual(tensor.shape, [2, 3, 4])
            XCTAssertEqual(try tensor.toArray(), values)
            let half: Tensor<Float16> = try context.tensor(try NPY.read(contentsOf: path))
            XCTAssertEqual(try half.toArray(), values.map { Float16($0) })
        }
    }
}

final class SafeTensorsTests: XCTestCase {
    private func bytes(_ base64: String) -> [UInt8] { [UInt8](Data(base64Encoded: base64)!) }

    func testReadsNamedTensorsTheReferenceWriterWrote() throws {
        let file = try SafeTensorsFile(bytes: bytes(Fixtures.safetensors), name: "model.safetensors")
        XCTAssertEqual(Set(file.tensors.keys), ["weight", "bias", "steps"])
        XCTAssertEqual(file.tensors["weight"]?.shape, [3, 4])
        XCTAssertEqual(try file.tensors["weight"]?.values(as: Float.self), (0..<12).map(Float.init))
        XCTAssertEqual(file.tensors["bias"]?.floats(), [1, 2])
        XCTAssertEqual(try file.tensors["steps"]?.values(as: Int32.self), [5])
        XCTAssertEqual(file.metadata, ["format": "np"])
    }

    func testUnsupportedDTypeAndTruncationThrow() {
        XCTAssertThrowsError(try SafeTensorsFile(bytes: bytes(Fixtures.safetensorsF64), name: "f64.safetensors")) { error in
            guard case DataFileError.unsupported(_, let what) = error else { return XCTFail("\(error)") }
            XCTAssert(what.contains("F64"))
        }
        let full = bytes(Fixtures.safetensors)
        for length in 0..<full.count {
            XCTAssertThrowsError(try SafeTensorsFile(bytes: Array(full.prefix(length)), name: "cut.safetensors"), "prefix \(length)")
        }
    }
}

final class SparseMatrixFileTests: XCTestCase {
    func testMatrixMarketFromScipy() throws {
        let matrix = try SparseMatrixFile.readMatrixMarket(text: Fixtures.mtx, name: "scipy.mtx")
        XCTAssertEqual(matrix.rows, 4)
        XCTAssertEqual(matrix.rowOffsets, [0, 1, 1, 3, 4])
        XCTAssertEqual(matrix.columnIndices, [1, 0, 3, 2])
        XCTAssertEqual(matrix.values, [1.5, 2, -3.25, 4])
    }

    func testMatrixMarketSymmetricPatternAndDuplicates() throws {
        let symmetric = """
            %%MatrixMarket matrix coordinate real symmetric
            % lower triangle only
            3 3 3
            1 1 2.0
            3 1 -1
            2 2 5
            """
        let s = try SparseMatrixFile.readMatrixMarket(text: symmetric, name: "sym.mtx")
        XCTAssertEqual(s.dense(), [2, 0, -1, 0, 5, 0, -1, 0, 0])
        let duplicates = "%%MatrixMarket matrix coordinate real general\n2 2 3\n1 2 1.5\n1 2 2.5\n2 1 1\n"
        XCTAssertEqual(try SparseMatrixFile.readMatrixMarket(text: duplicates, name: "dup.mtx").dense(), [0, 4, 1, 0])
        let pattern = "%%MatrixMarket matrix coordinate pattern general\n2 3 2\n1 3\n2 1\n"
        let p = try SparseMatrixFile.readMatrixMarket(text: pattern, name: "pattern.mtx")
        XCTAssertNil(p.values)
        XCTAssertEqual(p.columnIndices, [2, 0])
    }

    func testMatrixMarketErrorsNameTheProblem() {
        let cases = [
            "%%MatrixMarket matrix array real general\n2 2\n1\n2\n3\n4\n",          // dense format
            "%%MatrixMarket matrix coordinate complex general\n1 1 1\n1 1 1 0\n",   // complex
            "%%MatrixMarket matrix coordinate real general\n2 2 3\n1 1 1\n",        // fewer entries than declared
            "%%MatrixMarket matrix coordinate real general\n2 2 1\n3 1 1\n",        // row out of range
            "%%MatrixMarket matrix coordinate real general\n2 2 1\n1 x 1\n",        // not a number
            "no banner\n",
        ]
        for text in cases { XCTAssertThrowsError(try SparseMatrixFile.readMatrixMarket(text: text, name: "bad.mtx"), text) }
    }

    func testMatrixMarketRoundTrip() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vkk-roundtrip.mtx").path
        let matrix = try SparseMatrixFile.readMatrixMarket(text: Fixtures.mtx, name: "scipy.mtx").withRandomValues(seed: 3)
        try SparseMatrixFile.writeMatrixMarket(matrix, to: path)
        XCTAssertEqual(try SparseMatrixFile.readMatrixMarket(contentsOf: path), matrix)
    }

    func testSMTXValidationNamesTheFirstBadEntry() {
        XCTAssertEqual(try SparseMatrixFile.readSMTX(text: "2, 3, 2\n0 1 2\n2 0\n", name: "ok.smtx").columnIndices, [2, 0])
        let bad = [
            ("3, 3, 2\n0 2 1 2\n0 1\n", "decrease"),
            ("2, 3, 2\n0 2 2\n1 0\n", "not sorted"),
            ("2, 3, 2\n0 1 2\n5 0\n", "out of range"),
            ("2, 3, 2\n0 1\n0 1\n", "truncated"),
            ("2, 3\n0 1 2\n0 1\n", "rows, columns, nnz"),
        ]
        for (text, expected) in bad {
            XCTAssertThrowsError(try SparseMatrixFile.readSMTX(text: text, name: "bad.smtx")) { error in
                XCTAssert("\(error)".contains(expected), "\(error) should mention \(expected)")
            }
        }
    }

    /// Every DLMC matrix in the shared data parses, with the shape, nnz and empty rows its index lists.
    func testEveryDLMCMatrixParses() throws {
        let root = sharedDataDirectory().appendingPathComponent("dlmc_subset")
        guard FileManager.default.fileExists(atPath: root.path) else {
            throw XCTSkip("shared data not found at \(root.path); set VKK_SHARED_DATA to a copy of shared/data")
        }
        let index = try String(contentsOf: root.appendingPathComponent("INDEX.csv"), encoding: .utf8).split(whereSeparator: \.isNewline)
        let header = index[0].split(separator: ",").map(String.init)
        let column = { (name: String) in header.firstIndex(of: name)! }
        var parsed = 0
        for line in index.dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let matrix = try SparseMatrixFile.readSMTX(contentsOf: root.appendingPathComponent(fields[column("path")]).path)
            XCTAssertEqual(matrix.rows, Int(fields[column("rows")]))
            XCTAssertEqual(matrix.columns, Int(fields[column("cols")]))
            XCTAssertEqual(matrix.nonzeroCount, Int(fields[column("nnz")]))
            let empty = (0..<matrix.rows).filter { matrix.rowOffsets[$0] == matrix.rowOffsets[$0 + 1] }.count
            XCTAssertEqual(empty, Int(fields[column("empty_rows")]), fields[column("path")])
            parsed += 1
        }
        XCTAssertEqual(parsed, 116)
    }
}

/// The shared data folder: `VKK_SHARED_DATA`, else `../shared/data` beside the checkout.
func sharedDataDirectory() -> URL {
    if let path = ProcessInfo.processInfo.environment["VKK_SHARED_DATA"] { return URL(fileURLWithPath: path) }
    // This file is Tests/VulkanKernelsTests/IO/IOTests.swift: four levels below the checkout's parent.
    let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    return checkout.deletingLastPathComponent().appendingPathComponent("shared/data")
}

final class ScipyNPZTests: XCTestCase {
    private func bytes(_ base64: String) -> [UInt8] { [UInt8](Data(base64Encoded: base64)!) }

    func testReadsCSRCSCAndBSRThatScipySaved() throws {
        for (fixture, format) in [(Fixtures.csrNPZ, "csr"), (Fixtures.csrNPZStored, "csr"), (Fixtures.cscNPZ, "csc"), (Fixtures.bsrNPZ, "bsr")] {
            let file = try ScipySparseFile(bytes: bytes(fixture), name: "\(format).npz")
            XCTAssertEqual(file.format, format)
            XCTAssertEqual(file.matrix.rows, 4)
            XCTAssertEqual(file.matrix.columns, 6)
            XCTAssertEqual(file.matrix.dense(), Fixtures.sparseDense, format)
        }
        let bsr = try ScipySparseFile(bytes: bytes(Fixtures.bsrNPZ), name: "bsr.npz")
        XCTAssertEqual(bsr.blockShape.rows, 2)
        XCTAssertEqual(bsr.blockShape.columns, 2)
    }

    func testUnsupportedFormatAndDamageAreClearErrors() {
        XCTAssertThrowsError(try ScipySparseFile(bytes: bytes(Fixtures.cooNPZ), name: "coo.npz")) { error in
            guard case DataFileError.unsupported(_, let what) = error else { return XCTFail("\(error)") }
            XCTAssert(what.contains("coo"), what)
        }
        let full = bytes(Fixtures.csrNPZ)
        for length in stride(from: 0, to: full.count, by: 7) {
            XCTAssertThrowsError(try ScipySparseFile(bytes: Array(full.prefix(length)), name: "cut.npz"), "prefix \(length)")
        }
        // Flip bytes inside the compressed members: zlib or the CRC must catch it.
        for position in stride(from: 40, to: full.count / 2, by: 13) {
            var damaged = full
            damaged[position] ^= 0x5a
            _ = try? ScipySparseFile(bytes: damaged, name: "damaged.npz")  // must not crash; may throw or, rarely, hit padding
        }
    }
}
