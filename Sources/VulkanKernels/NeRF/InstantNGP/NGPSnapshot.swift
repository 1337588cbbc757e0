import Foundation

/// Why an instant-ngp snapshot could not be read.
public struct SnapshotError: Error, CustomStringConvertible, Equatable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "instant-ngp snapshot: \(reason)" }
}

/// An instant-ngp NeRF snapshot (`.msgpack`, or `.ingp` = the same document deflate-compressed).
///
/// The document is a MessagePack map: instant-ngp's network config at the top level (`encoding`,
/// `network`, `dir_encoding`, `rgb_network`, `loss`, `optimizer`, …) and the trained state under
/// `snapshot`: `params_binary` (the flat fp16 parameters, `params_type` "__half", `n_params`),
/// `density_grid_binary` (fp16, `density_grid_size`³ cells per cascade, Morton order), `aabb`
/// ({min, max}), `nerf.aabb_scale`, `version`, `mode`, camera and training state. Keys this type does not
/// interpret are kept in ``document`` and written back unchanged.
public struct NGPSnapshot: Sendable {
    public var document: MessagePack
    public var configuration: HashGridConfiguration
    public var parameters: [Float16]
    public var aabb: AABB
    public var aabbScale: Float
    public var densityGrid: NGPDensityGrid?

    // MARK: Reading

    /// Reads a snapshot file (a regular file within `limits`; see ``ReadLimits``); compression is detected
    /// from the content (gzip or zlib header).
    public static func read(contentsOf path: String, limits: ReadLimits = .default) throws -> NGPSnapshot {
        let bytes: [UInt8]
        do { bytes = try readFile(path, limits: limits) } catch let error as DataFileError { throw SnapshotError("\(error)") }
        do { return try decode(bytes, limits: limits) } catch let error as SnapshotError {
            throw SnapshotError("\(path): \(error.reason)")
        }
    }

    /// Decodes snapshot bytes (plain or compressed MessagePack). Every malformed or truncated input throws;
    /// decompression stops at `limits.maxDecompressedBytes` and `limits.maxCompressionRatio`. Non-finite
    /// parameters or bounds are errors (a trained network has none); a NaN density-grid cell reads as empty.
    public static func decode(_ bytes: [UInt8], limits: ReadLimits = .default) throws -> NGPSnapshot {
        var plain = bytes
        if Zlib.looksCompressed(bytes) {
            do {
                plain = try Zlib.decompress(bytes, limit: limits.maxDecompressedBytes, maxRatio: limits.maxCompressionRatio)
            } catch { throw SnapshotError("\(error)") }
        }
        let document: MessagePack
        do { document = try MessagePack.decode(plain) } catch { throw SnapshotError("\(error)") }
        return try NGPSnapshot(document: document)
    }

