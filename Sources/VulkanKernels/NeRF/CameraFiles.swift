import Foundation

/// Why a camera file could not be read.
public struct CameraFileError: Error, CustomStringConvertible, Equatable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "camera file: \(reason)" }
}

/// How a `transforms.json` pose becomes a world-space ``Camera``.
public enum TransformsConvention: Sendable, Equatable {
    /// The matrix as stored: an OpenGL camera-to-world in the dataset's world (nerfstudio, NeRF-synthetic).
    case asStored
    /// instant-ngp's `nerf_matrix_to_ngp`: position · scale + offset, then world axes x, y, z → y, z, x.
    /// `nil` takes the file's `scale` / `offset` keys, else instant-ngp's defaults 0.33 and (0.5, 0.5, 0.5).
    /// (instant-ngp also flips the camera's y and z axes because its cameras look down +z; ``Camera``
    /// keeps the OpenGL convention, so that flip is already accounted for and every ray is the same.)
    case instantNGP(scale: Float? = nil, offset: SIMD3<Float>? = nil)
}

/// One frame of a `transforms.json`.
public struct CameraFrame: Sendable, Equatable {
    /// The frame's camera, distortion included.
    public var camera: Camera
    public var filePath: String?
    public var distortion: CameraDistortion { camera.distortion }
}

/// An instant-ngp / nerfstudio / NeRF-synthetic `transforms.json`.
public struct TransformsFile: Sendable {
    public var frames: [CameraFrame]
    /// instant-ngp's `aabb_scale` (scene extent in units of the unit cube), when given.
    public var aabbScale: Float?
    /// The scale and offset applied (instant-ngp convention) or that the file declares.
    public var scale: Float
    public var offset: SIMD3<Float>
    public var cameras: [Camera] { frames.map(\.camera) }

    /// Reads a file. Without `w`/`h` keys the size comes from the first frame's PNG header (NeRF-synthetic
    /// stores only `camera_angle_x`), or from `imageSize`.
    public static func read(contentsOf path: String, convention: TransformsConvention = .asStored,
                            imageSize: (width: Int, height: Int)? = nil, limits: ReadLimits = .default) throws -> TransformsFile {
        let data = try readJSONFile(path, limits: limits)
        let folder = (path as NSString).deletingLastPathComponent
        do {
            return try parse(data, convention: convention, imageSize: imageSize, folder: folder)
        } catch let error as CameraFileError { throw CameraFileError("\(path): \(error.reason)") }
    }

    public static func parse(_ data: Data, convention: TransformsConvention = .asStored,
                             imageSize: (width: Int, height: Int)? = nil, folder: String? = nil) throws -> TransformsFile {
        let root = try jsonObject(data)
        guard let frames = root["frames"] as? [Any], !frames.isEmpty else { throw CameraFileError("no `frames` array") }
        let fileScale = try optionalNumber(root, "scale") ?? 0.33
        let fileOffset = try optionalVector(root, "offset") ?? SIMD3(repeating: 0.5)
        var scale: Float = 1, offset = SIMD3<Float>(repeating: 0)
        if case let .instantNGP(s, o) = convention { scale = s ?? fileScale; offset = o ?? fileOffset }
        else { scale = fileScale; offset = fileOffset }
        var result = TransformsFile(frames: [], aabbScale: try optionalNumber(root, "aabb_scale"), scale: scale, offset: offset)
        for (index, item) in frames.enumerated() {
            guard let frame = item as? [String: Any] else { throw CameraFileError("frame \(index) is not an object") }
            do {
                result.frames.append(try parseFrame(frame, root: root, convention: convention, scale: scale, offset: offset,
                                                    imageSize: imageSize, folder: folder))
            } catch let error as CameraFileError { throw CameraFileError("frame \(index): \(error.reason)") }
        }
        return result
    }

