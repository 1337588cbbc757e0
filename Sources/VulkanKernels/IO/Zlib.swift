import CZlib

/// Deflate streams through the system zlib: instant-ngp's compressed `.ingp` snapshots and the
/// members of `.npz` (zip) archives.
public enum Zlib {
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let reason: String
        /// The stream was cut off at a size or ratio cap (not corrupt as far as it was read).
        public var exceedsLimit = false
        public var description: String { "zlib: \(reason)" }
    }

    /// Whether `bytes` start like a gzip member (1f 8b) or a zlib stream (CMF 0x78 with a valid header check).
    public static func looksCompressed(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 2 else { return false }
        if bytes[0] == 0x1f && bytes[1] == 0x8b { return true }
        return bytes[0] & 0x0f == 8 && (UInt16(bytes[0]) << 8 | UInt16(bytes[1])) % 31 == 0
    }

    /// Compresses as gzip (what instant-ngp's zstr writes) or as a zlib stream.
    public static func compress(_ bytes: [UInt8], gzip: Bool = true, level: Int32 = 6) throws -> [UInt8] {
        var stream = z_stream()
        // windowBits 15 + 16 selects the gzip wrapper.
        guard deflateInit2_(&stream, level, Z_DEFLATED, gzip ? 31 : 15, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                            Int32(MemoryLayout<z_stream>.size)) == Z_OK else { throw Error(reason: "deflateInit2 failed") }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))) + 64)
        var input = bytes
        let status = input.withUnsafeMutableBufferPointer { source in
            output.withUnsafeMutableBufferPointer { destination in
                stream.next_in = source.baseAddress
                stream.avail_in = uInt(source.count)
                stream.next_out = destination.baseAddress
                stream.avail_out = uInt(destination.count)
                return deflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { throw Error(reason: "deflate failed (\(status))") }
        return Array(output[0..<Int(stream.total_out)])
    }

    /// Decompresses a gzip or zlib stream (detected from its header), or with `raw` a bare deflate
    /// stream (zip members). Truncated or corrupt input throws; the output is capped at `limit` bytes and
    /// at `maxRatio` times the input's size (deflate cannot exceed about 1032:1, so a larger ratio is a
    /// crafted stream), so a decompression bomb stops at the cap instead of exhausting memory.
    /// `limitName` names `limit` in the error (the ``ReadLimits`` field, or what the caller took it from).
    public static func decompress(_ bytes: [UInt8], raw: Bool = false, limit: Int = ReadLimits.default.maxDecompressedBytes,
                                  maxRatio: Int = ReadLimits.default.maxCompressionRatio,
                                  limitName: String = "ReadLimits.maxDecompressedBytes") throws -> [UInt8] {
        guard bytes.count <= Int(uInt.max) else { throw Error(reason: "compressed input of \(bytes.count) bytes is over 4 GiB") }
        // A little slack over the ratio for the stream's own header and trailer.
        let (byRatio, overflow) = bytes.count.multipliedReportingOverflow(by: max(maxRatio, 1))
        let ratioCap = overflow ? Int.max : byRatio + 1024
        let cap = min(limit, ratioCap)
        var stream = z_stream()
        // windowBits 15 + 32: detect zlib or gzip from the header; −15: no header at all.
        guard inflateInit2_(&stream, raw ? -15 : 47, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw Error(reason: "inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        // 1 MiB steps, or less when the cap is lower (a small stream must not cost a 1 MiB buffer per call).
        var chunk = [UInt8](repeating: 0, count: max(1, min(1 << 20, cap)))
        var input = bytes
        var status: Int32 = Z_OK
        try input.withUnsafeMutableBufferPointer { source in
            stream.next_in = source.baseAddress
            stream.avail_in = uInt(source.count)
            repeat {
                let produced: Int = chunk.withUnsafeMutableBufferPointer { destination in
                    stream.next_out = destination.baseAddress
                    stream.avail_out = uInt(destination.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    return destination.count - Int(stream.avail_out)
                }
                switch status {
                case Z_OK, Z_STREAM_END: break
                case Z_BUF_ERROR: throw Error(reason: "truncated compressed stream after \(output.count + produced) bytes of output")
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "code \(status)"
                    throw Error(reason: "corrupt compressed stream (\(message))")
                }
                guard produced <= cap - output.count else {
                    throw Error(reason: cap == limit
                        ? "decompressed size exceeds \(limit) bytes (\(limitName))"
                        : "decompresses to more than \(maxRatio) times its \(bytes.count) bytes (ReadLimits.maxCompressionRatio): a decompression bomb or a corrupt stream",
                                exceedsLimit: true)
                }
                output += chunk[0..<produced]
                if status == Z_OK && produced == 0 && stream.avail_in == 0 {
                    throw Error(reason: "truncated compressed stream after \(output.count) bytes of output")
                }
            } while status != Z_STREAM_END
        }
        return output
    }
}

extension Zlib {
    /// CRC-32 (the zip and gzip checksum).
    static func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBufferPointer { UInt32(CZlib.crc32(0, $0.baseAddress, uInt($0.count))) }
    }
}
