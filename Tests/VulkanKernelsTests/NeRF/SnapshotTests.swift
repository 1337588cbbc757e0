import Foundation
import VulkanKernels
import XCTest

final class SnapshotTests: XCTestCase {
    let small = HashGridConfiguration(levels: 2, featuresPerLevel: 2, log2TableSize: 5, baseResolution: 2, perLevelScale: 2,
                                      densityWidth: 16, colorWidth: 16, colorHiddenLayers: 1)

    func makeSnapshot() throws -> NGPSnapshot {
        let field = try randomHashGridField(small, seed: 5, bounds: AABB(lower: SIMD3(-0.5, -0.5, -0.5), upper: SIMD3(1.5, 1.5, 1.5)))
        var generator = SeededGenerator(seed: 6)
        field.densityGrid = try NGPDensityGrid(resolution: 4, cascades: 2,
                                               values: (0..<128).map { _ in Float16(Float.random(in: 0..<50, using: &generator)) })
        return NGPSnapshot(field: field, aabbScale: 2)
    }

    // MARK: MessagePack

    func testMessagePackEncodesCanonicalBytes() {
        XCTAssertEqual(MessagePack.uint(5).encoded(), [0x05])
        XCTAssertEqual(MessagePack.uint(300).encoded(), [0xcd, 0x01, 0x2c])
        XCTAssertEqual(MessagePack.int(-1).encoded(), [0xff])
        XCTAssertEqual(MessagePack.int(-33).encoded(), [0xd0, 0xdf])
        XCTAssertEqual(MessagePack.int(-40000).encoded(), [0xd2, 0xff, 0xff, 0x63, 0xc0])
        XCTAssertEqual(MessagePack.float32(1).encoded(), [0xca, 0x3f, 0x80, 0x00, 0x00])
        XCTAssertEqual(MessagePack.string("ab").encoded(), [0xa2, 0x61, 0x62])
        XCTAssertEqual(MessagePack.binary([1, 2]).encoded(), [0xc4, 0x02, 0x01, 0x02])
        XCTAssertEqual(MessagePack.map([.init(.string("a"), .array([.null, .bool(true)]))]).encoded(),
                       [0x81, 0xa1, 0x61, 0x92, 0xc0, 0xc3])
        XCTAssertEqual(MessagePack.string(String(repeating: "x", count: 40)).encoded().prefix(2), [0xd9, 40])
        XCTAssertEqual(MessagePack.array(Array(repeating: .null, count: 20)).encoded().prefix(3), [0xdc, 0x00, 20])
    }

    func testMessagePackRoundTripsEveryKind() throws {
        let value: MessagePack = .map([
            .init(.string("ints"), .array([.uint(0), .uint(127), .uint(128), .uint(70000), .uint(UInt64.max), .int(-32), .int(-129),
                                           .int(Int64.min)])),
            .init(.string("floats"), .array([.float32(-0.0), .float64(.pi), .float32(.nan), .float64(-.infinity)])),
            .init(.uint(7), .binary([UInt8](repeating: 9, count: 300))),
            .init(.string("text é"), .string(String(repeating: "y", count: 70000))),
            .init(.string("ext"), .array([.ext(type: 3, data: [1, 2, 3, 4]), .ext(type: -1, data: [5, 6, 7])])),
        ])
        let bytes = value.encoded()
        let decoded = try MessagePack.decode(bytes)
        XCTAssertEqual(decoded, value)
        XCTAssertEqual(decoded.encoded(), bytes)
    }

    func testMalformedMessagePackThrows() {
        let cases: [(String, [UInt8])] = [
            ("empty", []),
            ("reserved byte", [0xc1]),
            ("truncated uint32", [0xce, 0x00, 0x01]),
            ("array longer than the file", [0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]),
            ("map longer than the file", [0xdf, 0x7f, 0xff, 0xff, 0xff]),
            ("binary longer than the file", [0xc6, 0xff, 0xff, 0xff, 0xf0, 0x00]),
            ("invalid UTF-8", [0xa2, 0xc3, 0x28]),
            ("trailing bytes", [0xc0, 0xc0]),
            ("nesting too deep", [UInt8](repeating: 0x91, count: 10_000) + [0xc0]),
        ]
        for (name, bytes) in cases {
            XCTAssertThrowsError(try MessagePack.decode(bytes), name) { XCTAssert($0 is MessagePackError, name) }
        }
    }