    /// Interprets a decoded document.
    public init(document: MessagePack) throws {
        guard case .map = document else { throw SnapshotError("the document is not a map") }
        guard let snapshot = document["snapshot"], case .map = snapshot else { throw SnapshotError("no `snapshot` map") }
        if let mode = snapshot["mode"]?.stringValue, mode.lowercased() != "nerf" {
            throw SnapshotError("mode is \(mode), only NeRF snapshots hold a radiance field")
        }
        let aabbScale = Float(snapshot["nerf"]?["aabb_scale"]?.doubleValue ?? 1)
        guard aabbScale.isFinite, aabbScale >= 1, aabbScale <= 1024 else { throw SnapshotError("nerf.aabb_scale = \(aabbScale)") }
        self.document = document
        self.aabbScale = aabbScale
        configuration = try Self.configuration(from: document, aabbScale: aabbScale)
        do { try configuration.validate() } catch { throw SnapshotError("unsupported network: \(error)") }

        // Parameters.
        let type = snapshot["params_type"]?.stringValue ?? "__half"
        guard let raw = snapshot["params_binary"]?.binaryBytes else { throw SnapshotError("no `snapshot.params_binary`") }
        let expected = configuration.parameterCount
        if let declared = snapshot["n_params"]?.intValue, declared != expected {
            throw SnapshotError("n_params = \(declared) but the network config needs \(expected)")
        }
        switch type {
        case "__half":
            guard raw.count == expected * 2 else { throw SnapshotError("params_binary has \(raw.count) bytes, expected \(expected * 2)") }
            parameters = Self.halves(raw)
        case "float":
            guard raw.count == expected * 4 else { throw SnapshotError("params_binary has \(raw.count) bytes, expected \(expected * 4)") }
            parameters = stride(from: 0, to: raw.count, by: 4).map { i in
                Float16(Float(bitPattern: UInt32(raw[i]) | UInt32(raw[i + 1]) << 8 | UInt32(raw[i + 2]) << 16 | UInt32(raw[i + 3]) << 24))
            }
        default: throw SnapshotError("params_type \(type) (expected __half or float)")
        }
        if let bad = parameters.firstIndex(where: { !$0.isFinite }) { throw SnapshotError("parameter \(bad) is not finite") }

        // Bounding box.
        if let box = snapshot["aabb"] {
            guard let lower = Self.vector(box["min"]), let upper = Self.vector(box["max"]),
                  all(lower .< upper) else { throw SnapshotError("aabb is not {min: [x, y, z], max: [x, y, z]} with min < max") }
            aabb = AABB(lower: lower, upper: upper)
        } else {
            aabb = AABB(lower: SIMD3(repeating: 0.5 - aabbScale / 2), upper: SIMD3(repeating: 0.5 + aabbScale / 2))
        }

        // Occupancy grid.
        if let grid = snapshot["density_grid_binary"]?.binaryBytes {
            let resolution = snapshot["density_grid_size"]?.intValue ?? 128
            guard resolution > 0, resolution <= 1024 else { throw SnapshotError("density_grid_size = \(resolution)") }
            let cells = resolution * resolution * resolution
            guard grid.count % 2 == 0, grid.count / 2 % cells == 0, grid.count > 0 else {
                throw SnapshotError("density_grid_binary has \(grid.count) bytes, not a whole number of \(resolution)³ fp16 grids")
            }
            do {
                densityGrid = try NGPDensityGrid(resolution: resolution, cascades: grid.count / 2 / cells, values: Self.halves(grid))
            } catch { throw SnapshotError("\(error)") }
        } else {
            densityGrid = nil
        }
    }

    /// The field this snapshot describes.
    public func makeField(name: String = "hashgrid") throws -> HashGridField {
        try HashGridField(name: name, configuration: configuration, parameters: parameters, bounds: aabb, densityGrid: densityGrid)
    }

    // MARK: Writing

    /// A new snapshot document for `field`, in the layout instant-ngp writes (config at the top level,
    /// state under `snapshot`).
    public init(field: HashGridField, aabbScale: Float = 1) {
        let c = field.configuration
        func mlp(_ width: Int, _ layers: Int) -> MessagePack {
            .map([.init(.string("otype"), .string("FullyFusedMLP")), .init(.string("activation"), .string("ReLU")),
                  .init(.string("output_activation"), .string("None")), .init(.string("n_neurons"), .uint(UInt64(width))),
                  .init(.string("n_hidden_layers"), .uint(UInt64(layers)))])
        }
        func vector(_ v: SIMD3<Float>) -> MessagePack { .array([.float32(v.x), .float32(v.y), .float32(v.z)]) }
        let encoding: MessagePack = .map([
            .init(.string("otype"), .string("HashGrid")), .init(.string("n_levels"), .uint(UInt64(c.levels))),
            .init(.string("n_features_per_level"), .uint(UInt64(c.featuresPerLevel))),
            .init(.string("log2_hashmap_size"), .uint(UInt64(c.log2TableSize))),
            .init(.string("base_resolution"), .uint(UInt64(c.baseResolution))),
            .init(.string("per_level_scale"), .float32(c.perLevelScale)),
        ])
        let directionEncoding: MessagePack = .map([
            .init(.string("otype"), .string("Composite")),
            .init(.string("nested"), .array([
                .map([.init(.string("n_dims_to_encode"), .uint(3)), .init(.string("otype"), .string("SphericalHarmonics")),
                      .init(.string("degree"), .uint(4))]),
                .map([.init(.string("otype"), .string("Identity"))]),
            ])),
        ])
        let state: MessagePack = .map([
            .init(.string("version"), .uint(1)),
            .init(.string("mode"), .string("nerf")),
            .init(.string("n_params"), .uint(UInt64(field.parameters.count))),
            .init(.string("params_type"), .string("__half")),
            .init(.string("params_binary"), .binary([])),
            .init(.string("aabb"), .map([.init(.string("min"), vector(field.bounds.lower)), .init(.string("max"), vector(field.bounds.upper))])),
            .init(.string("nerf"), .map([.init(.string("aabb_scale"), .float32(aabbScale))])),
            .init(.string("training_step"), .uint(0)),
        ])
        document = .map([
            .init(.string("loss"), .map([.init(.string("otype"), .string("Huber"))])),
            .init(.string("encoding"), encoding),
            .init(.string("network"), mlp(c.densityWidth, c.densityHiddenLayers)),
            .init(.string("dir_encoding"), directionEncoding),
            .init(.string("rgb_network"), mlp(c.colorWidth, c.colorHiddenLayers)),
            .init(.string("snapshot"), state),
        ])
        configuration = c
        parameters = field.parameters
        aabb = field.bounds
        self.aabbScale = aabbScale
        densityGrid = field.densityGrid
    }

