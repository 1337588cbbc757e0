/// The arrays of a NumPy `.npz` archive (a zip of `.npy` members, stored or deflated; zip64 sizes are
/// read). Members are parsed on demand; every offset and size is checked against the file.
struct NPZArchive {
    let name: String
    let limits: ReadLimits
    private let bytes: [UInt8]
    /// Member name (without `.npy`) → (local header offset, method, compressed size, uncompressed size, CRC).
    private var members: [String: (offset: Int, method: UInt16, compressed: Int, size: Int, crc: UInt32)] = [:]

    var memberNames: [String] { members.keys.sorted() }

    init(bytes: [UInt8], name: String, limits: ReadLimits = .default) throws {
        self.name = name
        self.limits = limits
        self.bytes = bytes
        // The end-of-central-directory record sits in the last 22 + 65535 (comment) bytes.
        let searchStart = max(0, bytes.count - 22 - 65_535)
        guard bytes.count >= 22, let end = stride(from: bytes.count - 22, through: searchStart, by: -1).first(where: {
            bytes[$0] == 0x50 && bytes[$0 + 1] == 0x4b && bytes[$0 + 2] == 5 && bytes[$0 + 3] == 6
        }) else { throw DataFileError.malformed(file: name, reason: "not a zip archive (no end-of-central-directory record)") }
        var record = ByteReader(bytes, file: name)
        record.position = end + 10
        var entryCount = Int(try record.littleEndian(UInt16.self))
        _ = try record.littleEndian(UInt32.self)  // directory size
        var directoryOffset = Int(try record.littleEndian(UInt32.self))
        if directoryOffset == 0xFFFF_FFFF || entryCount == 0xFFFF {
            // Zip64: the locator just before the record points at the zip64 end record.
            guard end >= 20 else { throw DataFileError.malformed(file: name, reason: "zip64 archive without a zip64 locator") }
            var locator = ByteReader(bytes, file: name)
            locator.position = end - 20
            guard try locator.littleEndian(UInt32.self) == 0x0706_4b50 else {
                throw DataFileError.malformed(file: name, reason: "zip64 archive without a zip64 locator")
            }
            _ = try locator.littleEndian(UInt32.self)
            var zip64 = ByteReader(bytes, file: name)
            let zip64Offset = try locator.littleEndian(UInt64.self)
            guard zip64Offset <= UInt64(bytes.count) else {
                throw DataFileError.truncated(file: name, needed: Int(clamping: zip64Offset), available: bytes.count)
            }
            zip64.position = Int(zip64Offset) + 32
            entryCount = Int(clamping: try zip64.littleEndian(UInt64.self))
            _ = try zip64.littleEndian(UInt64.self)
            directoryOffset = Int(clamping: try zip64.littleEndian(UInt64.self))
        }
        var directory = ByteReader(bytes, file: name)
        directory.position = directoryOffset
        for _ in 0..<entryCount {
            guard try directory.littleEndian(UInt32.self) == 0x0201_4b50 else {
                throw DataFileError.malformed(file: name, reason: "bad central directory entry")
            }
            _ = try directory.take(6)
            let method = try directory.littleEndian(UInt16.self)
            _ = try directory.take(4)
            let crc = try directory.littleEndian(UInt32.self)
            var compressed = Int(try directory.littleEndian(UInt32.self))
            var size = Int(try directory.littleEndian(UInt32.self))
            let nameLength = Int(try directory.littleEndian(UInt16.self))
            let extraLength = Int(try directory.littleEndian(UInt16.self))
            let commentLength = Int(try directory.littleEndian(UInt16.self))
            _ = try directory.take(8)
            var offset = Int(try directory.littleEndian(UInt32.self))
            let memberName = String(decoding: try directory.take(nameLength), as: UTF8.self)
            var extra = ByteReader(Array(try directory.take(extraLength)), file: name)
            _ = try directory.take(commentLength)
            // Zip64 extended information: 64-bit values for the fields that hold 0xFFFFFFFF, in order.
            while extra.position + 4 <= extra.bytes.count {
                let id = try extra.littleEndian(UInt16.self), length = Int(try extra.littleEndian(UInt16.self))
                guard id == 1 else { _ = try extra.take(length); continue }
                if size == 0xFFFF_FFFF { size = Int(clamping: try extra.littleEndian(UInt64.self)) }
                if compressed == 0xFFFF_FFFF { compressed = Int(clamping: try extra.littleEndian(UInt64.self)) }
                if offset == 0xFFFF_FFFF { offset = Int(clamping: try extra.littleEndian(UInt64.self)) }
                break
            }
            let key = memberName.hasSuffix(".npy") ? String(memberName.dropLast(4)) : memberName
            members[key] = (offset, method, compressed, size, crc)
        }
    }

