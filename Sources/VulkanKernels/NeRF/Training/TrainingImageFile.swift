import CJPEG
import Foundation
import Glibc

/// Why a capture (a `transforms.json` and its images) could not be used for training.
public struct DatasetError: Error, CustomStringConvertible, Equatable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "dataset: \(reason)" }
}

/// One training image in memory: 8-bit RGBA with **premultiplied** alpha (so that box-filter downscaling
/// and compositing over a background are both plain sums), rows top first.
public struct TrainingImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// True when the file had an alpha channel (PNG RGBA / gray + alpha): training then composites it over
    /// a random background per ray, as instant-ngp does; images without alpha are opaque (alpha 255).
    public var hasAlpha: Bool
    /// width × height × 4 bytes: premultiplied R, G, B and alpha.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, hasAlpha: Bool, pixels: [UInt8]) throws {
        guard width > 0, height > 0, width.multipliedReportingOverflow(by: height).overflow == false,
              pixels.count == width * height * 4 else {
            throw DatasetError("image of \(width)×\(height) pixels with \(pixels.count) bytes (expected 4 per pixel)")
        }
        self.width = width
        self.height = height
        self.hasAlpha = hasAlpha
        self.pixels = pixels
    }

    /// Premultiplied RGBA of pixel (x, y) in [0, 1].
    @inline(__always)
    public func premultiplied(x: Int, y: Int) -> SIMD4<Float> {
        let i = 4 * (y * width + x)
        return SIMD4(Float(pixels[i]), Float(pixels[i + 1]), Float(pixels[i + 2]), Float(pixels[i + 3])) / 255
    }

    /// The pixel composited over `background` (premultiplied colour + (1 − alpha)·background).
    @inline(__always)
    public func colour(x: Int, y: Int, over background: SIMD3<Float>) -> SIMD3<Float> {
        let p = premultiplied(x: x, y: y)
        return SIMD3(p.x, p.y, p.z) + (1 - p.w) * background
    }

    /// The image reduced by an integer `factor`: each output pixel is the mean of a factor × factor block
    /// of premultiplied values (a box filter; averaging premultiplied colour keeps transparent pixels from
    /// darkening edges). Rows and columns beyond the last whole block are dropped.
    public func downscaled(by factor: Int) throws -> TrainingImage {
        guard factor >= 1 else { throw DatasetError("downscale factor \(factor) (must be ≥ 1)") }
        if factor == 1 { return self }
        let w = width / factor, h = height / factor
        guard w > 0, h > 0 else { throw DatasetError("downscale factor \(factor) leaves nothing of a \(width)×\(height) image") }
        var out = [UInt8](repeating: 0, count: w * h * 4)
        let area = UInt32(factor * factor)
        pixels.withUnsafeBufferPointer { src in
            for y in 0..<h {
                for x in 0..<w {
                    var sum = SIMD4<UInt32>(repeating: 0)
                    for dy in 0..<factor {
                        var i = 4 * ((y * factor + dy) * width + x * factor)
                        for _ in 0..<factor {
                            sum &+= SIMD4(UInt32(src[i]), UInt32(src[i + 1]), UInt32(src[i + 2]), UInt32(src[i + 3]))
                            i += 4
                        }
                    }
                    let rounded = (sum &+ area / 2) / area
                    let o = 4 * (y * w + x)
                    for c in 0..<4 { out[o + c] = UInt8(rounded[c]) }
                }
            }
        }
        return try TrainingImage(width: w, height: h, hasAlpha: hasAlpha, pixels: out)
    }
}

/// Reading training images from files: PNG (libpng's simplified API, any bit depth and colour type,
/// straight alpha converted to premultiplied) and JPEG (libjpeg-turbo).
///
/// Hardened against hostile or broken files: only regular files are opened, the file size and the
/// declared pixel count are checked against limits before any pixel buffer is allocated, all size
/// arithmetic is overflow-checked, and every error names the file.
public enum TrainingImageFile {
    /// Images with more pixels than this are refused (2^28: a 16384 × 16384 photograph fits).
    public static let maximumPixels = 1 << 28
    /// Neither side may exceed this (the camera files' own limit).
    public static let maximumSide = 1 << 16
    /// Compressed files larger than this are refused before they are read (1 GiB).
    public static let maximumFileBytes = 1 << 30

