/// A sparse matrix as read from a file, in CSR layout: sorted column indices within each row, no
/// duplicates. `values` is nil for pattern-only files (DLMC `.smtx`, Matrix Market `pattern`); give it
/// values with ``withRandomValues(seed:)`` or ``withValues(fromDense:)``.
public struct SparseMatrixData: Sendable, Equatable {
    public var rows: Int
    public var columns: Int
    /// `rows + 1` offsets into `columnIndices`.
    public var rowOffsets: [Int32]
    public var columnIndices: [Int32]
    public var values: [Float]?

    public var nonzeroCount: Int { columnIndices.count }
    /// Fraction of zeros, exactly (1 − nnz / (rows · columns)).
    public var sparsity: Double { rows * columns == 0 ? 0 : 1 - Double(nonzeroCount) / (Double(rows) * Double(columns)) }

    /// Checks the CSR invariants; `name` appears in errors, which name the first bad entry.
    func validated(name: String) throws -> SparseMatrixData {
        guard rows >= 0, columns >= 0, rowOffsets.count == rows + 1 else {
            throw DataFileError.malformed(file: name, reason: "\(rowOffsets.count) row offsets for \(rows) rows")
        }
        guard rowOffsets.first == 0, Int(rowOffsets.last!) == columnIndices.count else {
            throw DataFileError.malformed(file: name, reason: "row offsets run from \(rowOffsets.first!) to \(rowOffsets.last!), nnz is \(columnIndices.count)")
        }
        if let values, values.count != columnIndices.count {
            throw DataFileError.malformed(file: name, reason: "\(values.count) values for \(columnIndices.count) column indices")
        }
        for row in 0..<rows {
            let (start, end) = (Int(rowOffsets[row]), Int(rowOffsets[row + 1]))
            guard start <= end else { throw DataFileError.malformed(file: name, reason: "row \(row): offsets decrease (\(start) > \(end))") }
            // Offsets may rise past nnz before coming back down to it: check before reading the row.
            guard start >= 0, end <= columnIndices.count else {
                throw DataFileError.malformed(file: name, reason: "row \(row): offsets \(start)..<\(end) outside the \(columnIndices.count) column indices")
            }
            for index in start..<end {
                let column = columnIndices[index]
                guard column >= 0, Int(column) < columns else {
                    throw DataFileError.malformed(file: name, reason: "row \(row): column \(column) out of range 0..<\(columns)")
                }
                guard index == start || columnIndices[index - 1] < column else {
                    throw DataFileError.malformed(file: name, reason: "row \(row): columns not sorted or duplicated at \(column)")
                }
            }
        }
        return self
    }

    /// The same pattern with uniform values in [−1, 1) from a seeded generator (reproducible).
    public func withRandomValues(seed: UInt64) -> SparseMatrixData {
        var generator = SeededGenerator(seed: seed)
        var copy = self
        copy.values = (0..<nonzeroCount).map { _ in 2 * generator.unitFloat() - 1 }
        return copy
    }

    /// The same pattern with values taken from a dense row-major `rows × columns` weight.
    public func withValues(fromDense dense: [Float]) throws -> SparseMatrixData {
        guard let size = checkedProduct([rows, columns]), dense.count == size else {
            throw KernelError.countMismatch(expected: checkedProduct([rows, columns]) ?? -1, got: dense.count)
        }
        var copy = self
        var values = [Float](repeating: 0, count: nonzeroCount)
        for row in 0..<rows {
            for index in Int(rowOffsets[row])..<Int(rowOffsets[row + 1]) { values[index] = dense[row * columns + Int(columnIndices[index])] }
        }
        copy.values = values
        return copy
    }

    /// The dense row-major matrix (zeros where there is no entry; ones for a pattern).
    public func dense() -> [Float] {
        var result = [Float](repeating: 0, count: rows * columns)
        for row in 0..<rows {
            for index in Int(rowOffsets[row])..<Int(rowOffsets[row + 1]) {
                result[row * columns + Int(columnIndices[index])] = values?[index] ?? 1
            }
        }
        return result
    }

    /// Builds CSR from coordinate triplets (0-based), summing duplicates as scipy does.
    static func fromCoordinates(rows: Int, columns: Int, entries: [(row: Int32, column: Int32, value: Float)], pattern: Bool,
                                name: String) throws -> SparseMatrixData {
        let sorted = entries.sorted { ($0.row, $0.column) < ($1.row, $1.column) }
        var offsets = [Int32](repeating: 0, count: rows + 1)
        var indices: [Int32] = []
        var values: [Float] = []
        indices.reserveCapacity(sorted.count)
        var last: (row: Int32, column: Int32)?
        for entry in sorted {
            guard entry.row >= 0, Int(entry.row) < rows, entry.column >= 0, Int(entry.column) < columns else {
                throw DataFileError.malformed(file: name, reason: "entry (\(entry.row + 1), \(entry.column + 1)) outside \(rows) × \(columns)")
            }
            if let last, last == (entry.row, entry.column) {
                values[values.count - 1] += entry.value
                continue
            }
            last = (entry.row, entry.column)
            indices.append(entry.column)
            values.append(entry.value)
            offsets[Int(entry.row) + 1] += 1
        }
        for row in 0..<rows { offsets[row + 1] += offsets[row] }
        return SparseMatrixData(rows: rows, columns: columns, rowOffsets: offsets, columnIndices: indices, values: pattern ? nil : values)
    }
}