    /// The raw array stored as `member` (`member.npy` in the archive).
    func array(_ member: String) throws -> NPY.RawArray {
        guard let entry = members[member] else {
            throw DataFileError.malformed(file: name, reason: "no member '\(member).npy' (has \(memberNames.joined(separator: ", ")))")
        }
        var local = ByteReader(bytes, file: name)
        local.position = entry.offset
        guard try local.littleEndian(UInt32.self) == 0x0403_4b50 else {
            throw DataFileError.malformed(file: name, reason: "member \(member): bad local header")
        }
        _ = try local.take(22)
        let nameLength = Int(try local.littleEndian(UInt16.self)), extraLength = Int(try local.littleEndian(UInt16.self))
        _ = try local.take(nameLength + extraLength)
        let stored = try local.take(entry.compressed)
        try limits.check(entry.size, \.maxDecompressedBytes, file: name, field: "member \(member).npy's uncompressed size")
        let data: [UInt8]
        switch entry.method {
        case 0: data = Array(stored)
        case 8:
            do {
                data = try Zlib.decompress(Array(stored), raw: true, limit: entry.size, maxRatio: limits.maxCompressionRatio,
                                           limitName: "the member's declared size")
            } catch {
                throw DataFileError.malformed(file: name, reason: "member \(member): \(error)")
            }
        default: throw DataFileError.unsupported(file: name, what: "zip compression method \(entry.method) for \(member)")
        }
        guard data.count == entry.size, Zlib.crc32(data[...]) == entry.crc else {
            throw DataFileError.malformed(file: name, reason: "member \(member): size or CRC does not match (corrupt archive)")
        }
        return try NPY.readRaw(bytes: data, name: "\(name):\(member).npy", limits: limits)
    }
}

/// A sparse matrix saved by `scipy.sparse.save_npz`.
public struct ScipySparseFile: Sendable {
    /// `csr`, `csc` or `bsr` as stored (CSC is transposed into CSR on reading).
    public var format: String
    /// Rows × columns of a BSR matrix's blocks; (1, 1) for CSR and CSC.
    public var blockShape: (rows: Int, columns: Int)
    /// The matrix in CSR (a BSR matrix's blocks expanded, explicit zeros inside blocks kept).
    public var matrix: SparseMatrixData

    /// Reads a regular file within `limits` (see ``ReadLimits``): members inflate to at most
    /// `maxDecompressedBytes` and `maxCompressionRatio` times their compressed size, and the matrix's
    /// dimensions are at most `maxElements`. Non-finite values are kept (a NaN weight may be meaningful).
    public init(contentsOf path: String, limits: ReadLimits = .default) throws {
        try self.init(bytes: readFile(path, limits: limits), name: path, limits: limits)
    }

    public init(bytes: [UInt8], name: String, limits: ReadLimits = .default) throws {
        let archive = try NPZArchive(bytes: bytes, name: name, limits: limits)
        let formatArray = try archive.array("format")
        format = Self.string(formatArray)
        guard ["csr", "csc", "bsr"].contains(format) else {
            throw DataFileError.unsupported(file: name, what: "scipy format '\(format)' (csr, csc and bsr are read)")
        }
        let shape = try Self.integers(try archive.array("shape"), name: name, what: "shape")
        guard shape.count == 2, shape.allSatisfy({ $0 >= 0 && $0 < Int(Int32.max) }) else {
            throw DataFileError.malformed(file: name, reason: "shape \(shape)")
        }
        // Row-offset tables (rows + 1 entries, also after a CSC transpose or a BSR expansion) are sized by
        // the declared shape, not by bytes in the archive.
        try limits.check(shape[0], \.maxElements, file: name, field: "shape[0]")
        try limits.check(shape[1], \.maxElements, file: name, field: "shape[1]")
        let pointers = try Self.int32s(try archive.array("indptr"), name: name, what: "indptr")
        let indices = try Self.int32s(try archive.array("indices"), name: name, what: "indices")
        let dataArray = try archive.array("data")
        let data = try Self.floats(dataArray, name: name)
        switch format {
        case "csr", "csc":
            blockShape = (1, 1)
            let (rows, columns) = format == "csr" ? (shape[0], shape[1]) : (shape[1], shape[0])
            guard data.count == indices.count else { throw DataFileError.malformed(file: name, reason: "\(data.count) values for \(indices.count) indices") }
            var csr = try SparseMatrixData(rows: rows, columns: columns, rowOffsets: pointers, columnIndices: indices, values: data)
                .sortedWithinRows().validated(name: name)
            if format == "csc" { csr = SparseMatrixData(try CSRMatrix<Float>(csr).transposed()) }
            matrix = csr
        case "bsr":
            guard dataArray.shape.count == 3 else { throw DataFileError.malformed(file: name, reason: "BSR data shape \(dataArray.shape)") }
            let (blockRows, blockColumns) = (dataArray.shape[1], dataArray.shape[2])
            blockShape = (blockRows, blockColumns)
            guard blockRows > 0, blockColumns > 0, shape[0] % blockRows == 0, shape[1] % blockColumns == 0,
                  dataArray.shape[0] == indices.count, pointers.count == shape[0] / blockRows + 1 else {
                throw DataFileError.malformed(file: name, reason: "BSR blocks \(dataArray.shape) do not tile \(shape)")
            }
            let blocks = try SparseMatrixData(rows: shape[0] / blockRows, columns: shape[1] / blockColumns, rowOffsets: pointers,
                                              columnIndices: indices, values: nil).sortedWithinRows().validated(name: name)
            matrix = Self.expand(blocks, original: (pointers, indices), data: data, blockRows: blockRows, blockColumns: blockColumns)
        default:
            throw DataFileError.unsupported(file: name, what: "scipy format '\(format)' (csr, csc and bsr are read)")
        }
    }

