import CPNG
import Glibc

/// A PNG file could not be written or read (libpng's message).
public struct PNGError: Error, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "PNG \(path): \(message)" }
}

/// PNG files through libpng's simplified API: 8-bit gray/RGB/RGBA and 16-bit gray.
public enum PNG {
    // png.h's PNG_FORMAT_FLAG_* bits.
    private static let alphaFlag: UInt32 = 0x01, colourFlag: UInt32 = 0x02, linearFlag: UInt32 = 0x04

    /// Writes 8-bit pixels with 1 (gray), 3 (RGB) or 4 (RGBA) channels, row-major, top row first.
    public static func write8(_ pixels: [UInt8], width: Int, height: Int, channels: Int, to path: String) throws {
        guard [1, 3, 4].contains(channels), width > 0, height > 0, pixels.count == width * height * channels else {
            throw PNGError(path: path, message: "\(pixels.count) bytes for \(width)×\(height)×\(channels)")
        }
        let format: UInt32 = channels == 1 ? 0 : channels == 3 ? colourFlag : colourFlag | alphaFlag
        try pixels.withUnsafeBytes { try write($0.baseAddress!, width: width, height: height, format: format, to: path) }
    }

    /// Writes a 16-bit grayscale image (stored as linear, gAMA 1.0).
    public static func write16(_ pixels: [UInt16], width: Int, height: Int, to path: String) throws {
        guard width > 0, height > 0, pixels.count == width * height else {
            throw PNGError(path: path, message: "\(pixels.count) values for \(width)×\(height)")
        }
        try pixels.withUnsafeBytes { try write($0.baseAddress!, width: width, height: height, format: linearFlag, to: path) }
    }

    private static func write(_ buffer: UnsafeRawPointer, width: Int, height: Int, format: UInt32, to path: String) throws {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = format
        let ok = png_image_write_to_file(&image, path, 0, buffer, 0, nil)
        defer { png_image_free(&image) }
        guard ok != 0 else { throw PNGError(path: path, message: message(of: image)) }
    }

    /// Reads a PNG as 16-bit-per-channel values when it is 16-bit gray, else 8-bit values (in UInt16s),
    /// keeping its channel count (1, 2, 3 or 4). The file must be a regular file within `limits`
    /// (``ReadLimits/maxFileBytes``; width × height at most ``ReadLimits/maxImagePixels``, checked from the
    /// header before the pixels are allocated).
    public static func read(_ path: String, limits: ReadLimits = .default) throws -> (width: Int, height: Int, channels: Int, bitDepth: Int, values: [UInt16]) {
        try decode(readFile(path, limits: limits), name: path, limits: limits)
    }

    /// ``read(_:limits:)`` of PNG bytes in memory (`name` appears in errors).
    public static func decode(_ file: [UInt8], name: String, limits: ReadLimits = .default) throws -> (width: Int, height: Int, channels: Int, bitDepth: Int, values: [UInt16]) {
        try withImage(file, name: name, limits: limits) { image in
            let channels = channels(of: image)
            if image.format & linearFlag != 0 {
                var values = [UInt16](repeating: 0, count: Int(image.width) * Int(image.height) * channels)
                let ok = values.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
                guard ok != 0 else { throw PNGError(path: name, message: message(of: image)) }
                return (Int(image.width), Int(image.height), channels, 16, values)
            }
            return (Int(image.width), Int(image.height), channels, 8, try finish8(&image, path: name).map(UInt16.init))
        }
    }

    /// Reads a PNG as 8-bit values (16-bit files are reduced by libpng), keeping its channel count
    /// (1 gray, 2 gray + alpha, 3 RGB, 4 RGBA); row-major, top row first, channels interleaved. Limits as
    /// ``read(_:limits:)``.
    public static func read8(_ path: String, limits: ReadLimits = .default) throws -> (width: Int, height: Int, channels: Int, values: [UInt8]) {
        try decode8(readFile(path, limits: limits), name: path, limits: limits)
    }

