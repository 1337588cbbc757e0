import FoundationEssentials
import Synchronization

/// Finds radiance fields and camera paths by name or file, for `vkk render` and apps.
///
/// Built-in scene names resolve here; other families plug their file formats in with
/// ``register(fieldExtension:_:)`` (e.g. instant-ngp snapshots `.msgpack`/`.ingp`) and
/// ``register(cameraLoader:)`` (e.g. `transforms.json`, nerfstudio `camera_path.json`).
public enum FieldCatalog {
    public typealias FieldLoader = @Sendable (_ path: String) throws -> RadianceField
    /// Returns the cameras a file describes, or nil when the file is not this loader's format. Width and
    /// height, when given, override the file's resolution.
    public typealias CameraLoader = @Sendable (_ path: String, _ width: Int?, _ height: Int?) throws -> [Camera]?

    private struct Registry {
        /// instant-ngp snapshots (plain and zlib-compressed msgpack) are known from the start.
        var fieldLoaders: [String: FieldLoader] = [
            "msgpack": { try HashGridField.load(snapshot: $0) },
            "ingp": { try HashGridField.load(snapshot: $0) },
        ]
        /// nerfstudio camera_path.json, then instant-ngp / nerfstudio transforms.json.
        var cameraLoaders: [CameraLoader] = [FieldCatalog.jsonCameras]
    }

    /// Cameras of a `camera_path.json` (it has a "camera_path" key) or a `transforms.json` ("frames"),
    /// resized to `width`×`height` when given (intrinsics scaled with the image).
    @Sendable static func jsonCameras(_ path: String, _ width: Int?, _ height: Int?) throws -> [Camera]? {
        guard path.lowercased().hasSuffix(".json") else { return nil }
        // A regular file of at most ReadLimits.maxHeaderBytes (never a blocking read of a FIFO; no raw Foundation error).
        var limits = ReadLimits.default
        limits.maxFileBytes = limits.maxHeaderBytes
        let text: String
        do { text = String(decoding: try readRegularFile(path, limits: limits), as: UTF8.self) } catch {
            throw CameraFileError("\(error)".replacingOccurrences(of: "ReadLimits.maxFileBytes", with: "ReadLimits.maxHeaderBytes"))
        }
        let cameras: [Camera]
        let requested = width.flatMap { w in height.map { (width: w, height: $0) } }
        if text.contains("\"camera_path\"") { cameras = try loadCameraPath(path) }
        else if text.contains("\"frames\"") { cameras = try loadTransformsCameras(path, imageSize: requested) }
        else { return nil }
        guard let requested else { return cameras }
        return cameras.map { $0.resized(width: requested.width, height: requested.height) }
    }
    private static let registry = Mutex(Registry())

    /// Makes files ending in `.fieldExtension` loadable by ``field(named:)``.
    public static func register(fieldExtension: String, _ loader: @escaping FieldLoader) {
        registry.withLock { $0.fieldLoaders[fieldExtension.lowercased()] = loader }
    }

    /// Adds a camera-file loader, tried in registration order by ``cameras(fromFile:width:height:)``.
    public static func register(cameraLoader: @escaping CameraLoader) {
        registry.withLock { $0.cameraLoaders.append(cameraLoader) }
    }

    /// Names of the built-in scenes.
    public static var builtInNames: [String] { BuiltInScene.allCases.map(\.rawValue) + HashGridField.builtInSceneNames }

    /// A built-in scene by name, or a file through the loader registered for its extension.
    public static func field(named name: String) throws -> RadianceField {
        if let scene = BuiltInScene(rawValue: name) { return scene.makeField() }
        if HashGridField.builtInSceneNames.contains(name) { return try HashGridField.builtInScene(named: name) }
        let fileExtension = name.split(separator: ".").last.map { String($0).lowercased() } ?? ""
        guard name.contains("."), let loader = registry.withLock({ $0.fieldLoaders[fileExtension] }) else {
            let known = registry.withLock { $0.fieldLoaders.keys.sorted() }
            throw KernelError.invalidParameter(op: "scene", name: "name", value: "\(name): not a built-in scene (\(builtInNames.joined(separator: ", ")))"
                                               + (known.isEmpty ? " and no scene file formats are registered" : " nor a file of type \(known.joined(separator: ", "))"))
        }
        return try loader(name)
    }

    /// The cameras of a camera file, from the first registered loader that recognises it.
    public static func cameras(fromFile path: String, width: Int? = nil, height: Int? = nil) throws -> [Camera] {
        for loader in registry.withLock({ $0.cameraLoaders }) {
            if let cameras = try loader(path, width, height) { return cameras }
        }
        throw KernelError.invalidParameter(op: "cameras", name: "file", value: "\(path): no registered camera-file loader recognises it")
    }
}
