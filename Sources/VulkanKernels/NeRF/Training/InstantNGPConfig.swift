import Foundation

/// An instant-ngp network config file (`configs/nerf/*.json`, `vkk train --config`): the network shape
/// and the training settings the CPU trainer supports. Every key is checked: a key the trainer does not
/// know, or a value it does not implement, is an error naming the key (`optimizer.nested.otype: …`).
///
/// Supported: `loss.otype` Huber / L2; `optimizer` Ema (`decay`; the average kept in fp16) around
/// ExponentialDecay (`decay_start`, `decay_interval`, `decay_base`) around Adam (`learning_rate`, `beta1`,
/// `beta2`, `epsilon`, `l2_reg`), each wrapper optional; `encoding` HashGrid (`n_levels` or `n_features`,
/// `n_features_per_level`, `log2_hashmap_size`, `base_resolution`, `per_level_scale`, `interpolation`
/// Linear); `network` / `rgb_network` FullyFusedMLP or CutlassMLP with ReLU, no output activation,
/// `n_neurons`, `n_hidden_layers`; `dir_encoding` SphericalHarmonics degree 4 (alone or first in a
/// Composite with Identity). Absent keys take instant-ngp's / tiny-cuda-nn's defaults. `distortion_map`
/// and `envmap` configure instant-ngp features that are off unless asked for (learned lens distortion, an
/// environment map); they are accepted and not used.
public struct InstantNGPConfig: Sendable {
    public var configuration: HashGridConfiguration
    public var options: TrainingOptions

    /// Reads `path` and applies it on top of `options` for a capture of `aabbScale`.
    /// A `parent` key names a config (relative to this file's folder) that this one is merged onto, as
    /// instant-ngp's `merge_parent_network_config` does (JSON merge patch: objects merge key by key, other
    /// values replace, null deletes).
    public static func read(contentsOf path: String, aabbScale: Float, options: TrainingOptions = TrainingOptions()) throws -> InstantNGPConfig {
        let object = try resolved(path, depth: 0)
        do { return try InstantNGPConfig(json: object, aabbScale: aabbScale, options: options) } catch let error as ConfigError {
            throw ConfigError("\(path): \(error.reason)")
        }
    }

    static func resolved(_ path: String, depth: Int) throws -> [String: Any] {
        guard depth < 16 else { throw ConfigError("\(path): more than 16 nested parent configs") }
        // A regular file within ReadLimits' JSON size (a FIFO or device named here is refused, not read).
        let data: Data
        do { data = try readJSONDocument(path, limits: .default) } catch let error as JSONDocumentError {
            throw ConfigError("\(path): cannot read (\(error.reason))")
        }
        let child: [String: Any]
        do { child = try jsonObject(data) } catch let error as ConfigError { throw ConfigError("\(path): \(error.reason)") }
        guard let parentValue = child["parent"] else { return child }
        guard let parentName = parentValue as? String else { throw ConfigError("\(path): parent is not a string") }
        let parentPath = ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(parentName)
        return mergePatch(try resolved(parentPath, depth: depth + 1), child) as? [String: Any] ?? child
    }

    /// Parses a config held in memory (the fuzzers' entry point, ``FileFormat/instantNGPConfig``). A
    /// `parent` key is refused: it names a file beside the config, and there is no file here.
    public static func parse(_ data: Data, aabbScale: Float, options: TrainingOptions = TrainingOptions()) throws -> InstantNGPConfig {
        let object = try jsonObject(data)
        guard object["parent"] == nil else { throw ConfigError("parent: a config parsed from memory cannot name a parent file") }
        return try InstantNGPConfig(json: object, aabbScale: aabbScale, options: options)
    }

