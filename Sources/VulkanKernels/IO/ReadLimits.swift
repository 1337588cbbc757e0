import FoundationEssentials
import Glibc

/// The sizes a reader accepts from a file before it allocates anything. Every reader checks what a file
/// *declares* (shapes, element counts, header lengths, decompressed sizes, image sizes) against these
/// limits with overflow-checked arithmetic, so a few crafted bytes cannot make it allocate gigabytes or
/// trap; a file over a limit is a ``DataFileError/limitExceeded(file:field:value:limit:)`` that names the
/// limit to raise. The defaults admit every real file this project reads with a wide margin (the largest
/// DLMC matrix has 10⁷ entries; an instant-ngp snapshot inflates to < 100 MB); raise them for bigger data:
///
/// ```swift
/// var limits = ReadLimits.default
/// limits.maxElements = 1 << 31
/// let file = try SafeTensorsFile(contentsOf: "big.safetensors", limits: limits)
/// ```
public struct ReadLimits: Sendable, Equatable {
    /// Bytes of a file read whole into memory (every reader reads its file whole).
    public var maxFileBytes: Int
    /// Elements of one array a file declares but does not hold byte for byte: a Matrix Market or `.smtx`
    /// row-offset table (`rows` + 1) and entry list, a scipy archive's shape, a snapshot's density grid.
    /// (Arrays whose bytes are in the file, like `.npy` and `.safetensors` data, are bounded by the file's
    /// size; their shapes are still checked for overflow.)
    public var maxElements: Int
    /// Bytes a compressed stream (gzip, zlib, a zip member) may inflate to, in total.
    public var maxDecompressedBytes: Int
    /// How many times larger than its compressed bytes a stream may inflate (deflate cannot exceed
    /// about 1032:1, so a larger declared ratio is a lie; a decompression bomb is caught at this ratio
    /// even below ``maxDecompressedBytes``).
    public var maxCompressionRatio: Int
    /// Bytes of a text header or JSON document (a `.npy` or `.safetensors` header, `transforms.json`,
    /// `camera_path.json`). The safetensors format itself caps its header at 100 MB.
    public var maxHeaderBytes: Int
    /// Pixels (width × height) of an image read or sized from a file.
    public var maxImagePixels: Int

    public init(maxFileBytes: Int = 1 << 33, maxElements: Int = 1 << 28, maxDecompressedBytes: Int = 1 << 32,
                maxCompressionRatio: Int = 1100, maxHeaderBytes: Int = 100 << 20, maxImagePixels: Int = 1 << 28) {
        self.maxFileBytes = maxFileBytes
        self.maxElements = maxElements
        self.maxDecompressedBytes = maxDecompressedBytes
        self.maxCompressionRatio = maxCompressionRatio
        self.maxHeaderBytes = maxHeaderBytes
        self.maxImagePixels = maxImagePixels
    }

    /// 8 GiB files, 2²⁸ declared elements per array, 4 GiB decompressed at most 1100:1, 100 MiB headers, 2²⁸ pixels.
    public static let `default` = ReadLimits()

    /// Throws `limitExceeded` unless `value <= limit`.
    func check(_ value: Int, _ limit: KeyPath<ReadLimits, Int>, file: String, field: String) throws {
        let bound = self[keyPath: limit]
        guard value <= bound else {
            throw DataFileError.limitExceeded(file: file, field: field, value: value, limit: "\(Self.name(of: limit)) = \(bound)")
        }
    }

    static func name(of limit: KeyPath<ReadLimits, Int>) -> String {
        switch limit {
        case \ReadLimits.maxFileBytes: "ReadLimits.maxFileBytes"
        case \ReadLimits.maxElements: "ReadLimits.maxElements"
        case \ReadLimits.maxDecompressedBytes: "ReadLimits.maxDecompressedBytes"
        case \ReadLimits.maxCompressionRatio: "ReadLimits.maxCompressionRatio"
        case \ReadLimits.maxHeaderBytes: "ReadLimits.maxHeaderBytes"
        case \ReadLimits.maxImagePixels: "ReadLimits.maxImagePixels"
        default: "ReadLimits"
        }
    }
}