    /// The document with this value's parameters, aabb and density grid written into it.
    public var updatedDocument: MessagePack {
        var snapshot = document["snapshot"] ?? .map([])
        var params: [UInt8] = []
        params.reserveCapacity(parameters.count * 2)
        for p in parameters { params.append(UInt8(p.bitPattern & 0xff)); params.append(UInt8(p.bitPattern >> 8)) }
        snapshot = snapshot.setting("params_binary", snapshot["params_binary"].binaryKeepingKind(params))
        snapshot = snapshot.setting("params_type", .string("__half"))
        snapshot = snapshot.setting("n_params", .uint(UInt64(parameters.count)))
        func vector(_ v: SIMD3<Float>) -> MessagePack { .array([.float32(v.x), .float32(v.y), .float32(v.z)]) }
        snapshot = snapshot.setting("aabb", .map([.init(.string("min"), vector(aabb.lower)), .init(.string("max"), vector(aabb.upper))]))
        if let grid = densityGrid {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(grid.values.count * 2)
            for v in grid.values { bytes.append(UInt8(v.bitPattern & 0xff)); bytes.append(UInt8(v.bitPattern >> 8)) }
            snapshot = snapshot.setting("density_grid_size", .uint(UInt64(grid.resolution)))
            snapshot = snapshot.setting("density_grid_binary", snapshot["density_grid_binary"].binaryKeepingKind(bytes))
        }
        return document.setting("snapshot", snapshot)
    }

    /// The snapshot's bytes: plain MessagePack, or gzip-compressed (`.ingp`) when `compressed`.
    public func encoded(compressed: Bool) throws -> [UInt8] {
        let plain = updatedDocument.encoded()
        return compressed ? try Zlib.compress(plain) : plain
    }

    /// Writes the snapshot; a path ending in `.ingp` is compressed, anything else is plain MessagePack.
    public func write(to path: String) throws {
        let bytes = try encoded(compressed: path.hasSuffix(".ingp"))
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { throw SnapshotError("cannot write \(path)") }
    }

    // MARK: Helpers

