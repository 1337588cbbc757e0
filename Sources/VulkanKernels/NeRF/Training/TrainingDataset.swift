import Foundation
import Glibc

/// Which views of a capture are held out for evaluation.
public enum HoldoutSplit: Sendable, Equatable, CustomStringConvertible {
    /// Every view trains.
    case none
    /// Views whose index (in file order, counting every frame of the file) is a multiple of N are held
    /// out (`--holdout every:8`, the LLFF convention: views 0, 8, 16, …).
    case every(Int)

    /// Parses `none` or `every:N` (N ≥ 2).
    public init(parsing text: String) throws {
        if text == "none" { self = .none; return }
        let parts = text.split(separator: ":")
        guard parts.count == 2, parts[0] == "every", let n = Int(parts[1]), n >= 2 else {
            throw DatasetError("holdout \"\(text)\" (expected none or every:N with N ≥ 2)")
        }
        self = .every(n)
    }

    public func isHeldOut(_ index: Int) -> Bool {
        switch self {
        case .none: false
        case .every(let n): index % n == 0
        }
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .every(let n): "every:\(n)"
        }
    }
}

/// A posed view ready for training: its image (downscaled) and the camera that matches it.
public struct TrainingView: Sendable {
    /// The frame's name as the file gives it (`file_path`), for messages.
    public var name: String
    /// Index of the frame in its `transforms.json`.
    public var frameIndex: Int
    public var camera: Camera
    public var image: TrainingImage
}

/// A capture loaded for training: training and held-out views, the box the field lives in, and the frames
/// that could not be used.
///
/// World coordinates are instant-ngp's (``TransformsConvention/instantNGP(scale:offset:)``: the scene in
/// the unit cube around (½, ½, ½)) when loaded from a file, so that the trained field, its density grid and
/// a written snapshot share instant-ngp's frame.
public struct TrainingDataset: Sendable {
    public var training: [TrainingView]
    public var heldOut: [TrainingView]
    /// The cube instant-ngp's density grid cascade 0 covers (the unit cube for instant-ngp worlds).
    public var unitCube: AABB
    /// instant-ngp's `aabb_scale`: the field's box is the unit cube scaled by it around its centre.
    public var aabbScale: Float
    /// Frames whose image was missing or unreadable: (name, reason), each once.
    public var skippedFrames: [(name: String, reason: String)]

    /// The field's bounding box: `unitCube` scaled by `aabbScale` about its centre.
    public var bounds: AABB {
        let half = unitCube.size * aabbScale / 2
        return AABB(lower: unitCube.center - half, upper: unitCube.center + half)
    }

    /// A dataset from views already in memory (tests, generated scenes). Throws when there is no training
    /// view, an image does not match its camera's size, or `aabbScale` is not in [1, 128].
    public init(training: [TrainingView], heldOut: [TrainingView] = [], unitCube: AABB = AABB(lower: SIMD3(repeating: 0), upper: SIMD3(repeating: 1)),
                aabbScale: Float = 1, skippedFrames: [(name: String, reason: String)] = []) throws {
        guard !training.isEmpty else { throw DatasetError("no training views") }
        for view in training + heldOut where view.image.width != view.camera.width || view.image.height != view.camera.height {
            throw DatasetError("\(view.name): image is \(view.image.width)×\(view.image.height) but its camera is \(view.camera.width)×\(view.camera.height)")
        }
        guard aabbScale.isFinite, aabbScale >= 1, aabbScale <= 128 else { throw DatasetError("aabb_scale \(aabbScale) (must be in [1, 128])") }
        let size = unitCube.size
        guard size.x > 0, size.x == size.y, size.y == size.z, size.x.isFinite else { throw DatasetError("unit cube \(unitCube) is not a cube") }
        self.training = training
        self.heldOut = heldOut
        self.unitCube = unitCube
        self.aabbScale = aabbScale
        self.skippedFrames = skippedFrames
    }