    static func parseFrame(_ frame: [String: Any], root: [String: Any], convention: TransformsConvention, scale: Float,
                           offset: SIMD3<Float>, imageSize: (width: Int, height: Int)?, folder: String?) throws -> CameraFrame {
        // Per-frame intrinsics override the file's (both instant-ngp and nerfstudio allow it).
        func value(_ key: String) throws -> Float? { try optionalNumber(frame, key) ?? optionalNumber(root, key) }
        let filePath = frame["file_path"] as? String
        var width = try value("w").map { try imageDimension($0, "w") }, height = try value("h").map { try imageDimension($0, "h") }
        if width == nil || height == nil {
            if let imageSize { width = imageSize.width; height = imageSize.height }
            else if let filePath, let folder, let size = pngSize(folder: folder, filePath: filePath) { width = size.0; height = size.1 }
            else {
                throw CameraFileError("no `w`/`h` and the image size could not be read from \(filePath ?? "the frame") "
                                      + "(give the size: imageSize:, or vkk render --resolution)")
            }
        }
        guard let w = width, let h = height, w > 0, h > 0, w <= 1 << 16, h <= 1 << 16 else {
            throw CameraFileError("image size \(width ?? 0)×\(height ?? 0) is not within 1…65536 × 1…65536")
        }
        var fx = try value("fl_x"), fy = try value("fl_y")
        if fx == nil, let angle = try value("camera_angle_x") { fx = Float(w) / 2 / tanf(angle / 2) }
        if fy == nil, let angle = try value("camera_angle_y") { fy = Float(h) / 2 / tanf(angle / 2) }
        guard let focalX = fx ?? fy, let focalY = fy ?? fx, focalX.isFinite, focalY.isFinite, focalX > 0, focalY > 0 else {
            throw CameraFileError("no positive focal length (fl_x / fl_y / camera_angle_x)")
        }
        let cx = try value("cx") ?? Float(w) / 2, cy = try value("cy") ?? Float(h) / 2
        guard let rows = frame["transform_matrix"] as? [Any] else { throw CameraFileError("no `transform_matrix`") }
        let matrix = try matrixRows(rows)
        var pose = RigidTransform(rows: matrix)
        if let problem = pose.degeneracy { throw CameraFileError("transform_matrix \(problem)") }
        if case .instantNGP = convention { pose = ngpPose(pose, scale: scale, offset: offset) }
        if let problem = pose.degeneracy { throw CameraFileError("transform_matrix in instant-ngp's world (scale \(scale)) \(problem)") }
        // Lens models other than (radial-tangential) OpenCV would need their own ray generation.
        if let model = (frame["camera_model"] ?? root["camera_model"]) as? String, !["OPENCV", "PINHOLE", "SIMPLE_PINHOLE"].contains(model) {
            throw CameraFileError("camera_model \(model) is not supported (OPENCV and pinhole only)")
        }
        if let fisheye = (frame["is_fisheye"] ?? root["is_fisheye"]) as? Bool, fisheye {
            throw CameraFileError("is_fisheye cameras are not supported (OpenCV radial-tangential only)")
        }
        let distortion = CameraDistortion(k1: try value("k1") ?? 0, k2: try value("k2") ?? 0, k3: try value("k3") ?? 0,
                                          k4: try value("k4") ?? 0, p1: try value("p1") ?? 0, p2: try value("p2") ?? 0)
        return CameraFrame(camera: Camera(width: w, height: h, focalX: focalX, focalY: focalY, principalX: cx, principalY: cy,
                                          cameraToWorld: pose, distortion: distortion),
                           filePath: filePath)
    }

    /// instant-ngp's world change: p ↦ cycle(p · scale + offset), cycle(x, y, z) = (y, z, x), applied to
    /// the position and (without scale or offset) to the camera axes.
    public static func ngpPose(_ pose: RigidTransform, scale: Float, offset: SIMD3<Float>) -> RigidTransform {
        func cycle(_ v: SIMD3<Float>) -> SIMD3<Float> { SIMD3(v.y, v.z, v.x) }
        return RigidTransform(rotation: (cycle(pose.rotation.0), cycle(pose.rotation.1), cycle(pose.rotation.2)),
                              translation: cycle(pose.translation * scale + offset))
    }

