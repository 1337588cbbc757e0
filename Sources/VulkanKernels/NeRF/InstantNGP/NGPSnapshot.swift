import Foundation

/// Why an instant-ngp snapshot could not be read.
public struct SnapshotError: Error, CustomStringConvertible, Equatable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "instant-ngp snapshot: \(reason)" }
}

/// What an instant-ngp snapshot records about training besides the weights (`snapshot.training_step`,
/// `snapshot.loss`, `snapshot.nerf.rgb.*`). instant-ngp's loader requires all of them.
public struct NGPTrainingState: Sendable, Equatable {
    /// Training steps taken (`training_step`).
    public var step = 0
    /// The loss instant-ngp shows (`loss`, its running loss scalar; here the last step's mean loss).
    public var loss: Float = 0
    /// Rays per training batch (`nerf.rgb.rays_per_batch`; instant-ngp starts at 2^12).
    public var raysPerBatch = 1 << 12
    /// Samples of the last batch after / before compaction to the samples in front of early termination
    /// (`nerf.rgb.measured_batch_size`, `measured_batch_size_before_compaction`).
    public var measuredBatchSize = 0
    public var measuredBatchSizeBeforeCompaction = 0
    public init() {}
}

/// tiny-cuda-nn's Adam state as instant-ngp saves it with "include optimizer state": inside
/// `snapshot.optimizer`, nested as the optimizer config nests (ExponentialDecay → Adam:
/// `{nested: {current_step, base_learning_rate, first_moments_binary, second_moments_binary,
/// param_steps_binary}, learning_rate, learning_rate_factor}`), moments as float32 and per-parameter
/// step counts as uint32, little-endian, one per parameter.
public struct NGPAdamState: Sendable, Equatable {
    /// Adam's step count (`current_step`).
    public var currentStep: Int
    /// ExponentialDecay's base learning rate (`learning_rate`) and its current factor.
    public var learningRate: Float
    public var learningRateFactor: Float
    public var firstMoments: [Float]
    public var secondMoments: [Float]
    public var parameterSteps: [UInt32]

    public init(currentStep: Int, learningRate: Float, learningRateFactor: Float, firstMoments: [Float], secondMoments: [Float],
                parameterSteps: [UInt32]) {
        self.currentStep = currentStep
        self.learningRate = learningRate
        self.learningRateFactor = learningRateFactor
        self.firstMoments = firstMoments
        self.secondMoments = secondMoments
        self.parameterSteps = parameterSteps
    }
}

/// An instant-ngp NeRF snapshot (`.msgpack`, or `.ingp` = the same document zlib-compressed), read and
/// written as instant-ngp's `Testbed::save_snapshot` / `load_snapshot` and tiny-cuda-nn's
/// `Trainer::serialize` lay it out (docs/nerf-formats.md lists what was checked against their code).
///
/// The document is a MessagePack map: the network config at the top level (`loss`, `optimizer`,
/// `encoding`, `network`, `dir_encoding`, `rgb_network`) and the trained state under `snapshot`:
/// `version` (1), `mode` ("nerf"), `n_params`, `params_type` ("__half"), `params_binary` (the fp16
/// inference parameters), optionally `optimizer` (Adam's moments, ``NGPAdamState``),
/// `density_grid_size` (128) and `density_grid_binary` (fp16 optical thickness per step, −1 for unseen
/// cells, ``NGPDensityGrid``), `nerf.aabb_scale` (an integer power of two ≤ 128), `nerf.rgb` (batch
/// sizes), `training_step`, `loss` and `aabb`.
///
/// On reading, as instant-ngp: the box is derived from `aabb_scale` ([½ − s/2, ½ + s/2]³; a stored
/// `aabb` is checked for form but not used), the density grid must have 1 + ⌈log2 s⌉ cascades, an
/// absent `per_level_scale` is computed in single precision from `aabb_scale`, and
/// `nerf.dataset.is_hdr` selects the exponential colour activation. The fp32 master weights, which
/// instant-ngp does not save, may ride along under `snapshot.vkk.params_full_precision_binary` so that
/// training resumes exactly; instant-ngp ignores that key. Keys this type does not interpret are kept in
/// ``document`` and written back unchanged.
public struct NGPSnapshot: Sendable {
    public var document: MessagePack
    public var configuration: HashGridConfiguration
    public var parameters: [Float16]
    public var aabb: AABB
    public var aabbScale: Float
    public var densityGrid: NGPDensityGrid?
    public var colorActivation: HashGridField.ColorActivation
    public var training: NGPTrainingState
    /// Adam's state, when the snapshot includes it (needed to resume training exactly).
    public var adam: NGPAdamState?
    /// The fp32 master copy of the parameters (a vkk extension key), when saved.
    public var fullPrecisionParameters: [Float]?
    /// tiny-cuda-nn's Ema state (`weights_ema_binary`, fp16), when the optimizer has the Ema wrapper and
    /// its state was saved. Written only together with ``adam``.
    public var emaWeights: [Float16]?

