import FoundationEssentials
import Glibc

/// A data file that cannot be read: what is wrong and where, with the file's name.
public enum DataFileError: Error, CustomStringConvertible, Equatable {
    /// The file ends before the data its header promises.
    case truncated(file: String, needed: Int, available: Int)
    /// The bytes do not follow the format.
    case malformed(file: String, reason: String)
    /// A valid file whose element type or layout this library does not read.
    case unsupported(file: String, what: String)
    /// The file could not be opened or written, or is not a regular file.
    case io(file: String, reason: String)
    /// A size the file declares (`field`) is over a ``ReadLimits`` limit (named with its value in `limit`).
    case limitExceeded(file: String, field: String, value: Int, limit: String)

    public var description: String {
        switch self {
        case let .truncated(file, needed, available): "\(file): truncated: needs \(needed) bytes, has \(available)"
        case let .malformed(file, reason): "\(file): malformed: \(reason)"
        case let .unsupported(file, what): "\(file): unsupported: \(what)"
        case let .io(file, reason): "\(file): \(reason)"
        case let .limitExceeded(file, field, value, limit): "\(file): \(field) is \(value), over the limit \(limit) (raise it to read this file)"
        }
    }
}

/// Reads a whole regular file (see ``readRegularFile(_:limits:)``): special files are refused without
/// blocking, failures are ``DataFileError/io(file:reason:)``.
func readFile(_ path: String, limits: ReadLimits = .default) throws -> [UInt8] {
    try readRegularFile(path, limits: limits)
}

/// Writes `bytes` to `path` (created or truncated); failures are ``DataFileError/io(file:reason:)`` with the
/// system's message.
func writeFile(_ bytes: [UInt8], to path: String) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw DataFileError.io(file: path, reason: "cannot write: \(systemMessage(errno))") }
    defer { close(descriptor) }
    var done = 0
    while done < bytes.count {
        let count = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + done, bytes.count - done) }
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else { throw DataFileError.io(file: path, reason: "cannot write: \(systemMessage(errno))") }
        done += count
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
