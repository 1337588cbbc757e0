import Foundation
import VulkanKernels
import XCTest

/// `vkk train --config`: instant-ngp config files, every key checked.
final class InstantNGPConfigTests: XCTestCase {
    /// base.json's content without its Ema wrapper (the trainer has no weight average).
    static let baseWithoutEma = """
    {"loss": {"otype": "Huber"},
     "optimizer": {"otype": "ExponentialDecay", "decay_start": 20000, "decay_interval": 10000, "decay_base": 0.33,
                   "nested": {"otype": "Adam", "learning_rate": 1e-2, "beta1": 0.9, "beta2": 0.99, "epsilon": 1e-15, "l2_reg": 1e-6}},
     "encoding": {"otype": "HashGrid", "n_levels": 8, "n_features_per_level": 4, "log2_hashmap_size": 19, "base_resolution": 16},
     "network": {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "None", "n_neurons": 64, "n_hidden_layers": 1},
     "dir_encoding": {"otype": "Composite", "nested": [{"n_dims_to_encode": 3, "otype": "SphericalHarmonics", "degree": 4}, {"otype": "Identity"}]},
     "rgb_network": {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "None", "n_neurons": 64, "n_hidden_layers": 2},
     "distortion_map": {"resolution": [32, 32]}, "envmap": {"loss": {"otype": "RelativeL2"}}}
    """

    func parse(_ text: String, aabbScale: Float = 1) throws -> InstantNGPConfig {
        try InstantNGPConfig(json: try JSONSerialization.jsonObject(with: Data(text.utf8)), aabbScale: aabbScale)
    }

    func folder() throws -> String {
        let path = NSTemporaryDirectory() + "vkk-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// base.json's settings are the trainer's defaults (and the network instant-ngp builds for aabb_scale 4).
    func testBaseConfigIsTheDefault() throws {
        let config = try parse(Self.baseWithoutEma, aabbScale: 4)
        XCTAssertEqual(config.configuration, HashGridConfiguration(aabbScale: 4))
        let defaults = TrainingOptions()
        XCTAssertEqual(config.options.learningRate, defaults.learningRate)
        XCTAssertEqual(config.options.epsilon, defaults.epsilon)
        XCTAssertEqual(config.options.beta2, defaults.beta2)
        XCTAssertEqual(config.options.l2Regularization, defaults.l2Regularization)
        XCTAssertEqual(config.options.decayStart, defaults.decayStart)
        XCTAssertEqual(config.options.decayBase, defaults.decayBase)
        XCTAssertEqual(config.options.loss, .huber)
    }

    /// A `parent` is merged under the child as instant-ngp does (merge patch), e.g. small.json.
    func testParentConfigsMerge() throws {
        let dir = try folder()
        try Data(Self.baseWithoutEma.utf8).write(to: URL(fileURLWithPath: dir + "/base.json"))
        try Data(#"{"parent": "base.json", "optimizer": {"decay_start": 10000, "nested": {"learning_rate": 5e-3}}, "encoding": {"log2_hashmap_size": 15}, "loss": {"otype": "L2"}}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/small.json"))
        let config = try InstantNGPConfig.read(contentsOf: dir + "/small.json", aabbScale: 1)
        XCTAssertEqual(config.configuration.log2TableSize, 15)
        XCTAssertEqual(config.configuration.levels, 8)
        XCTAssertEqual(config.options.decayStart, 10_000)
        XCTAssertEqual(config.options.decayInterval, 10_000)
        XCTAssertEqual(config.options.learningRate, 5e-3)
        XCTAssertEqual(config.options.epsilon, 1e-15)
        XCTAssertEqual(config.options.loss, .l2)
    }

    /// The shared copy of instant-ngp's own base.json: its Ema wrapper becomes the trainer's weight average.
    func testInstantNGPsOwnBaseConfig() throws {
        let path = sharedDataDirectory().appendingPathComponent("nerf_scenes/instant_ngp_configs/base.json").path
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("shared data not present") }
        let config = try InstantNGPConfig.read(contentsOf: path, aabbScale: 1)
        XCTAssertEqual(config.options.emaDecay, 0.95)
        XCTAssertEqual(config.options.learningRate, 1e-2)
        XCTAssertEqual(config.options.decayStart, 20_000)
        XCTAssertEqual(config.configuration, HashGridConfiguration(aabbScale: 1))
        let small = try InstantNGPConfig.read(contentsOf: (path as NSString).deletingLastPathComponent + "/small.json", aabbScale: 1)
        XCTAssertEqual(small.configuration.log2TableSize, 15)
        XCTAssertEqual(small.options.decayStart, 10_000)
        XCTAssertEqual(small.options.emaDecay, 0.95)
    }

    /// Unknown keys and unsupported values are errors naming the key.
    func testUnsupportedKeysAndValuesNameTheKey() throws {
        func expect(_ fragment: String, _ edit: (inout [String: Any]) -> Void) {
            var root = try! JSONSerialization.jsonObject(with: Data(Self.baseWithoutEma.utf8)) as! [String: Any]
            edit(&root)
            XCTAssertThrowsError(try InstantNGPConfig(json: root, aabbScale: 1), fragment) { error in
                XCTAssertTrue("\(error)".contains(fragment), "expected \(fragment): \(error)")
            }
        }
        func set(_ root: inout [String: Any], _ section: String, _ key: String, _ value: Any) {
            var map = root[section] as! [String: Any]
            map[key] = value
            root[section] = map
        }
        expect("hyperparameters: unknown key") { $0["hyperparameters"] = [:] as [String: Any] }
        expect("loss.otype: L1") { set(&$0, "loss", "otype", "L1") }
        expect("encoding.otype") { set(&$0, "encoding", "otype", "Frequency") }
        expect("encoding.n_frequencies") { set(&$0, "encoding", "n_frequencies", 12) }
        expect("encoding.n_levels: not a number") { set(&$0, "encoding", "n_levels", true) }
        expect("network.activation") { set(&$0, "network", "activation", "Sine") }
        expect("rgb_network.otype: CutlassResNet") { set(&$0, "rgb_network", "otype", "CutlassResNet") }
        expect("network.n_neurons") { set(&$0, "network", "n_neurons", 48) }
        expect("optimizer.decay_end") { set(&$0, "optimizer", "decay_end", 30000) }
        expect("optimizer.decay_base: not a number") { set(&$0, "optimizer", "decay_base", "0.33") }
        expect("optimizer.nested.otype: Ema") {
            $0["optimizer"] = ["otype": "Ema", "decay": 0.95, "nested": ["otype": "Ema", "nested": $0["optimizer"]!] as [String: Any]] as [String: Any]
        }
        expect("optimizer.full_precision") { $0["optimizer"] = ["otype": "Ema", "full_precision": true, "nested": $0["optimizer"]!] as [String: Any] }
        expect("optimizer.decay: must be in") { $0["optimizer"] = ["otype": "Ema", "decay": 1.5, "nested": $0["optimizer"]!] as [String: Any] }
        expect("optimizer.nested.relative_decay") {
            var optimizer = $0["optimizer"] as! [String: Any]
            var adam = optimizer["nested"] as! [String: Any]
            adam["relative_decay"] = 0.1
            optimizer["nested"] = adam
            $0["optimizer"] = optimizer
        }
        expect("optimizer.otype: Shampoo") { set(&$0, "optimizer", "otype", "Shampoo") }
        expect("dir_encoding") { $0["dir_encoding"] = ["otype": "SphericalHarmonics", "degree": 3] as [String: Any] }
        expect("encoding: missing") { $0["encoding"] = nil }
    }
}