    /// Width and height from a PNG's IHDR chunk (bytes 16..<24), trying `filePath` and `filePath.png`
    /// (regular files only: a FIFO or device named by `file_path` is skipped, never opened blocking).
    static func pngSize(folder: String, filePath: String) -> (Int, Int)? {
        for candidate in [filePath, filePath + ".png"] {
            let path = (folder as NSString).appendingPathComponent(candidate)
            guard let header = try? readRegularFilePrefix(path, count: 24),
                  header.count == 24, header[0..<8] == [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] else { continue }
            func be(_ i: Int) -> Int { Int(header[i]) << 24 | Int(header[i + 1]) << 16 | Int(header[i + 2]) << 8 | Int(header[i + 3]) }
            return (be(16), be(20))
        }
        return nil
    }
}

/// A nerfstudio `camera_path.json` (render cameras written by the viewer or `ns-render`).
public struct CameraPathFile: Sendable {
    public var cameras: [Camera]
    /// Per-frame viewer aspect ratios as stored (the render size decides the image shape).
    public var aspects: [Float]
    public var fps: Float?
    public var seconds: Float?

    public static func read(contentsOf path: String, limits: ReadLimits = .default) throws -> CameraPathFile {
        let data = try readJSONFile(path, limits: limits)
        do { return try parse(data) } catch let error as CameraFileError { throw CameraFileError("\(path): \(error.reason)") }
    }

    /// `camera_to_world` is a row-major 4×4 (16 numbers; 12 = the top three rows also accepted), OpenGL
    /// convention; `fov` is the vertical field of view in degrees, so f = render_height / 2 / tan(fov / 2)
    /// for both axes (square pixels), principal point at the image centre.
    public static func parse(_ data: Data) throws -> CameraPathFile {
        let root = try jsonObject(data)
        if let type = root["camera_type"] as? String, type != "perspective" {
            throw CameraFileError("camera_type \(type) is not supported (perspective only)")
        }
        guard let path = root["camera_path"] as? [Any], !path.isEmpty else { throw CameraFileError("no `camera_path` array") }
        guard let heightValue = try optionalNumber(root, "render_height"), heightValue >= 1, heightValue <= 65536 else {
            throw CameraFileError("no positive `render_height`")
        }
        let height = Int(heightValue.rounded())
        let widthValue = try optionalNumber(root, "render_width").map { try imageDimension($0, "render_width") }
        var result = CameraPathFile(cameras: [], aspects: [], fps: try optionalNumber(root, "fps"), seconds: try optionalNumber(root, "seconds"))
        for (index, item) in path.enumerated() {
            guard let entry = item as? [String: Any] else { throw CameraFileError("camera_path[\(index)] is not an object") }
            guard let flat = entry["camera_to_world"] as? [Any], flat.count == 16 || flat.count == 12 else {
                throw CameraFileError("camera_path[\(index)].camera_to_world is not 16 numbers")
            }
            let numbers = try flat.map { try number($0, "camera_path[\(index)].camera_to_world") }
            let rows = (0..<3).map { r in Array(numbers[(4 * r)..<(4 * r + 4)]) }
            guard let fov = try optionalNumber(entry, "fov"), fov > 0, fov < 180 else {
                throw CameraFileError("camera_path[\(index)].fov is not in (0, 180) degrees")
            }
            let aspect = try optionalNumber(entry, "aspect") ?? 1
            guard aspect > 0 else { throw CameraFileError("camera_path[\(index)].aspect is not positive") }
            let width: Int
            if let widthValue { width = widthValue } else {
                // height × aspect from the file: checked before it becomes an Int (a huge aspect must not trap).
                guard let fromAspect = wholeNumber((Double(height) * Double(aspect)).rounded(), in: 1...65536) else {
                    throw CameraFileError("camera_path[\(index)].aspect \(aspect) × render_height \(height) is not a width within 1…65536")
                }
                width = fromAspect
            }
            let focal = Float(height) / 2 / tanf(fov * .pi / 360)
            let pose = RigidTransform(rows: rows)
            if let problem = pose.degeneracy { throw CameraFileError("camera_path[\(index)].camera_to_world \(problem)") }
            result.cameras.append(Camera(width: width, height: height, focalX: focal, focalY: focal, cameraToWorld: pose))
            result.aspects.append(aspect)
        }
        return result
    }
}