    // MARK: Snapshots

    func testSnapshotRoundTripIsBitExact() throws {
        let original = try makeSnapshot()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vkk-snapshot-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in ["scene.msgpack", "scene.ingp"] {
            let path = folder.appendingPathComponent(name).path
            try original.write(to: path)
            let bytes = [UInt8](FileManager.default.contents(atPath: path)!)
            XCTAssertEqual(Zlib.looksCompressed(bytes), name.hasSuffix(".ingp"))
            let loaded = try NGPSnapshot.read(contentsOf: path)
            XCTAssertEqual(loaded.parameters.map(\.bitPattern), original.parameters.map(\.bitPattern))
            XCTAssertEqual(loaded.densityGrid?.values.map(\.bitPattern), original.densityGrid?.values.map(\.bitPattern))
            XCTAssertEqual(loaded.densityGrid?.cascades, 2)
            XCTAssertEqual(loaded.aabb, original.aabb)
            XCTAssertEqual(loaded.aabbScale, 2)
            XCTAssertEqual(loaded.configuration, original.configuration)
            // Writing what was read reproduces the document byte for byte.
            XCTAssertEqual(try loaded.encoded(compressed: false), try original.encoded(compressed: false))
            XCTAssertEqual(loaded.updatedDocument, original.updatedDocument)
            // And the loaded field evaluates exactly as the original.
            let field = try HashGridField.load(snapshot: path)
            let reference = try original.makeField()
            let samples = randomSamples(count: 64, bounds: field.bounds, seed: 8)
            XCTAssertEqual(field.evaluate(samples: samples).map(\.bitPattern), reference.evaluate(samples: samples).map(\.bitPattern))
        }
    }

    func testSnapshotKeepsUnknownKeys() throws {
        let snapshot = try makeSnapshot()
        var document = snapshot.updatedDocument.setting("extra", .array([.string("kept"), .float64(1.25)]))
        document = document.setting("snapshot", document["snapshot"]!.setting("camera", .map([.init(.string("fov"), .float32(50))])))
        let reread = try NGPSnapshot(document: try MessagePack.decode(document.encoded()))
        XCTAssertEqual(reread.updatedDocument.encoded(), document.encoded())
    }

    /// nlohmann::json writes a binary value that carries a subtype as a MessagePack ext: read it, and
    /// write it back as the same ext.
    func testSnapshotAcceptsExtBinaries() throws {
        let snapshot = try makeSnapshot()
        let document = snapshot.updatedDocument
        guard case .binary(let params)? = document["snapshot"]?["params_binary"] else { return XCTFail("no params") }
        let extDocument = document.setting("snapshot", document["snapshot"]!.setting("params_binary", .ext(type: 0, data: params)))
        let reread = try NGPSnapshot.decode(extDocument.encoded())
        XCTAssertEqual(reread.parameters.map(\.bitPattern), snapshot.parameters.map(\.bitPattern))
        XCTAssertEqual(reread.updatedDocument.encoded(), extDocument.encoded())
    }

    func testTruncatedSnapshotsThrow() throws {
        let snapshot = try makeSnapshot()
        for compressed in [false, true] {
            let bytes = try snapshot.encoded(compressed: compressed)
            // Every prefix of the file: each must be a clear error, never a crash or a partial field.
            let step = max(1, bytes.count / 1500)
            var checked = 0
            for length in stride(from: 0, to: bytes.count, by: step) {
                XCTAssertThrowsError(try NGPSnapshot.decode(Array(bytes[0..<length])), "prefix \(length) of \(bytes.count)") { error in
                    XCTAssert(error is SnapshotError, "\(error)")
                }
                checked += 1
            }
            XCTAssertGreaterThan(checked, 1000)
            XCTAssertNoThrow(try NGPSnapshot.decode(bytes))
        }
    }