    /// instant-ngp's snapshot format version (`SNAPSHOT_FORMAT_VERSION`); its loader refuses older ones.
    public static let formatVersion = 1
    /// instant-ngp's density-grid side (`NERF_GRIDSIZE()`); its loader refuses other sizes.
    public static let instantNGPGridSize = 128

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
    /// parameters are errors (a trained network has none); a NaN density-grid cell reads as empty.
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

    /// instant-ngp's `aabb_scale`: an integer power of two, 1…128 (`NERF_CASCADES()` = 8).
    public static func validateAABBScale(_ value: Double?, key: String) throws -> Float {
        guard let value else { throw SnapshotError("\(key) is not a number") }
        guard value.isFinite, value >= 1, value <= 128, value == value.rounded(), Int(value) & (Int(value) - 1) == 0 else {
            throw SnapshotError("\(key) = \(value): instant-ngp needs a power of two from 1 to 128")
        }
        return Float(value)
    }

    /// Interprets a decoded document.
    public init(document: MessagePack) throws {
        guard case .map = document else { throw SnapshotError("the document is not a map") }
        guard let snapshot = document["snapshot"], case .map = snapshot else { throw SnapshotError("no `snapshot` map") }
        if let version = snapshot["version"] {
            guard let v = version.intValue, v >= Self.formatVersion else {
                throw SnapshotError("snapshot.version \(version) is older than instant-ngp's format \(Self.formatVersion)")
            }
        }
        if let mode = snapshot["mode"] {
            guard let name = mode.stringValue, name.lowercased() == "nerf" else {
                throw SnapshotError("mode is \(mode.stringValue ?? "not a string"), only NeRF snapshots hold a radiance field")
            }
        }
        let nerf = snapshot["nerf"]
        let dataset = nerf?["dataset"]
        var aabbScale: Float = 1
        if let value = nerf?["aabb_scale"] {
            aabbScale = try Self.validateAABBScale(value.doubleValue, key: "snapshot.nerf.aabb_scale")
        } else if let value = dataset?["aabb_scale"] {
            aabbScale = try Self.validateAABBScale(value.doubleValue, key: "snapshot.nerf.dataset.aabb_scale")
        }
        if let hdr = dataset?["is_hdr"] {
            guard case .bool(let flag) = hdr else { throw SnapshotError("snapshot.nerf.dataset.is_hdr is not a boolean") }
            colorActivation = flag ? .exponential : .logistic
        } else {
            colorActivation = .logistic
        }
        self.document = document
        self.aabbScale = aabbScale
        configuration = try Self.configuration(from: document, aabbScale: aabbScale)
        do { try configuration.validate() } catch { throw SnapshotError("unsupported network: \(error)") }

        // Parameters.
        let type = snapshot["params_type"].map { $0.stringValue ?? "\($0)" } ?? "__half"
        guard let raw = snapshot["params_binary"]?.binaryBytes else { throw SnapshotError("no `snapshot.params_binary`") }
        let expected = configuration.parameterCount
        if let declared = snapshot["n_params"], declared.intValue != expected {
            throw SnapshotError("n_params = \(declared.intValue.map(String.init) ?? "\(declared)") but the network config needs \(expected)")
        }
        switch type {
        case "__half":
            guard raw.count == expected * 2 else { throw SnapshotError("params_binary has \(raw.count) bytes, expected \(expected * 2)") }
            parameters = Self.halves(raw)
        case "float":
            guard raw.count == expected * 4 else { throw SnapshotError("params_binary has \(raw.count) bytes, expected \(expected * 4)") }
            parameters = Self.floats(raw).map { Float16($0) }
        default: throw SnapshotError("params_type \(type) (expected __half or float)")
        }
        if let bad = parameters.firstIndex(where: { !$0.isFinite }) { throw SnapshotError("parameter \(bad) is not finite") }

        // Bounding box: instant-ngp derives it from aabb_scale on load; a stored one must still be well formed.
        if let box = snapshot["aabb"] {
            guard let lower = Self.vector(box["min"]), let upper = Self.vector(box["max"]),
                  all(lower .< upper) else { throw SnapshotError("aabb is not {min: [x, y, z], max: [x, y, z]} with min < max") }
        }
        aabb = AABB(lower: SIMD3(repeating: 0.5 - aabbScale / 2), upper: SIMD3(repeating: 0.5 + aabbScale / 2))

        // Density grid.
        let cascades = NGPDensityGrid.cascadeCount(aabbScale: aabbScale)
        if let grid = snapshot["density_grid_binary"]?.binaryBytes, !grid.isEmpty {
            let resolution = try snapshot["density_grid_size"].map { value -> Int in
                guard let r = value.intValue else { throw SnapshotError("density_grid_size is not an integer") }
                return r
            } ?? Self.instantNGPGridSize
            guard resolution >= 1, resolution <= 512, resolution & (resolution - 1) == 0 else {
                throw SnapshotError("density_grid_size = \(resolution) (a power of two up to 512; instant-ngp uses \(Self.instantNGPGridSize))")
            }
            let cells = resolution * resolution * resolution
            guard grid.count == 2 * cells * cascades else {
                throw SnapshotError("density_grid_binary has \(grid.count) bytes, expected \(cascades) cascade(s) of \(resolution)³ fp16 cells "
                                    + "(\(2 * cells * cascades) bytes) for aabb_scale \(Int(aabbScale))")
            }
            do {
                densityGrid = try NGPDensityGrid(resolution: resolution, cascades: cascades, values: Self.halves(grid))
            } catch { throw SnapshotError("\(error)") }
        } else {
            // Absent or empty: a never-populated grid, which instant-ngp accepts too.
            densityGrid = nil
        }

        // Training state.
        var training = NGPTrainingState()
        func integer(_ value: MessagePack?, _ key: String) throws -> Int? {
            guard let value else { return nil }
            guard let v = value.intValue, v >= 0 else { throw SnapshotError("\(key) is not a non-negative integer") }
            return v
        }
        training.step = try integer(snapshot["training_step"], "snapshot.training_step") ?? 0
        if let loss = snapshot["loss"] {
            guard let l = loss.doubleValue else { throw SnapshotError("snapshot.loss is not a number") }
            training.loss = Float(l)
        }
        let rgb = nerf?["rgb"]
        training.raysPerBatch = try integer(rgb?["rays_per_batch"], "snapshot.nerf.rgb.rays_per_batch") ?? training.raysPerBatch
        training.measuredBatchSize = try integer(rgb?["measured_batch_size"], "snapshot.nerf.rgb.measured_batch_size") ?? 0
        training.measuredBatchSizeBeforeCompaction = try integer(rgb?["measured_batch_size_before_compaction"],
                                                                 "snapshot.nerf.rgb.measured_batch_size_before_compaction") ?? 0
        self.training = training
        if let optimizer = snapshot["optimizer"] {
            let (state, ema) = try Self.optimizerState(from: optimizer, count: expected)
            adam = state
            emaWeights = ema
        } else {
            adam = nil
            emaWeights = nil
        }
        if let full = snapshot["vkk"]?["params_full_precision_binary"] {
            guard let bytes = full.binaryBytes, bytes.count == 4 * expected else {
                throw SnapshotError("snapshot.vkk.params_full_precision_binary is not \(expected) float32 values")
            }
            let values = Self.floats(bytes)
            if let bad = values.firstIndex(where: { !$0.isFinite }) { throw SnapshotError("full-precision parameter \(bad) is not finite") }
            fullPrecisionParameters = values
        } else {
            fullPrecisionParameters = nil
        }
    }