    static func configuration(from document: MessagePack, aabbScale: Float) throws -> HashGridConfiguration {
        guard let encoding = document["encoding"] else { throw SnapshotError("no `encoding` config") }
        let otype = encoding["otype"]?.stringValue ?? ""
        guard otype.lowercased() == "hashgrid" || (otype.lowercased() == "grid" && (encoding["type"]?.stringValue ?? "Hash") == "Hash") else {
            throw SnapshotError("encoding.otype is \(otype.isEmpty ? "missing" : otype), only HashGrid is supported")
        }
        if let interpolation = encoding["interpolation"]?.stringValue, interpolation != "Linear" {
            throw SnapshotError("encoding.interpolation \(interpolation) is not supported (Linear only)")
        }
        func int(_ value: MessagePack?, _ name: String, default fallback: Int) throws -> Int {
            guard let value else { return fallback }
            guard let v = value.intValue else { throw SnapshotError("\(name) is not an integer") }
            return v
        }
        let featuresPerLevel = try int(encoding["n_features_per_level"], "encoding.n_features_per_level", default: 2)
        var levels = try int(encoding["n_levels"], "encoding.n_levels", default: 16)
        if let total = encoding["n_features"]?.intValue, total > 0, featuresPerLevel > 0 { levels = total / featuresPerLevel }
        guard let direction = document["dir_encoding"] else { throw SnapshotError("no `dir_encoding` config") }
        let nested = direction["otype"]?.stringValue == "Composite" ? (direction["nested"].flatMap { if case .array(let a) = $0 { a } else { nil } } ?? []) : [direction]
        guard let sh = nested.first, sh["otype"]?.stringValue == "SphericalHarmonics", (sh["degree"]?.intValue ?? 4) == 4 else {
            throw SnapshotError("dir_encoding must be SphericalHarmonics of degree 4")
        }
        let density = document["network"], color = document["rgb_network"]
        for (name, network) in [("network", density), ("rgb_network", color)] {
            guard let network else { throw SnapshotError("no `\(name)` config") }
            if let activation = network["activation"]?.stringValue, activation != "ReLU" { throw SnapshotError("\(name).activation \(activation) (ReLU only)") }
            if let output = network["output_activation"]?.stringValue, output != "None" { throw SnapshotError("\(name).output_activation \(output) (None only)") }
        }
        var perLevelScale: Float? = nil
        if let value = encoding["per_level_scale"] {
            guard let scale = value.doubleValue else { throw SnapshotError("encoding.per_level_scale is not a number") }
            perLevelScale = Float(scale)
        }
        return HashGridConfiguration(
            levels: levels, featuresPerLevel: featuresPerLevel,
            log2TableSize: try int(encoding["log2_hashmap_size"], "encoding.log2_hashmap_size", default: 19),
            baseResolution: try int(encoding["base_resolution"], "encoding.base_resolution", default: 16),
            perLevelScale: perLevelScale,
            densityWidth: try int(density?["n_neurons"], "network.n_neurons", default: 64),
            densityHiddenLayers: try int(density?["n_hidden_layers"], "network.n_hidden_layers", default: 1),
            colorWidth: try int(color?["n_neurons"], "rgb_network.n_neurons", default: 64),
            colorHiddenLayers: try int(color?["n_hidden_layers"], "rgb_network.n_hidden_layers", default: 2),
            aabbScale: aabbScale)
    }

    static func halves(_ raw: [UInt8]) -> [Float16] {
        stride(from: 0, to: raw.count - 1, by: 2).map { Float16(bitPattern: UInt16(raw[$0]) | UInt16(raw[$0 + 1]) << 8) }
    }

    static func vector(_ value: MessagePack?) -> SIMD3<Float>? {
        guard case .array(let items)? = value, items.count == 3 else { return nil }
        let numbers = items.compactMap { $0.doubleValue.map(Float.init) }
        guard numbers.count == 3, numbers.allSatisfy(\.isFinite) else { return nil }
        return SIMD3(numbers[0], numbers[1], numbers[2])
    }
}

extension MessagePack {
    /// The bytes of a binary value; nlohmann::json writes binary values that carry a subtype as ext.
    var binaryBytes: [UInt8]? {
        switch self {
        case .binary(let bytes): bytes
        case .ext(_, let bytes): bytes
        default: nil
        }
    }

    /// A copy of this map with `key` set to `value` (replaced in place, or appended).
    public func setting(_ key: String, _ value: MessagePack) -> MessagePack {
        guard case .map(var pairs) = self else { return .map([.init(.string(key), value)]) }
        if let index = pairs.firstIndex(where: { $0.key == .string(key) }) { pairs[index].value = value }
        else { pairs.append(.init(.string(key), value)) }
        return .map(pairs)
    }
}

extension Optional where Wrapped == MessagePack {
    /// New bytes in the same kind of value as the old one (ext keeps its type), binary otherwise.
    func binaryKeepingKind(_ bytes: [UInt8]) -> MessagePack {
        if case .ext(let type, _)? = self { return .ext(type: type, data: bytes) }
        return .binary(bytes)
    }
}

extension HashGridField {
    /// Loads an instant-ngp snapshot (`.msgpack` or `.ingp`) as a field, with its aabb and density grid.
    public static func load(snapshot path: String, name: String? = nil) throws -> HashGridField {
        let snapshot = try NGPSnapshot.read(contentsOf: path)
        let base = (path as NSString).lastPathComponent
        return try snapshot.makeField(name: name ?? base)
    }
}