    static func jsonObject(_ data: Data) throws -> [String: Any] {
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: data) } catch { throw ConfigError("not JSON (\(error.localizedDescription))") }
        guard let object = parsed as? [String: Any] else { throw ConfigError("not a JSON object") }
        return object
    }

    /// RFC 7386 JSON merge patch of `patch` onto `target`.
    static func mergePatch(_ target: Any, _ patch: Any) -> Any {
        guard let patchMap = patch as? [String: Any] else { return patch }
        var result = target as? [String: Any] ?? [:]
        for (key, value) in patchMap {
            if value is NSNull { result[key] = nil } else { result[key] = mergePatch(result[key] ?? NSNull(), value) }
        }
        return result
    }

    /// Why a config cannot be used.
    public struct ConfigError: Error, CustomStringConvertible, Equatable {
        public let reason: String
        public init(_ reason: String) { self.reason = reason }
        public var description: String { "instant-ngp config: \(reason)" }
    }

    /// Interprets a parsed JSON object (`JSONSerialization` output).
    public init(json: Any, aabbScale: Float, options base: TrainingOptions = TrainingOptions()) throws {
        let root = try Self.object(json, "the config")
        for key in root.keys.sorted() where !["loss", "optimizer", "encoding", "network", "dir_encoding", "rgb_network",
                                              "distortion_map", "envmap", "parent"].contains(key) {
            throw ConfigError("\(key): unknown key")
        }
        var options = base
        if let loss = root["loss"] {
            let map = try Self.object(loss, "loss")
            try Self.allow(map, ["otype"], "loss")
            let name = try Self.string(map["otype"] ?? "L2", "loss.otype")
            switch name.lowercased() {
            case "huber": options.loss = .huber
            case "l2": options.loss = .l2
            default: throw ConfigError("loss.otype: \(name) is not supported (Huber or L2)")
            }
        }
        if let optimizer = root["optimizer"] { try Self.applyOptimizer(optimizer, path: "optimizer", to: &options, decayAllowed: true) }

        // The network: checked key by key here, then read with instant-ngp's defaults by the snapshot reader.
        var document: [MessagePackPair] = []
        if let encoding = root["encoding"] {
            let map = try Self.object(encoding, "encoding")
            try Self.allow(map, ["otype", "type", "n_levels", "n_features", "n_features_per_level", "log2_hashmap_size", "base_resolution",
                                 "per_level_scale", "interpolation"], "encoding")
            if let features = map["n_features_per_level"], ![1, 2, 4, 8].contains(try Self.integer(features, "encoding.n_features_per_level")) {
                throw ConfigError("encoding.n_features_per_level: \(features) is not supported (1, 2, 4 or 8)")
            }
            if let levels = map["n_levels"], !(1...32).contains(try Self.integer(levels, "encoding.n_levels")) {
                throw ConfigError("encoding.n_levels: \(levels) is not supported (1…32)")
            }
            if let size = map["log2_hashmap_size"], !(4...26).contains(try Self.integer(size, "encoding.log2_hashmap_size")) {
                throw ConfigError("encoding.log2_hashmap_size: \(size) is not supported (4…26)")
            }
            document.append(.init(.string("encoding"), try Self.messagePack(map, "encoding")))
        } else {
            throw ConfigError("encoding: missing (the hash grid's config)")
        }
        for name in ["network", "rgb_network"] {
            guard let value = root[name] else { throw ConfigError("\(name): missing") }
            let map = try Self.object(value, name)
            try Self.allow(map, ["otype", "activation", "output_activation", "n_neurons", "n_hidden_layers"], name)
            let otype = try Self.string(map["otype"] ?? "FullyFusedMLP", "\(name).otype")
            guard ["fullyfusedmlp", "cutlassmlp"].contains(otype.lowercased()) else {
                throw ConfigError("\(name).otype: \(otype) is not supported (FullyFusedMLP or CutlassMLP: an MLP without biases)")
            }
            guard let neurons = map["n_neurons"] else { throw ConfigError("\(name).n_neurons: missing") }
            guard [16, 32, 64, 128].contains(try Self.integer(neurons, "\(name).n_neurons")) else {
                throw ConfigError("\(name).n_neurons: \(neurons) is not supported (16, 32, 64 or 128)")
            }
            if let layers = map["n_hidden_layers"], !(1...8).contains(try Self.integer(layers, "\(name).n_hidden_layers")) {
                throw ConfigError("\(name).n_hidden_layers: \(layers) is not supported (1…8)")
            }
            document.append(.init(.string(name), try Self.messagePack(map, name)))
        }
        if let direction = root["dir_encoding"] {
            let map = try Self.object(direction, "dir_encoding")
            try Self.allow(map, ["otype", "nested", "degree", "n_dims_to_encode"], "dir_encoding")
            if let nested = map["nested"] {
                guard let items = nested as? [Any] else { throw ConfigError("dir_encoding.nested: not an array") }
                for (index, item) in items.enumerated() {
                    let entry = try Self.object(item, "dir_encoding.nested[\(index)]")
                    try Self.allow(entry, ["otype", "degree", "n_dims_to_encode"], "dir_encoding.nested[\(index)]")
                    let otype = try Self.string(entry["otype"] ?? "", "dir_encoding.nested[\(index)].otype")
                    if index > 0, otype != "Identity" {
                        throw ConfigError("dir_encoding.nested[\(index)].otype: \(otype) is not supported (only Identity after the SH)")
                    }
                }
            }
            document.append(.init(.string("dir_encoding"), try Self.messagePack(map, "dir_encoding")))
        } else {
            throw ConfigError("dir_encoding: missing")
        }
        do {
            configuration = try NGPSnapshot.configuration(from: .map(document), aabbScale: aabbScale)
            try configuration.validate()
        } catch let error as SnapshotError {
            throw ConfigError(error.reason)
        } catch {
            throw ConfigError("unsupported network: \(error)")
        }
        try options.validate()
        self.options = options
    }

    static func applyOptimizer(_ value: Any, path: String, to options: inout TrainingOptions, decayAllowed: Bool) throws {
        let map = try object(value, path)
        let otype = try string(map["otype"] ?? "Adam", "\(path).otype")
        switch otype.lowercased() {
        case "exponentialdecay" where decayAllowed && !path.hasSuffix("nested.nested"):
            try allow(map, ["otype", "decay_start", "decay_interval", "decay_base", "nested"], path)
            options.decayStart = try integer(map["decay_start"] ?? 10_000, "\(path).decay_start")
            options.decayInterval = try integer(map["decay_interval"] ?? 10_000, "\(path).decay_interval")
            options.decayBase = try float(map["decay_base"] ?? 0.1, "\(path).decay_base")
            guard options.decayInterval > 0 else { throw ConfigError("\(path).decay_interval: must be positive") }
            guard options.decayBase > 0, options.decayBase <= 1 else { throw ConfigError("\(path).decay_base: must be in (0, 1]") }
            guard let nested = map["nested"] else { throw ConfigError("\(path).nested: missing") }
            try applyOptimizer(nested, path: "\(path).nested", to: &options, decayAllowed: false)
        case "adam":
            try allow(map, ["otype", "learning_rate", "beta1", "beta2", "epsilon", "l2_reg"], path)
            if decayAllowed { options.decayStart = Int.max / 2 }  // Adam alone: no decay
            // tiny-cuda-nn's Adam defaults for absent keys.
            options.learningRate = try float(map["learning_rate"] ?? 1e-3, "\(path).learning_rate")
            options.beta1 = try float(map["beta1"] ?? 0.9, "\(path).beta1")
            options.beta2 = try float(map["beta2"] ?? 0.999, "\(path).beta2")
            options.epsilon = try float(map["epsilon"] ?? 1e-8, "\(path).epsilon")
            options.l2Regularization = try float(map["l2_reg"] ?? 1e-8, "\(path).l2_reg")
            guard options.learningRate > 0 else { throw ConfigError("\(path).learning_rate: must be positive") }
            guard (0..<1).contains(options.beta1), (0..<1).contains(options.beta2) else { throw ConfigError("\(path).beta1/beta2: must be in [0, 1)") }
            guard options.epsilon >= 0, options.l2Regularization >= 0 else { throw ConfigError("\(path).epsilon/l2_reg: must be ≥ 0") }
        case "ema" where decayAllowed && path == "optimizer":
            try allow(map, ["otype", "decay", "nested", "full_precision"], path)
            if let full = map["full_precision"], isBoolean(full), (full as? NSNumber)?.boolValue == true {
                throw ConfigError("\(path).full_precision: true is not supported (the average is kept in fp16)")
            } else if let full = map["full_precision"], !isBoolean(full) {
                throw ConfigError("\(path).full_precision: not a boolean")
            }
            let decay = try float(map["decay"] ?? 0.99, "\(path).decay")
            guard decay >= 0, decay < 1 else { throw ConfigError("\(path).decay: must be in [0, 1)") }
            guard let nested = map["nested"] else { throw ConfigError("\(path).nested: missing") }
            try applyOptimizer(nested, path: "\(path).nested", to: &options, decayAllowed: true)
            options.emaDecay = decay
        default:
            throw ConfigError("\(path).otype: \(otype) is not supported here (Ema → ExponentialDecay → Adam, each level optional)")
        }
    }

    // MARK: JSON helpers

    static func object(_ value: Any, _ path: String) throws -> [String: Any] {
        guard let map = value as? [String: Any] else { throw ConfigError("\(path): not an object") }
        return map
    }

    static func allow(_ map: [String: Any], _ keys: Set<String>, _ path: String) throws {
        for key in map.keys.sorted() where !keys.contains(key) { throw ConfigError("\(path).\(key): unknown or unsupported key") }
    }

    static func string(_ value: Any, _ path: String) throws -> String {
        guard let text = value as? String else { throw ConfigError("\(path): not a string") }
        return text
    }

    /// JSON true/false (Foundation hands them over as NSNumber on Linux).
    static func isBoolean(_ value: Any) -> Bool {
        guard let n = value as? NSNumber else { return value is Bool }
        let type = String(cString: n.objCType)
        return type == "c" || type == "B"
    }

    static func number(_ value: Any, _ path: String) throws -> Double {
        guard !isBoolean(value), let n = value as? NSNumber else { throw ConfigError("\(path): not a number") }
        let v = n.doubleValue
        guard v.isFinite else { throw ConfigError("\(path): not finite") }
        return v
    }

    static func float(_ value: Any, _ path: String) throws -> Float { Float(try number(value, path)) }

    static func integer(_ value: Any, _ path: String) throws -> Int {
        let v = try number(value, path)
        guard v == v.rounded(), v >= 0, v < 1e15 else { throw ConfigError("\(path): not a non-negative integer") }
        return Int(v)
    }

    /// A JSON value as the MessagePack the snapshot reader interprets.
    static func messagePack(_ value: Any, _ path: String) throws -> MessagePack {
        switch value {
        case let text as String: return .string(text)
        case let n as NSNumber where isBoolean(n): return .bool(n.boolValue)
        case let n as NSNumber:
            let v = n.doubleValue
            return v == v.rounded() && abs(v) < 1e15 ? (v >= 0 ? .uint(UInt64(v)) : .int(Int64(v))) : .float64(v)
        case let items as [Any]: return .array(try items.enumerated().map { try messagePack($0.element, "\(path)[\($0.offset)]") })
        case let map as [String: Any]:
            return .map(try map.keys.sorted().map { .init(.string($0), try messagePack(map[$0]!, "\(path).\($0)")) })
        case is NSNull: return .null
        default: throw ConfigError("\(path): unsupported JSON value")
        }
    }
}