    /// Loads a `transforms.json` capture (NeRF-synthetic, instant-ngp or nerfstudio conventions) and its
    /// images (PNG or JPEG; a `file_path` without an extension tries `.png`, `.jpg`, `.jpeg`), reduces each
    /// image by `downscale` (box filter, premultiplied alpha) and splits off held-out views.
    ///
    /// A frame whose image is missing or unreadable is skipped and listed once in ``skippedFrames``; an
    /// image whose size disagrees with the file's intrinsics, a non-finite pose, an empty frame list or a
    /// capture with no usable training view throws ``DatasetError``.
    /// `imageFolder` replaces the transforms file's folder as the base of the frames' image paths.
    public static func load(transforms path: String, downscale: Int = 1, holdout: HoldoutSplit = .none,
                            imageFolder: String? = nil) throws -> TrainingDataset {
        guard downscale >= 1, downscale <= 64 else { throw DatasetError("downscale \(downscale) (must be 1…64)") }
        let folder = imageFolder ?? (path as NSString).deletingLastPathComponent
        // Without w/h keys the size comes from the first PNG's header; the images are checked against it.
        let file: TransformsFile
        do { file = try TransformsFile.read(contentsOf: path, convention: .instantNGP()) } catch {
            throw DatasetError("\(error)")
        }
        var training: [TrainingView] = [], heldOut: [TrainingView] = [], skipped: [(String, String)] = []
        for (index, frame) in file.frames.enumerated() {
            let name = frame.filePath ?? "frame \(index)"
            let camera = frame.camera
            let pose = camera.cameraToWorld
            let poseValues = [pose.rotation.0, pose.rotation.1, pose.rotation.2, pose.translation].flatMap { [$0.x, $0.y, $0.z] }
            guard poseValues.allSatisfy(\.isFinite) else { throw DatasetError("\(path): \(name): pose is not finite") }
            guard let filePath = frame.filePath else { skipped.append((name, "no file_path")); continue }
            guard let imagePath = resolveImage(folder: folder, filePath: filePath) else {
                skipped.append((name, "image not found")); continue
            }
            let image: TrainingImage
            do { image = try TrainingImageFile.read(imagePath) } catch let error as DatasetError {
                skipped.append((name, error.reason)); continue
            }
            guard image.width == camera.width, image.height == camera.height else {
                throw DatasetError("\(imagePath): image is \(image.width)×\(image.height) but \(path) says \(camera.width)×\(camera.height)")
            }
            let view = TrainingView(name: name, frameIndex: index, camera: downscaled(camera, by: downscale),
                                    image: try image.downscaled(by: downscale))
            if holdout.isHeldOut(index) { heldOut.append(view) } else { training.append(view) }
        }
        guard !training.isEmpty else {
            let reasons = skipped.prefix(3).map { "\($0.0): \($0.1)" }.joined(separator: "; ")
            throw DatasetError("\(path): no usable training image (\(skipped.count) of \(file.frames.count) frames skipped\(reasons.isEmpty ? "" : ": " + reasons))")
        }
        let aabbScale = file.aabbScale ?? 1
        guard aabbScale >= 1, aabbScale <= 128 else { throw DatasetError("\(path): aabb_scale \(aabbScale) (instant-ngp allows 1…128)") }
        return try TrainingDataset(training: training, heldOut: heldOut, aabbScale: aabbScale, skippedFrames: skipped)
    }

    /// The camera of an image reduced by `factor` with whole blocks only: focal lengths and principal
    /// point divide by the factor (pixel edges stay where they were), distortion and pose stay.
    public static func downscaled(_ camera: Camera, by factor: Int) -> Camera {
        guard factor > 1 else { return camera }
        let f = Float(factor)
        return Camera(width: camera.width / factor, height: camera.height / factor, focalX: camera.focalX / f, focalY: camera.focalY / f,
                      principalX: camera.principalX / f, principalY: camera.principalY / f,
                      cameraToWorld: camera.cameraToWorld, distortion: camera.distortion)
    }

    static func resolveImage(folder: String, filePath: String) -> String? {
        let base = (folder as NSString).appendingPathComponent(filePath)
        for candidate in [base, base + ".png", base + ".jpg", base + ".jpeg", base + ".JPG", base + ".PNG"] {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue { return candidate }
        }
        return nil
    }

    /// Total training pixels.
    public var trainingPixelCount: Int { training.reduce(0) { $0 + $1.image.width * $1.image.height } }
}