    private static func expand(_ blocks: SparseMatrixData, original: ([Int32], [Int32]), data: [Float], blockRows: Int,
                               blockColumns: Int) -> SparseMatrixData {
        let (pointers, indices) = original
        var offsets: [Int32] = [0]
        var columns: [Int32] = []
        var values: [Float] = []
        for blockRow in 0..<blocks.rows {
            // Blocks of this block row in column order (scipy does not promise sorted indices).
            let order = (Int(pointers[blockRow])..<Int(pointers[blockRow + 1])).sorted { indices[$0] < indices[$1] }
            for r in 0..<blockRows {
                for block in order {
                    for c in 0..<blockColumns {
                        columns.append(indices[block] * Int32(blockColumns) + Int32(c))
                        values.append(data[(block * blockRows + r) * blockColumns + c])
                    }
                }
                offsets.append(Int32(columns.count))
            }
        }
        return SparseMatrixData(rows: blocks.rows * blockRows, columns: blocks.columns * blockColumns, rowOffsets: offsets,
                                columnIndices: columns, values: values)
    }

    /// A NumPy string scalar: bytes (`|S3`, what scipy writes) or UTF-32 (`<U3`).
    private static func string(_ array: NPY.RawArray) -> String {
        if array.descr.dropFirst().first == "S" {
            return String(decoding: array.bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        var scalars = String.UnicodeScalarView()
        for index in stride(from: 0, to: array.bytes.count - 3, by: 4) {
            let value = UInt32(array.bytes[index]) | UInt32(array.bytes[index + 1]) << 8 | UInt32(array.bytes[index + 2]) << 16
                | UInt32(array.bytes[index + 3]) << 24
            if value == 0 { break }
            if let scalar = Unicode.Scalar(value) { scalars.append(scalar) }
        }
        return String(scalars)
    }

    private static func integers(_ array: NPY.RawArray, name: String, what: String) throws -> [Int] {
        try array.bytes.withUnsafeBytes { raw -> [Int] in
            switch array.descr {
            case "<i4": return raw.bindMemory(to: Int32.self).prefix(array.count).map(Int.init)
            case "<i8": return raw.bindMemory(to: Int64.self).prefix(array.count).map { Int(clamping: $0) }
            default: throw DataFileError.unsupported(file: name, what: "\(what) of type \(array.descr)")
            }
        }
    }

    /// int32 or int64 values that must fit Int32 (CSR offsets and indices), else a `malformed` error, not a trap.
    private static func int32s(_ array: NPY.RawArray, name: String, what: String) throws -> [Int32] {
        try integers(array, name: name, what: what).map { value in
            guard let fitted = Int32(exactly: value) else { throw DataFileError.malformed(file: name, reason: "\(what): \(value) out of range") }
            return fitted
        }
    }

    private static func floats(_ array: NPY.RawArray, name: String) throws -> [Float] {
        try array.bytes.withUnsafeBytes { raw -> [Float] in
            switch array.descr {
            case "<f4": return Array(raw.bindMemory(to: Float.self).prefix(array.count))
            case "<f8": return raw.bindMemory(to: Double.self).prefix(array.count).map(Float.init)
            case "<f2": return raw.bindMemory(to: Float16.self).prefix(array.count).map(Float.init)
            default: throw DataFileError.unsupported(file: name, what: "values of type \(array.descr)")
            }
        }
    }
}

extension SparseMatrixData {
    /// Column indices sorted within each row (values permuted alike); scipy may store them unsorted.
    func sortedWithinRows() -> SparseMatrixData {
        guard rows + 1 == rowOffsets.count else { return self }
        var copy = self
        for row in 0..<rows {
            // Offsets are not validated yet (validated() runs after this): a decreasing pair is left for it to report.
            let (start, end) = (Int(rowOffsets[row]), Int(rowOffsets[row + 1]))
            guard start >= 0, start <= end, end <= columnIndices.count, end - start > 1 else { continue }
            let range = start..<end
            let order = range.sorted { columnIndices[$0] < columnIndices[$1] }
            for (destination, source) in zip(range, order) {
                copy.columnIndices[destination] = columnIndices[source]
                if let values { copy.values![destination] = values[source] }
            }
        }
        return copy
    }
}

extension SparseMatrixData {
    /// The arrays of a sparse-family matrix (values widened to fp32), e.g. to write a pruned weight with
    /// ``SparseMatrixFile/writeMatrixMarket(_:to:)``.
    public init<Element: FloatingPointElement>(_ matrix: CSRMatrix<Element>) {
        self.init(rows: matrix.rows, columns: matrix.columns, rowOffsets: matrix.rowPointers, columnIndices: matrix.columnIndices,
                  values: matrix.values.map { Float($0) })
    }
}