    /// ``read8(_:limits:)`` of PNG bytes in memory (`name` appears in errors).
    public static func decode8(_ file: [UInt8], name: String, limits: ReadLimits = .default) throws -> (width: Int, height: Int, channels: Int, values: [UInt8]) {
        try withImage(file, name: name, limits: limits) { image in
            image.format &= ~linearFlag
            return (Int(image.width), Int(image.height), channels(of: image), try finish8(&image, path: name))
        }
    }

    /// Parses the header of PNG bytes already in memory (so a FIFO or device was refused by ``readFile``
    /// before anything was opened), checks the image's size against `limits` before any pixel is
    /// allocated, and runs `body` while libpng may still read the bytes.
    private static func withImage<Result>(_ file: [UInt8], name: String, limits: ReadLimits,
                                          _ body: (inout png_image) throws -> Result) throws -> Result {
        try checkChunks(file, name: name, limits: limits)
        return try file.withUnsafeBytes { bytes in
            var image = png_image()
            image.version = UInt32(PNG_IMAGE_VERSION)
            guard png_image_begin_read_from_memory(&image, bytes.baseAddress, bytes.count) != 0 else {
                throw PNGError(path: name, message: message(of: image))
            }
            defer { png_image_free(&image) }
            let pixels = Int(image.width) * Int(image.height)  // two UInt32s: cannot overflow an Int
            guard pixels <= limits.maxImagePixels else {
                throw DataFileError.limitExceeded(file: name, field: "image size \(image.width)×\(image.height) (pixels)", value: pixels,
                                                  limit: "ReadLimits.maxImagePixels = \(limits.maxImagePixels)")
            }
            return try body(&image)
        }
    }

    /// libpng allocates what a chunk's length field declares before reading it (a 1 KiB file declaring a
    /// 512 MiB `tEXt` chunk made it allocate 512 MiB: found by fuzzing) and inflates compressed text and
    /// ICC profiles without a bound. So every chunk's length is checked against the bytes that follow, and
    /// compressed `zTXt`, `iTXt` and `iCCP` data against `limits.maxHeaderBytes` and the compression ratio,
    /// before libpng sees the file.
    static func checkChunks(_ file: [UInt8], name: String, limits: ReadLimits) throws {
        var position = 8  // after the signature (libpng reports a bad one)
        while position + 8 <= file.count {
            let length = file[position..<(position + 4)].reduce(0) { $0 << 8 | Int($1) }
            let type = String(decoding: file[(position + 4)..<(position + 8)], as: UTF8.self)
            guard length <= file.count - position - 12 else {
                throw DataFileError.truncated(file: name, needed: position + 12 + length, available: file.count)
            }
            let data = file[(position + 8)..<(position + 8 + length)]
            if let compressed = compressedPart(of: data, type: type) {
                do {
                    _ = try Zlib.decompress(Array(compressed), limit: limits.maxHeaderBytes, maxRatio: limits.maxCompressionRatio,
                                            limitName: "ReadLimits.maxHeaderBytes")
                } catch let error as Zlib.Error where error.exceedsLimit {
                    throw DataFileError.malformed(file: name, reason: "\(type) chunk: \(error)")
                } catch {
                    // A corrupt stream: libpng reports it (or ignores the ancillary chunk) itself.
                }
            }
            if type == "IEND" { break }
            position += 12 + length
        }
    }

    /// The zlib stream inside a `zTXt` / `iCCP` (keyword, 0, method, stream) or compressed `iTXt` chunk.
    private static func compressedPart(of data: ArraySlice<UInt8>, type: String) -> ArraySlice<UInt8>? {
        guard ["zTXt", "iCCP", "iTXt"].contains(type), let keywordEnd = data.firstIndex(of: 0) else { return nil }
        if type != "iTXt" { return data.index(keywordEnd, offsetBy: 2, limitedBy: data.endIndex).map { data[$0...] } }
        // iTXt: keyword, 0, compression flag, method, language, 0, translated keyword, 0, text.
        guard keywordEnd + 2 < data.endIndex, data[keywordEnd + 1] == 1,
              let languageEnd = data[(keywordEnd + 3)...].firstIndex(of: 0),
              let translatedEnd = data[(languageEnd + 1)...].firstIndex(of: 0) else { return nil }
        return data[(translatedEnd + 1)...]
    }

