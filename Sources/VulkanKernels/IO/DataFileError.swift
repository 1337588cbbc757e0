import FoundationEssentials

/// A data file that cannot be read: what is wrong and where, with the file's name.
public enum DataFileError: Error, CustomStringConvertible, Equatable {
    /// The file ends before the data its header promises.
    case truncated(file: String, needed: Int, available: Int)
    /// The bytes do not follow the format.
    case malformed(file: String, reason: String)
    /// A valid file whose element type or layout this library does not read.
    case unsupported(file: String, what: String)
    /// The file could not be opened or written.
    case io(file: String, reason: String)

    public var description: String {
        switch self {
        case let .truncated(file, needed, available): "\(file): truncated: needs \(needed) bytes, has \(available)"
        case let .malformed(file, reason): "\(file): malformed: \(reason)"
        case let .unsupported(file, what): "\(file): unsupported: \(what)"
        case let .io(file, reason): "\(file): \(reason)"
        }
    }
}

/// Reads a whole file, turning failures into ``DataFileError/io(file:reason:)``.
func readFile(_ path: String) throws -> [UInt8] {
    do {
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    } catch {
        throw DataFileError.io(file: path, reason: "cannot read (\(error))")
    }
}

func writeFile(_ bytes: [UInt8], to path: String) throws {
    do {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    } catch {
        throw DataFileError.io(file: path, reason: "cannot write (\(error))")
    }
}

/// Bounds-checked little-endian reads from a byte array; every read past the end throws `truncated`.
struct ByteReader {
    let bytes: [UInt8]
    let file: String
    var position = 0

    init(_ bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    mutating func need(_ count: Int) throws {
        guard count >= 0, position <= bytes.count, count <= bytes.count - position else {
            throw DataFileError.truncated(file: file, needed: position + max(count, 0), available: bytes.count)
        }
    }

    mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        try need(count)
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    mutating func littleEndian<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let slice = try take(MemoryLayout<T>.size)
        return slice.reversed().reduce(T(0)) { ($0 << 8) | T($1) }
    }
}