/// Readers and writers for sparse matrix files.
public enum SparseMatrixFile {
    /// DLMC `.smtx` (Gale et al., "Sparse GPU Kernels for Deep Learning"): a line `rows, columns, nnz`,
    /// a line of `rows + 1` row offsets and a line of `nnz` column indices. Pattern only.
    /// Reads a regular file within `limits`: `rows` + 1 and `nnz` are at most `maxElements`.
    public static func readSMTX(contentsOf path: String, limits: ReadLimits = .default) throws -> SparseMatrixData {
        try readSMTX(bytes: readFile(path, limits: limits), name: path, limits: limits)
    }

    public static func readSMTX(text: String, name: String, limits: ReadLimits = .default) throws -> SparseMatrixData {
        try readSMTX(bytes: Array(text.utf8), name: name, limits: limits)
    }

    public static func readSMTX(bytes: [UInt8], name: String, limits: ReadLimits = .default) throws -> SparseMatrixData {
        // Three lines; parsed byte by byte because DLMC files hold up to millions of indices. At most four
        // pieces are split off, so a file of many short lines costs no more than its own size.
        var lines = bytes.split(maxSplits: 3, omittingEmptySubsequences: true) { $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }
            .makeIterator()
        guard let first = lines.next() else { throw DataFileError.truncated(file: name, needed: 1, available: 0) }
        let header = try integers(first, name: name, what: "header")
        guard header.count == 3, header.allSatisfy({ $0 >= 0 }) else {
            throw DataFileError.malformed(file: name, reason: "first line must be 'rows, columns, nnz', got '\(String(decoding: first.prefix(40), as: UTF8.self))'")
        }
        let (rows, columns, nnz) = (Int(header[0]), Int(header[1]), Int(header[2]))
        try limits.check(rows + 1, \.maxElements, file: name, field: "rows + 1 (row offsets)")
        try limits.check(nnz, \.maxElements, file: name, field: "nnz")
        let offsets = try lines.next().map { try integers($0, name: name, what: "row offsets") } ?? []
        let indices = try lines.next().map { try integers($0, name: name, what: "column indices") } ?? []
        guard offsets.count == rows + 1 else { throw DataFileError.truncated(file: name, needed: rows + 1, available: offsets.count) }
        guard indices.count == nnz else { throw DataFileError.truncated(file: name, needed: nnz, available: indices.count) }
        return try SparseMatrixData(rows: rows, columns: columns, rowOffsets: offsets, columnIndices: indices, values: nil)
            .validated(name: name)
    }

    /// Matrix Market coordinate format (`real`, `integer` or `pattern`; `general`, `symmetric` or
    /// `skew-symmetric`). Duplicate entries are summed, as scipy does. `rows` + 1 and the declared entry
    /// count (twice it for symmetric matrices) must be within `limits.maxElements`, checked before
    /// anything is allocated. Values are kept as written, NaN and ∞ included (a weight may be NaN).
    public static func readMatrixMarket(contentsOf path: String, limits: ReadLimits = .default) throws -> SparseMatrixData {
        try readMatrixMarket(text: String(decoding: readFile(path, limits: limits), as: UTF8.self), name: path, limits: limits)
    }