    /// Adam's state from `snapshot.optimizer`, following `nested` maps down to the one holding the moments
    /// (tiny-cuda-nn nests it as the optimizer config nests); learning rate and factor from the
    /// ExponentialDecay level when there is one.
    static func optimizerState(from value: MessagePack, count: Int) throws -> (NGPAdamState, [Float16]?) {
        var node = value
        var learningRate: Float? = nil, factor: Float = 1
        var ema: [Float16]? = nil
        for _ in 0..<8 {
            if let raw = node["weights_ema_binary"] {
                guard let bytes = raw.binaryBytes, bytes.count == 2 * count else {
                    throw SnapshotError("snapshot.optimizer: weights_ema_binary is not \(count) fp16 values")
                }
                let values = halves(bytes)
                if let bad = values.firstIndex(where: { !$0.isFinite }) { throw SnapshotError("snapshot.optimizer: EMA weight \(bad) is not finite") }
                ema = values
            }
            if node["first_moments_binary"] != nil { break }
            if let lr = node["learning_rate"]?.doubleValue { learningRate = Float(lr) }
            if let f = node["learning_rate_factor"]?.doubleValue { factor = Float(f) }
            guard let next = node["nested"], case .map = next else {
                throw SnapshotError("snapshot.optimizer holds no Adam state (first_moments_binary)")
            }
            node = next
        }
        guard let first = node["first_moments_binary"]?.binaryBytes, let second = node["second_moments_binary"]?.binaryBytes,
              first.count == 4 * count, second.count == 4 * count else {
            throw SnapshotError("snapshot.optimizer: Adam moments are not \(count) float32 values each")
        }
        var steps = [UInt32](repeating: 0, count: count)
        if let raw = node["param_steps_binary"] {
            guard let bytes = raw.binaryBytes, bytes.count == 4 * count else {
                throw SnapshotError("snapshot.optimizer: param_steps_binary is not \(count) uint32 values")
            }
            steps = Self.floats(bytes).map(\.bitPattern)
        }
        guard let step = node["current_step"]?.intValue, step >= 0 else { throw SnapshotError("snapshot.optimizer: no current_step") }
        guard let base = node["base_learning_rate"]?.doubleValue else { throw SnapshotError("snapshot.optimizer: no base_learning_rate") }
        let firstMoments = Self.floats(first), secondMoments = Self.floats(second)
        guard firstMoments.allSatisfy(\.isFinite), secondMoments.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw SnapshotError("snapshot.optimizer: non-finite or negative Adam moments")
        }
        return (NGPAdamState(currentStep: step, learningRate: learningRate ?? Float(base), learningRateFactor: factor,
                             firstMoments: firstMoments, secondMoments: secondMoments, parameterSteps: steps), ema)
    }

    /// The field this snapshot describes.
    public func makeField(name: String = "hashgrid") throws -> HashGridField {
        try HashGridField(name: name, configuration: configuration, parameters: parameters, bounds: aabb, densityGrid: densityGrid,
                          colorActivation: colorActivation)
    }

    // MARK: Writing

    /// A new snapshot document for `field`, laid out as instant-ngp's `save_snapshot` writes it: the
    /// network config (with the loss and optimizer `options` describe) at the top level, keys sorted as
    /// nlohmann::json sorts them, and the state under `snapshot`. `field.bounds` must be instant-ngp's box
    /// for `aabbScale` (checked when encoding). `adam` and `fullPrecisionParameters` make a snapshot
    /// training can resume from exactly.
    public init(field: HashGridField, aabbScale: Float = 1, options: TrainingOptions = TrainingOptions(),
                training: NGPTrainingState = NGPTrainingState(), adam: NGPAdamState? = nil, fullPrecisionParameters: [Float]? = nil) {
        let c = field.configuration
        func mlp(_ width: Int, _ layers: Int) -> MessagePack {
            Self.sortedMap([("otype", .string("FullyFusedMLP")), ("activation", .string("ReLU")), ("output_activation", .string("None")),
                            ("n_neurons", .uint(UInt64(width))), ("n_hidden_layers", .uint(UInt64(layers)))])
        }
        let encoding = Self.sortedMap([
            ("otype", .string("HashGrid")), ("n_levels", .uint(UInt64(c.levels))),
            ("n_features_per_level", .uint(UInt64(c.featuresPerLevel))), ("log2_hashmap_size", .uint(UInt64(c.log2TableSize))),
            ("base_resolution", .uint(UInt64(c.baseResolution))), ("per_level_scale", .float32(c.perLevelScale)),
        ])
        let directionEncoding = Self.sortedMap([
            ("otype", .string("Composite")),
            ("nested", .array([
                Self.sortedMap([("n_dims_to_encode", .uint(3)), ("otype", .string("SphericalHarmonics")), ("degree", .uint(4))]),
                Self.sortedMap([("otype", .string("Identity"))]),
            ])),
        ])
        document = Self.sortedMap([
            ("loss", Self.sortedMap([("otype", .string(options.loss == .huber ? "Huber" : "L2"))])),
            ("optimizer", Self.optimizerConfig(options)),
            ("encoding", encoding),
            ("network", mlp(c.densityWidth, c.densityHiddenLayers)),
            ("dir_encoding", directionEncoding),
            ("rgb_network", mlp(c.colorWidth, c.colorHiddenLayers)),
            ("snapshot", Self.sortedMap([("version", .uint(UInt64(Self.formatVersion))), ("mode", .string("nerf"))])),
        ])
        configuration = c
        parameters = field.parameters
        aabb = field.bounds
        self.aabbScale = aabbScale
        densityGrid = field.densityGrid
        colorActivation = field.colorActivation
        self.training = training
        self.adam = adam
        self.fullPrecisionParameters = fullPrecisionParameters
        emaWeights = nil
    }

    /// The optimizer config `options` run: tiny-cuda-nn's ExponentialDecay around Adam, inside an Ema
    /// wrapper when `options.emaDecay` is set (base.json's shape).
    static func optimizerConfig(_ options: TrainingOptions) -> MessagePack {
        let decay = sortedMap([
            ("otype", .string("ExponentialDecay")), ("decay_start", .uint(UInt64(options.decayStart))),
            ("decay_interval", .uint(UInt64(options.decayInterval))), ("decay_base", number(Double(options.decayBase))),
            ("nested", sortedMap([
                ("otype", .string("Adam")), ("learning_rate", number(Double(options.learningRate))), ("beta1", number(Double(options.beta1))),
                ("beta2", number(Double(options.beta2))), ("epsilon", number(Double(options.epsilon))),
                ("l2_reg", number(Double(options.l2Regularization))),
            ])),
        ])
        guard let ema = options.emaDecay else { return decay }
        return sortedMap([("otype", .string("Ema")), ("decay", number(Double(ema))), ("nested", decay)])
    }

    /// A number as nlohmann::json's MessagePack writer stores one: float32 when that is exact, float64 otherwise.
    static func number(_ value: Double) -> MessagePack {
        Double(Float(value)) == value ? .float32(Float(value)) : .float64(value)
    }

    /// A map with its keys in nlohmann::json's (std::map) order.
    static func sortedMap(_ pairs: [(String, MessagePack)]) -> MessagePack {
        .map(pairs.sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }.map { .init(.string($0.0), $0.1) })
    }

    static func keyPrecedes(_ a: MessagePackPair, _ b: MessagePackPair) -> Bool {
        guard let x = a.key.stringValue, let y = b.key.stringValue else { return false }
        return Array(x.utf8).lexicographicallyPrecedes(Array(y.utf8))
    }

    /// Whether a map's keys are in sorted order (an absent map counts as sorted).
    static func isSorted(_ value: MessagePack?) -> Bool {
        guard let value else { return true }
        guard case .map(let pairs) = value else { return false }
        return zip(pairs, pairs.dropFirst()).allSatisfy { keyPrecedes($0, $1) }
    }

    static func sorted(_ value: MessagePack) -> MessagePack {
        guard case .map(let pairs) = value else { return value }
        return .map(pairs.sorted(by: keyPrecedes))
    }

    /// `updated` sorted (with its `nested` maps) when `original` was sorted.
    static func keepingSorted(_ original: MessagePack?, _ updated: MessagePack, nested: [String]) -> MessagePack {
        guard isSorted(original) else { return updated }
        var result = sorted(updated)
        for key in nested {
            if let inner = result[key], isSorted(original?[key]) { result = result.setting(key, sorted(inner)) }
        }
        return result
    }

    static func littleEndian(_ values: [UInt32]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * 4)
        for v in values { bytes.append(UInt8(v & 0xff)); bytes.append(UInt8(v >> 8 & 0xff)); bytes.append(UInt8(v >> 16 & 0xff)); bytes.append(UInt8(v >> 24)) }
        return bytes
    }

    static func littleEndian(_ values: [Float16]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * 2)
        for v in values { bytes.append(UInt8(v.bitPattern & 0xff)); bytes.append(UInt8(v.bitPattern >> 8)) }
        return bytes
    }

    /// Throws unless instant-ngp could load what ``updatedDocument`` writes for this value.
    public func validateForWriting() throws {
        guard parameters.count == configuration.parameterCount else {
            throw SnapshotError("\(parameters.count) parameters, the network config needs \(configuration.parameterCount)")
        }
        _ = try Self.validateAABBScale(Double(aabbScale), key: "aabb_scale")
        let box = AABB(lower: SIMD3(repeating: 0.5 - aabbScale / 2), upper: SIMD3(repeating: 0.5 + aabbScale / 2))
        guard aabb == box else {
            throw SnapshotError("the field's box \(aabb) is not instant-ngp's box \(box) for aabb_scale \(Int(aabbScale)) (it derives the box on load)")
        }
        if let grid = densityGrid, grid.cascades != NGPDensityGrid.cascadeCount(aabbScale: aabbScale) {
            throw SnapshotError("the density grid has \(grid.cascades) cascade(s), aabb_scale \(Int(aabbScale)) needs \(NGPDensityGrid.cascadeCount(aabbScale: aabbScale))")
        }
        if colorActivation == .exponential, document["snapshot"]?["nerf"]?["dataset"]?["is_hdr"] != .bool(true) {
            throw SnapshotError("an HDR (exponential colour) field needs the snapshot's nerf.dataset block with is_hdr, which only a read snapshot carries")
        }
        if let adam, [adam.firstMoments.count, adam.secondMoments.count, adam.parameterSteps.count] != Array(repeating: parameters.count, count: 3) {
            throw SnapshotError("Adam state for \(adam.firstMoments.count) parameters, the network has \(parameters.count)")
        }
        let counts = [training.step, training.raysPerBatch, training.measuredBatchSize, training.measuredBatchSizeBeforeCompaction,
                      adam?.currentStep ?? 0]
        guard counts.allSatisfy({ $0 >= 0 }) else {
            throw SnapshotError("negative training counts: \(training)")
        }
        if let ema = emaWeights, ema.count != parameters.count || adam == nil {
            throw SnapshotError("EMA weights need the Adam state and one value per parameter")
        }
        if let full = fullPrecisionParameters, full.count != parameters.count {
            throw SnapshotError("\(full.count) full-precision parameters, the network has \(parameters.count)")
        }
    }

    /// The document with this value's parameters, box, density grid and training state written into it.
    public var updatedDocument: MessagePack {
        var snapshot = document["snapshot"] ?? .map([])
        snapshot = snapshot.setting("params_binary", snapshot["params_binary"].binaryKeepingKind(Self.littleEndian(parameters)))
        snapshot = snapshot.setting("params_type", .string("__half"))
        snapshot = snapshot.setting("n_params", .uint(UInt64(parameters.count)))
        if snapshot["version"] == nil { snapshot = snapshot.setting("version", .uint(UInt64(Self.formatVersion))) }
        if snapshot["mode"] == nil { snapshot = snapshot.setting("mode", .string("nerf")) }
        func vector(_ v: SIMD3<Float>) -> MessagePack { .array([.float32(v.x), .float32(v.y), .float32(v.z)]) }
        snapshot = snapshot.setting("aabb", Self.sortedMap([("min", vector(aabb.lower)), ("max", vector(aabb.upper))]))
        // instant-ngp always writes both grid keys (an untrained model: an empty binary) and checks the size.
        snapshot = snapshot.setting("density_grid_size", .uint(UInt64(densityGrid?.resolution ?? Self.instantNGPGridSize)))
        snapshot = snapshot.setting("density_grid_binary",
                                    snapshot["density_grid_binary"].binaryKeepingKind(densityGrid.map { Self.littleEndian($0.values) } ?? []))
        var nerf = snapshot["nerf"] ?? .map([])
        // Clamped so that an unvalidated value cannot trap here (``encoded(compressed:)`` refuses it first).
        func count(_ value: Int) -> MessagePack { .uint(UInt64(max(value, 0))) }
        nerf = nerf.setting("aabb_scale", .uint(aabbScale.isFinite && aabbScale >= 1 && aabbScale <= 1e9 ? UInt64(aabbScale) : 1))
        var rgb = nerf["rgb"] ?? .map([])
        rgb = rgb.setting("rays_per_batch", count(training.raysPerBatch))
        rgb = rgb.setting("measured_batch_size", count(training.measuredBatchSize))
        rgb = rgb.setting("measured_batch_size_before_compaction", count(training.measuredBatchSizeBeforeCompaction))
        nerf = nerf.setting("rgb", rgb)
        snapshot = snapshot.setting("nerf", nerf)
        snapshot = snapshot.setting("training_step", count(training.step))
        snapshot = snapshot.setting("loss", .float32(training.loss))
        if let adam {
            let inner = Self.sortedMap([
                ("current_step", count(adam.currentStep)),
                ("base_learning_rate", .float32(adam.learningRate * adam.learningRateFactor)),
                ("first_moments_binary", .binary(Self.littleEndian(adam.firstMoments.map(\.bitPattern)))),
                ("second_moments_binary", .binary(Self.littleEndian(adam.secondMoments.map(\.bitPattern)))),
                ("param_steps_binary", .binary(Self.littleEndian(adam.parameterSteps))),
            ])
            var state = Self.sortedMap([
                ("nested", inner), ("learning_rate", .float32(adam.learningRate)), ("learning_rate_factor", .float32(adam.learningRateFactor)),
            ])
            if let ema = emaWeights {
                state = Self.sortedMap([("nested", state), ("weights_ema_binary", .binary(Self.littleEndian(ema)))])
            }
            snapshot = snapshot.setting("optimizer", state)
        }
        if let full = fullPrecisionParameters {
            snapshot = snapshot.setting("vkk", (snapshot["vkk"] ?? .map([])).setting("params_full_precision_binary",
                                                                                   .binary(Self.littleEndian(full.map(\.bitPattern)))))
        }
        // A document whose maps were in nlohmann::json's sorted order (a fresh one, or instant-ngp's own)
        // stays sorted; one with another order (edited by hand) keeps it.
        snapshot = Self.keepingSorted(document["snapshot"], snapshot, nested: ["nerf", "vkk", "aabb"])
        if let rgb = snapshot["nerf"]?["rgb"], Self.isSorted(document["snapshot"]?["nerf"]?["rgb"]) {
            snapshot = snapshot.setting("nerf", snapshot["nerf"]!.setting("rgb", Self.sorted(rgb)))
        }
        return document.setting("snapshot", snapshot)
    }

    /// The snapshot's bytes: plain MessagePack, or zlib-compressed (`.ingp`) when `compressed`. Throws
    /// unless instant-ngp could load it (``validateForWriting()``).
    public func encoded(compressed: Bool) throws -> [UInt8] {
        try validateForWriting()
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
        // instant-ngp's defaults (`reset_network`): log2_hashmap_size 15; base_resolution 0 (or absent) means
        // 2^(log2_hashmap_size / 3); per_level_scale ≤ 0 (or absent) means the single-precision rule.
        let log2TableSize = try int(encoding["log2_hashmap_size"], "encoding.log2_hashmap_size", default: 15)
        var baseResolution = try int(encoding["base_resolution"], "encoding.base_resolution", default: 0)
        if baseResolution == 0, (0...62).contains(log2TableSize) { baseResolution = 1 << (log2TableSize / 3) }
        var perLevelScale: Float? = nil
        if let value = encoding["per_level_scale"] {
            guard let scale = value.doubleValue else { throw SnapshotError("encoding.per_level_scale is not a number") }
            perLevelScale = Float(scale)
        }
        return HashGridConfiguration(
            levels: levels, featuresPerLevel: featuresPerLevel,
            log2TableSize: log2TableSize, baseResolution: baseResolution,
            perLevelScale: perLevelScale,
            densityWidth: try int(density?["n_neurons"], "network.n_neurons", default: 64),
            densityHiddenLayers: try int(density?["n_hidden_layers"], "network.n_hidden_layers", default: 1),
            colorWidth: try int(color?["n_neurons"], "rgb_network.n_neurons", default: 64),
            colorHiddenLayers: try int(color?["n_hidden_layers"], "rgb_network.n_hidden_layers", default: 2),
            aabbScale: aabbScale)
    }

    static func floats(_ raw: [UInt8]) -> [Float] {
        stride(from: 0, to: raw.count - 3, by: 4).map { i in
            Float(bitPattern: UInt32(raw[i]) | UInt32(raw[i + 1]) << 8 | UInt32(raw[i + 2]) << 16 | UInt32(raw[i + 3]) << 24)
        }
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