    func testMalformedSnapshotsThrow() throws {
        let good = try makeSnapshot().updatedDocument
        let state = good["snapshot"]!
        func variant(_ name: String, _ make: () -> MessagePack) {
            XCTAssertThrowsError(try NGPSnapshot.decode(make().encoded()), name) { XCTAssert($0 is SnapshotError, "\(name): \($0)") }
        }
        variant("not a map") { .array([]) }
        variant("no snapshot") { .map([]) }
        variant("short params") { good.setting("snapshot", state.setting("params_binary", .binary([0, 0, 0]))) }
        variant("n_params mismatch") { good.setting("snapshot", state.setting("n_params", .uint(3))) }
        variant("params_type") { good.setting("snapshot", state.setting("params_type", .string("bfloat16"))) }
        variant("non-finite parameter") {
            guard case .binary(var raw)? = state["params_binary"] else { return .null }
            raw[0] = 0x00; raw[1] = 0x7c  // fp16 +infinity
            return good.setting("snapshot", state.setting("params_binary", .binary(raw)))
        }
        variant("aabb min > max") {
            good.setting("snapshot", state.setting("aabb", .map([.init(.string("min"), .array([.uint(1), .uint(1), .uint(1)])),
                                                                 .init(.string("max"), .array([.uint(0), .uint(0), .uint(0)]))])))
        }
        variant("density grid size") { good.setting("snapshot", state.setting("density_grid_binary", .binary([1, 2, 3]))) }
        variant("sdf mode") { good.setting("snapshot", state.setting("mode", .string("sdf"))) }
        variant("unsupported encoding") { good.setting("encoding", good["encoding"]!.setting("otype", .string("Frequency"))) }
        variant("unsupported feature count") { good.setting("encoding", good["encoding"]!.setting("n_features_per_level", .uint(3))) }
        variant("unsupported activation") { good.setting("network", good["network"]!.setting("activation", .string("Sine"))) }
        variant("SH degree") {
            good.setting("dir_encoding", .map([.init(.string("otype"), .string("SphericalHarmonics")), .init(.string("degree"), .uint(3))]))
        }
        // Corrupt compressed streams.
        var compressed = try makeSnapshot().encoded(compressed: true)
        compressed[compressed.count / 2] ^= 0xff
        compressed[compressed.count / 2 + 1] ^= 0x55
        XCTAssertThrowsError(try NGPSnapshot.decode(compressed))
        XCTAssertThrowsError(try NGPSnapshot.read(contentsOf: "/nonexistent/scene.ingp"))
    }

    func testDensityGridMortonOrder() throws {
        XCTAssertEqual(NGPDensityGrid.mortonIndex(1, 0, 0), 1)
        XCTAssertEqual(NGPDensityGrid.mortonIndex(0, 1, 0), 2)
        XCTAssertEqual(NGPDensityGrid.mortonIndex(0, 0, 1), 4)
        XCTAssertEqual(NGPDensityGrid.mortonIndex(3, 5, 6), 0b110_101_011)  // bits z y x per level, low level last
        XCTAssertEqual(NGPDensityGrid.cascadeCount(aabbScale: 1), 1)
        XCTAssertEqual(NGPDensityGrid.cascadeCount(aabbScale: 4), 3)
        XCTAssertEqual(NGPDensityGrid.cascadeCount(aabbScale: 16), 5)
        // Stored as instant-ngp stores it: optical thickness σ·√3/1024 (fp16).
        let grid = try NGPDensityGrid.sampling(resolution: 8, cascades: 2) { p in p.x < 0.25 ? 10 : 0 }
        let thickness = Float(Float16(10 * Float(3).squareRoot() / 1024))
        XCTAssertEqual(grid.density(x: 0, y: 3, z: 5), thickness)
        XCTAssertEqual(grid.density(x: 7, y: 3, z: 5), 0)
        // Cascade 1 spans [−0.5, 1.5]: cell 2 is x ∈ [0, 0.25), cell 3 is [0.25, 0.5).
        XCTAssertEqual(grid.density(x: 2, y: 0, z: 0, cascade: 1), thickness)
        XCTAssertEqual(grid.density(x: 3, y: 0, z: 0, cascade: 1), 0)
    }
}