    private static func channels(of image: png_image) -> Int {
        Int(image.format & colourFlag != 0 ? 3 : 1) + Int(image.format & alphaFlag)
    }

    private static func finish8(_ image: inout png_image, path: String) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Int(image.width) * Int(image.height) * channels(of: image))
        let ok = bytes.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        guard ok != 0 else { throw PNGError(path: path, message: message(of: image)) }
        return bytes
    }

    private static func message(of image: png_image) -> String {
        var copy = image.message
        return withUnsafeBytes(of: &copy) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
    }
}

extension PNG {
    /// The colour image, 8-bit RGB (values clamped to [0, 1] and written as they are, no gamma change).
    public static func write(_ image: RenderedImage, to path: String) throws {
        try write8(image.rgb.map(quantize8), width: image.width, height: image.height, channels: 3, to: path)
    }

    /// 8-bit RGBA with straight alpha = opacity: colour = (C − T·background)/opacity.
    public static func writeWithAlpha(_ image: RenderedImage, background: SIMD3<Float>, to path: String) throws {
        var pixels = [UInt8](repeating: 0, count: 4 * image.width * image.height)
        for i in 0..<(image.width * image.height) {
            let a = image.opacity[i]
            for c in 0..<3 {
                let premultiplied = image.rgb[3 * i + c] - (1 - a) * background[c]
                pixels[4 * i + c] = a > 1e-4 ? quantize8(premultiplied / a) : 0
            }
            pixels[4 * i + 3] = quantize8(a)
        }
        try write8(pixels, width: image.width, height: image.height, channels: 4, to: path)
    }

    /// Expected depth as 16-bit gray in units of `unit` (default: 1/1000 of a world unit; 0 = nothing hit,
    /// i.e. opacity below ½).
    public static func writeDepth(_ image: RenderedImage, unit: Float = 1e-3, to path: String) throws {
        let values = (0..<(image.width * image.height)).map { i -> UInt16 in
            guard image.opacity[i] >= 0.5 else { return 0 }
            return UInt16(min(max((image.depth[i] / unit).rounded(), 1), 65535))
        }
        try write16(values, width: image.width, height: image.height, to: path)
    }

    /// A colour-mapped depth preview: near = warm, far = cool over the depth range of the hit pixels;
    /// pixels with opacity below ½ are black.
    public static func writeDepthPreview(_ image: RenderedImage, to path: String) throws {
        let hits = (0..<(image.width * image.height)).filter { image.opacity[$0] >= 0.5 }
        let near = hits.map { image.depth[$0] }.min() ?? 0, far = hits.map { image.depth[$0] }.max() ?? 1
        var pixels = [UInt8](repeating: 0, count: 3 * image.width * image.height)
        for i in hits {
            let x = far > near ? (image.depth[i] - near) / (far - near) : 0
            let colour = depthColour(1 - x)
            for c in 0..<3 { pixels[3 * i + c] = quantize8(colour[c]) }
        }
        try write8(pixels, width: image.width, height: image.height, channels: 3, to: path)
    }

    /// A perceptually ordered dark-blue → teal → yellow → red ramp (piecewise linear, 5 stops).
    static func depthColour(_ x: Float) -> SIMD3<Float> {
        let stops: [SIMD3<Float>] = [SIMD3(0.10, 0.08, 0.35), SIMD3(0.10, 0.45, 0.70), SIMD3(0.25, 0.75, 0.45),
                                     SIMD3(0.95, 0.85, 0.20), SIMD3(0.85, 0.20, 0.10)]
        let position = min(max(x, 0), 1) * Float(stops.count - 1)
        let index = min(Int(position), stops.count - 2)
        let f = position - Float(index)
        return stops[index] * (1 - f) + stops[index + 1] * f
    }

    static func quantize8(_ value: Float) -> UInt8 { UInt8(min(max(value, 0), 1) * 255 + 0.5) }
}