    /// The file and pixel limits above as the IO readers' ``ReadLimits``.
    static let limits = ReadLimits(maxFileBytes: maximumFileBytes, maxImagePixels: maximumPixels)

    /// Reads `path` (PNG or JPEG, told apart by the file's first bytes, not its name) through the IO
    /// readers' regular-file and size checks.
    public static func read(_ path: String) throws -> TrainingImage {
        let bytes = try asDatasetError { try readFile(path, limits: limits) }
        if bytes.starts(with: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) { return try decodePNG(bytes, name: path) }
        if bytes.starts(with: [0xff, 0xd8, 0xff]) { return try decodeJPEG(bytes, name: path) }
        throw DatasetError("\(path): neither a PNG nor a JPEG file")
    }

    /// Decodes JPEG bytes (`name` is used in errors); an image over `maximumPixels` is refused from its header,
    /// before any pixel buffer is allocated.
    public static func decodeJPEG(_ bytes: [UInt8], name: String, maximumPixels: Int = maximumPixels) throws -> TrainingImage {
        var pixels: UnsafeMutablePointer<UInt8>? = nil
        var width: UInt32 = 0, height: UInt32 = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = bytes.withUnsafeBufferPointer { data in
            vkk_jpeg_decode(data.baseAddress, UInt(data.count), UInt64(max(0, maximumPixels)), UInt32(maximumSide),
                            &pixels, &width, &height, &message, message.count)
        }
        guard status == 0, let pixels else {
            throw DatasetError("\(name): not a readable JPEG (\(String(cString: message)))")
        }
        defer { free(pixels) }
        let count = Int(width) * Int(height)
        var rgba = [UInt8](repeating: 255, count: count * 4)
        for i in 0..<count {
            rgba[4 * i] = pixels[3 * i]; rgba[4 * i + 1] = pixels[3 * i + 1]; rgba[4 * i + 2] = pixels[3 * i + 2]
        }
        return try TrainingImage(width: Int(width), height: Int(height), hasAlpha: false, pixels: rgba)
    }

    /// Decodes PNG bytes with ``PNG/decode8(_:name:limits:)`` (chunk and pixel limits checked before libpng
    /// allocates) and widens grey / grey + alpha / RGB to RGBA, straight alpha to premultiplied.
    static func decodePNG(_ bytes: [UInt8], name: String) throws -> TrainingImage {
        let png = try asDatasetError { try PNG.decode8(bytes, name: name, limits: limits) }
        guard png.width <= maximumSide, png.height <= maximumSide else {
            throw DatasetError("\(name): \(png.width)×\(png.height) pixels is beyond the limits (sides ≤ \(maximumSide))")
        }
        let count = png.width * png.height, channels = png.channels
        let hasAlpha = channels == 2 || channels == 4
        var rgba = [UInt8](repeating: 255, count: count * 4)
        for i in 0..<count {
            let source = i * channels
            let alpha = hasAlpha ? UInt32(png.values[source + channels - 1]) : 255
            for c in 0..<3 {
                let value = UInt32(png.values[source + (channels >= 3 ? c : 0)])
                rgba[4 * i + c] = UInt8((value * alpha + 127) / 255)   // straight → premultiplied, rounded
            }
            rgba[4 * i + 3] = UInt8(alpha)
        }
        return try TrainingImage(width: png.width, height: png.height, hasAlpha: hasAlpha, pixels: rgba)
    }

    /// The IO readers' errors (which name the file) as ``DatasetError``, the one error a capture's frames
    /// are skipped for.
    private static func asDatasetError<Result>(_ body: () throws -> Result) throws -> Result {
        do { return try body() } catch let error as DatasetError { throw error } catch { throw DatasetError("\(error)") }
    }
}