/// Overflow-checked products of sizes read from files: nil when the product does not fit an Int or a
/// factor is negative.
func checkedProduct(_ factors: [Int]) -> Int? {
    var product = 1
    for factor in factors {
        guard factor >= 0 else { return nil }
        let (next, overflow) = product.multipliedReportingOverflow(by: factor)
        if overflow { return nil }
        product = next
    }
    return product
}

/// A whole number from a file's floating-point value (an image size, a resolution), or nil when it is
/// not finite, not whole, or outside `range`. `Int(x)` traps on such values; this never does.
func wholeNumber(_ value: Double, in range: ClosedRange<Int>) -> Int? {
    guard value.isFinite, value.rounded() == value, value >= Double(range.lowerBound), value <= Double(range.upperBound) else { return nil }
    return Int(value)
}

/// Reads a whole regular file, never blocking: the file is opened non-blocking and `fstat`ed before any
/// read, so a FIFO, socket, device or directory is refused with a clear error instead of hanging or
/// giving a raw Foundation message; a file over `limits.maxFileBytes` is refused before allocating.
func readRegularFile(_ path: String, limits: ReadLimits = .default) throws -> [UInt8] {
    let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard descriptor >= 0 else { throw DataFileError.io(file: path, reason: "cannot open: \(systemMessage(errno))") }
    defer { close(descriptor) }
    var status = stat()
    guard fstat(descriptor, &status) == 0 else { throw DataFileError.io(file: path, reason: "cannot stat: \(systemMessage(errno))") }
    let kind = status.st_mode & S_IFMT
    guard kind == S_IFREG else {
        let what = switch kind {
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO (named pipe)"
        case S_IFCHR, S_IFBLK: "a device"
        case S_IFSOCK: "a socket"
        default: "not a regular file"
        }
        throw DataFileError.io(file: path, reason: "is \(what), not a regular file")
    }
    let size = Int(status.st_size)
    try limits.check(size, \.maxFileBytes, file: path, field: "file size")
    var bytes = [UInt8](repeating: 0, count: size)
    var done = 0
    while done < size {
        let count = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + done, size - done) }
        if count < 0 && errno == EINTR { continue }
        guard count >= 0 else { throw DataFileError.io(file: path, reason: "cannot read: \(systemMessage(errno))") }
        guard count > 0 else { break }  // shrank while reading
        done += count
    }
    return done == size ? bytes : Array(bytes[0..<done])
}

/// The C library's message for an `errno` value ("No such file or directory").
func systemMessage(_ code: Int32) -> String { String(cString: strerror(code)) }

/// The first `count` bytes (or fewer) of a regular file, opened non-blocking and checked with `fstat`
/// first like ``readRegularFile(_:limits:)``.
func readRegularFilePrefix(_ path: String, count: Int) throws -> [UInt8] {
    let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard descriptor >= 0 else { throw DataFileError.io(file: path, reason: "cannot open: \(systemMessage(errno))") }
    defer { close(descriptor) }
    var status = stat()
    guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
        throw DataFileError.io(file: path, reason: "is not a regular file")
    }
    var bytes = [UInt8](repeating: 0, count: count)
    let done = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, count) }
    guard done >= 0 else { throw DataFileError.io(file: path, reason: "cannot read: \(systemMessage(errno))") }
    return Array(bytes[0..<done])
}

/// Why a JSON document could not be read (``readJSONDocument(_:limits:)``); callers wrap it in their own error.
struct JSONDocumentError: Error { let reason: String }

/// A JSON document's bytes (camera files, instant-ngp configs): a regular file (never blocking on a FIFO)
/// of at most `limits.maxHeaderBytes`.
func readJSONDocument(_ path: String, limits: ReadLimits) throws -> Data {
    var jsonLimits = limits
    jsonLimits.maxFileBytes = min(limits.maxFileBytes, limits.maxHeaderBytes)
    do {
        return Data(try readRegularFile(path, limits: jsonLimits))
    } catch let error as DataFileError {
        throw JSONDocumentError(reason: "\(error)".replacingOccurrences(of: "ReadLimits.maxFileBytes", with: "ReadLimits.maxHeaderBytes"))
    }
}