    public static func readMatrixMarket(text: String, name: String, limits: ReadLimits = .default) throws -> SparseMatrixData {
        var lines = LazyLines(text)
        guard let banner = lines.next() else { throw DataFileError.truncated(file: name, needed: 1, available: 0) }
        let words = banner.lowercased().split(separator: " ").map(String.init)
        guard words.count == 5, words[0] == "%%matrixmarket", words[1] == "matrix" else {
            throw DataFileError.malformed(file: name, reason: "no '%%MatrixMarket matrix …' banner")
        }
        guard words[2] == "coordinate" else { throw DataFileError.unsupported(file: name, what: "\(words[2]) format (coordinate is read)") }
        guard ["real", "integer", "pattern"].contains(words[3]) else { throw DataFileError.unsupported(file: name, what: "field \(words[3])") }
        guard ["general", "symmetric", "skew-symmetric"].contains(words[4]) else { throw DataFileError.unsupported(file: name, what: "symmetry \(words[4])") }
        let pattern = words[3] == "pattern"
        var sizeLine: Substring?
        while let line = lines.next() {
            if line.hasPrefix("%") || line.allSatisfy(\.isWhitespace) { continue }
            sizeLine = line
            break
        }
        guard let sizeLine else { throw DataFileError.truncated(file: name, needed: 1, available: 0) }
        let size = sizeLine.split(whereSeparator: \.isWhitespace).map { Int($0) }
        guard size.count == 3, let rows = size[0], let columns = size[1], let count = size[2], rows >= 0, columns >= 0, count >= 0,
              rows < Int(Int32.max), columns < Int(Int32.max), count < Int(Int32.max) / 2 else {
            throw DataFileError.malformed(file: name, reason: "size line must be 'rows columns entries' (each below 2^31, entries below 2^30), got '\(sizeLine.prefix(80))'")
        }
        let symmetric = words[4] != "general"
        try limits.check(rows + 1, \.maxElements, file: name, field: "rows + 1 (row offsets)")
        try limits.check(symmetric ? 2 * count : count, \.maxElements, file: name, field: symmetric ? "2 × entries (symmetric)" : "entries")
        var entries: [(row: Int32, column: Int32, value: Float)] = []
        // Each entry line takes at least 4 bytes ("1 1\n"), so the text bounds what a real file can list.
        entries.reserveCapacity(min(count, text.utf8.count / 4, 1 << 24) * (symmetric ? 2 : 1))
        var listed = 0
        while listed < count, let line = lines.next() {
            if line.hasPrefix("%") || line.allSatisfy(\.isWhitespace) { continue }
            let fields = line.split(whereSeparator: \.isWhitespace)
            guard fields.count >= (pattern ? 2 : 3), let row = Int32(fields[0]), let column = Int32(fields[1]),
                  let value = pattern ? 1 : Float(fields[2]) else {
                throw DataFileError.malformed(file: name, reason: "entry \(listed + 1): '\(line.prefix(80))'")
            }
            // 1-based; checked here so that `row - 1` cannot overflow (fromCoordinates checks the upper bound).
            guard row >= 1, column >= 1 else {
                throw DataFileError.malformed(file: name, reason: "entry \(listed + 1): (\(row), \(column)) is not 1-based")
            }
            entries.append((row - 1, column - 1, value))
            listed += 1
            if symmetric && row != column {
                entries.append((column - 1, row - 1, words[4] == "skew-symmetric" ? -value : value))
            }
        }
        guard listed == count else { throw DataFileError.malformed(file: name, reason: "\(count) entries declared, \(listed) listed") }
        return try SparseMatrixData.fromCoordinates(rows: rows, columns: columns, entries: entries, pattern: pattern, name: name)
            .validated(name: name)
    }

    /// Writes Matrix Market `coordinate real general` (or `pattern` when there are no values), which
    /// `scipy.io.mmread` reads.
    public static func writeMatrixMarket(_ matrix: SparseMatrixData, to path: String) throws {
        var text = "%%MatrixMarket matrix coordinate \(matrix.values == nil ? "pattern" : "real") general\n"
        text += "% written by VulkanKernels\n\(matrix.rows) \(matrix.columns) \(matrix.nonzeroCount)\n"
        for row in 0..<matrix.rows {
            for index in Int(matrix.rowOffsets[row])..<Int(matrix.rowOffsets[row + 1]) {
                text += "\(row + 1) \(matrix.columnIndices[index] + 1)"
                if let values = matrix.values { text += " \(values[index])" }
                text += "\n"
            }
        }
        try writeFile(Array(text.utf8), to: path)
    }

    /// Non-negative or negative decimal integers separated by spaces, commas or tabs.
    private static func integers(_ line: ArraySlice<UInt8>, name: String, what: String) throws -> [Int32] {
        var result: [Int32] = []
        result.reserveCapacity(line.count / 4)
        var value: Int64 = 0, digits = 0, negative = false
        func finish() throws {
            guard digits > 0 else { return }
            let signed = negative ? -value : value
            guard let fitted = Int32(exactly: signed) else { throw DataFileError.malformed(file: name, reason: "\(what): \(signed) out of range") }
            result.append(fitted)
            value = 0; digits = 0; negative = false
        }
        for byte in line {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
                digits += 1
                guard digits <= 12 else { throw DataFileError.malformed(file: name, reason: "\(what): number too long") }
            case UInt8(ascii: "-") where digits == 0 && !negative: negative = true
            case UInt8(ascii: " "), UInt8(ascii: ","), UInt8(ascii: "\t"): try finish()
            default:
                throw DataFileError.malformed(file: name, reason: "\(what): unexpected character '\(Character(Unicode.Scalar(byte)))'")
            }
        }
        try finish()
        return result
    }
}

/// The lines of a text one at a time (the whole file is never split into an array of lines, which would
/// cost several times the file's size for a file of short lines).
struct LazyLines: IteratorProtocol {
    private let text: String
    private var position: String.Index

    init(_ text: String) {
        self.text = text
        position = text.startIndex
    }

    mutating func next() -> Substring? {
        while position < text.endIndex, text[position].isNewline { position = text.index(after: position) }
        guard position < text.endIndex else { return nil }
        let start = position
        while position < text.endIndex, !text[position].isNewline { position = text.index(after: position) }
        return text[start..<position]
    }
}