/// The cameras of a `transforms.json` (see ``TransformsFile``); `imageSize` is used only when the file
/// gives no size (NeRF-synthetic) and decides the focal length from `camera_angle_x`.
public func loadTransformsCameras(_ path: String, convention: TransformsConvention = .asStored,
                                  imageSize: (width: Int, height: Int)? = nil) throws -> [Camera] {
    try TransformsFile.read(contentsOf: path, convention: convention, imageSize: imageSize).cameras
}

/// The cameras of a nerfstudio `camera_path.json` (see ``CameraPathFile``).
public func loadCameraPath(_ path: String) throws -> [Camera] {
    try CameraPathFile.read(contentsOf: path).cameras
}

// MARK: JSON helpers

/// A camera file's bytes (``readJSONDocument(_:limits:)``), failures as camera-file errors.
private func readJSONFile(_ path: String, limits: ReadLimits) throws -> Data {
    do { return try readJSONDocument(path, limits: limits) } catch let error as JSONDocumentError { throw CameraFileError(error.reason) }
}

/// An image size from a JSON number: whole and within 1…65536, else an error naming the key (`Int(x)`
/// would trap on 1e30 or ∞).
private func imageDimension(_ value: Float, _ key: String) throws -> Int {
    guard let whole = wholeNumber(Double(value), in: 1...65536) else {
        throw CameraFileError("\(key) = \(value) is not a whole number of pixels within 1…65536")
    }
    return whole
}

private func jsonObject(_ data: Data) throws -> [String: Any] {
    let object: Any
    do { object = try JSONSerialization.jsonObject(with: data) } catch { throw CameraFileError("not valid JSON (\(jsonMessage(error)))") }
    guard let root = object as? [String: Any] else { throw CameraFileError("the top level is not a JSON object") }
    return root
}

private func number(_ value: Any, _ name: String) throws -> Float {
    guard let number = value as? NSNumber else {
        throw CameraFileError("\(name) is not a number")
    }
    let result = number.floatValue
    guard result.isFinite else { throw CameraFileError("\(name) is not finite") }
    return result
}

private func optionalNumber(_ object: [String: Any], _ key: String) throws -> Float? {
    guard let value = object[key], !(value is NSNull) else { return nil }
    return try number(value, key)
}

private func optionalVector(_ object: [String: Any], _ key: String) throws -> SIMD3<Float>? {
    guard let value = object[key] else { return nil }
    guard let items = value as? [Any], items.count == 3 else { throw CameraFileError("\(key) is not 3 numbers") }
    let numbers = try items.map { try number($0, key) }
    return SIMD3(numbers[0], numbers[1], numbers[2])
}

private func matrixRows(_ rows: [Any]) throws -> [[Float]] {
    guard rows.count == 4 || rows.count == 3 else { throw CameraFileError("transform_matrix has \(rows.count) rows, expected 4") }
    return try rows.prefix(3).enumerated().map { index, row in
        guard let values = row as? [Any], values.count == 4 else { throw CameraFileError("transform_matrix row \(index) is not 4 numbers") }
        return try values.map { try number($0, "transform_matrix") }
    }
}

/// A JSON parse error as one line, without Foundation's `NSCocoaErrorDomain` wrapping.
private func jsonMessage(_ error: any Error) -> String {
    let description = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
    return description ?? "unreadable JSON"
}
