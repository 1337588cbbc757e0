import Foundation
import VulkanKernels
import XCTest

/// A bounded, seeded mutation pass over every reader (``FileFormat``), run in CI: each format's seeds (real
/// files from shared/data where present, fixtures and files written by the library) are mutated by byte
/// flips, truncations, insertions, splices and edits of length fields and numbers, and each mutant is
/// read with small ``ReadLimits``. The pass fails on a crash (the test process dies), on a hang (a
/// watchdog aborts with the format and input index when one input runs past ``hangSeconds``), and on
/// memory: peak resident memory over the pass may grow by at most ``memoryCapBytes``. The libFuzzer
/// targets under Fuzz/ run the same entry points, coverage-guided and for as long as asked.
final class ReaderFuzzTests: XCTestCase {
    /// Mutants per format (`VKK_FUZZ_INPUTS` overrides): 13 formats × 2000 run in well under a minute.
    static let inputsPerFormat = ProcessInfo.processInfo.environment["VKK_FUZZ_INPUTS"].flatMap(Int.init) ?? 2000
    /// One input taking this long is a hang: the readers are linear in their (small) input here, so a
    /// well-behaved read takes milliseconds.
    static let hangSeconds = 10.0
    /// Peak resident memory may grow by at most this over one format's pass. The limits below let one input
    /// allocate at most a few tens of MiB; a reader that allocates what a file merely declares (GiBs)
    /// exceeds it at once.
    static let memoryCapBytes = 256 << 20
    /// Small limits, so that what a limit admits stays far below the memory cap.
    static let limits = ReadLimits(maxFileBytes: 16 << 20, maxElements: 1 << 20, maxDecompressedBytes: 16 << 20,
                                   maxCompressionRatio: 1100, maxHeaderBytes: 1 << 20, maxImagePixels: 1 << 20)

    func testNPY() throws { try fuzz(.npy) }
    func testSafeTensors() throws { try fuzz(.safetensors) }
    func testMatrixMarket() throws { try fuzz(.matrixMarket) }
    func testSMTX() throws { try fuzz(.smtx) }
    func testScipyNPZ() throws { try fuzz(.npz) }
    func testGzip() throws { try fuzz(.gzip) }
    func testMessagePack() throws { try fuzz(.messagePack) }
    func testSnapshot() throws { try fuzz(.snapshot) }
    func testTransformsJSON() throws { try fuzz(.transforms) }
    func testCameraPathJSON() throws { try fuzz(.cameraPath) }
    func testPNG() throws { try fuzz(.png) }
    func testJPEG() throws { try fuzz(.jpeg) }
    func testInstantNGPConfig() throws { try fuzz(.instantNGPConfig) }

    /// The hand-made inputs that the issue reported as crashes or hangs, each a clear error now.
    func testCraftedInputsAreClearErrors() throws {
        let crafted: [(FileFormat, String)] = [
            // Matrix Market: a few bytes declaring 2^31 − 2 rows and 10^9 entries.
            (.matrixMarket, "%%MatrixMarket matrix coordinate real general\n2147483646 2147483646 1000000000\n"),
            (.matrixMarket, "%%MatrixMarket matrix coordinate real general\n4 4 1\n-2147483648 1 1.0\n"),
            // .npy whose shape product wraps around Int.
            (.npy, "\u{93}NUMPY\u{01}\u{00}F\u{00}{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }\n"),
            (.npy, "\u{93}NUMPY\u{01}\u{00}F\u{00}{'descr': '<U9223372036854775807', 'fortran_order': False, 'shape': (2,), }     \n"),
            (.smtx, "2000000000, 2000000000, 5\n0 1\n0\n"),
            (.transforms, #"{"w": 1e30, "h": 10, "fl_x": 1, "frames": [{"transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,0]]}]}"#),
            (.transforms, #"{"w": 10, "h": 10, "fl_x": 1, "frames": [{"transform_matrix": [[0,0,0,0],[0,0,0,0],[0,0,0,0]]}]}"#),
            (.cameraPath, #"{"render_height": 100, "camera_path": [{"camera_to_world": [1,0,0,0,0,1,0,0,0,0,1,0,0,0,0,1], "fov": 50, "aspect": 1e38}]}"#),
            (.cameraPath, #"{"render_height": 100, "render_width": 1e20, "camera_path": [{"camera_to_world": [1,0,0,0,0,1,0,0,0,0,1,0,0,0,0,1], "fov": 50}]}"#),
        ]
        for (format, text) in crafted {
            XCTAssertThrowsError(try format.validate(Array(text.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }), name: "crafted",
                                                     limits: .default), "\(format): \(text)") { error in
                XCTAssert("\(error)".contains("crafted") || error is CameraFileError, "the error names the file: \(error)")
            }
        }
        // safetensors: a header length of 2^64 − 1 and a shape whose byte count wraps.
        var header = Array(#"{"t":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}"#.utf8)
        var bytes = withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header
        XCTAssertThrowsError(try FileFormat.safetensors.validate(bytes, name: "wrap.safetensors"))
        header = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        bytes = header + Array("{}".utf8)
        XCTAssertThrowsError(try FileFormat.safetensors.validate(bytes, name: "huge-header.safetensors")) { error in
            XCTAssert("\(error)".contains("maxHeaderBytes"), "\(error)")
        }
        // PNG: a text chunk declaring 512 MiB in a file of a few hundred bytes (libpng allocated it: found by
        // libFuzzer), and a zTXt chunk that inflates 1100-fold.
        let png = try Self.seeds(for: .png, includeShared: false)[0]
        let lie: [UInt8] = [0x20, 0, 0, 0x09] + Array("tEXt".utf8) + Array("Comment\0x".utf8)
        let lying = Array(png[..<33]) + lie + Array(png[33...])
        let memory = PeakMemory()
        XCTAssertThrowsError(try FileFormat.png.validate(lying, name: "lying.png")) { XCTAssert("\($0)".contains("lying.png: truncated"), "\($0)") }
        XCTAssertLessThan(memory.growth() ?? 0, 64 << 20, "nothing near the declared 512 MiB was allocated")
        let inflating = try Zlib.compress([UInt8](repeating: 0x41, count: 4 << 20), gzip: false)
        var zText = Array("Comment".utf8) + [0, 0] + inflating
        zText = withUnsafeBytes(of: UInt32(zText.count).bigEndian, Array.init) + Array("zTXt".utf8) + zText + [0, 0, 0, 0]
        var textLimits = ReadLimits.default
        textLimits.maxHeaderBytes = 1 << 20
        XCTAssertThrowsError(try FileFormat.png.validate(Array(png[..<33]) + zText + Array(png[33...]), name: "ztxt.png", limits: textLimits)) {
            XCTAssert("\($0)".contains("zTXt chunk"), "\($0)")
        }
        // A gzip bomb: 64 MiB of zeros compress to ~64 KiB; the ratio cap stops it before the size cap.
        let bomb = try Zlib.compress([UInt8](repeating: 0, count: 64 << 20))
        var ratioLimits = ReadLimits.default
        ratioLimits.maxCompressionRatio = 100
        XCTAssertThrowsError(try FileFormat.gzip.validate(bomb, limits: ratioLimits)) { XCTAssert("\($0)".contains("maxCompressionRatio"), "\($0)") }
        XCTAssertThrowsError(try FileFormat.gzip.validate(bomb, limits: Self.limits)) { XCTAssert("\($0)".contains("maxDecompressedBytes"), "\($0)") }
        XCTAssertEqual(try Zlib.decompress(bomb).count, 64 << 20, "the default limits admit it")
    }

    /// Special files are refused before anything blocks: a FIFO (no writer: opening it for reading
    /// would block forever) and a directory, each with a message that names the file.
    func testSpecialFilesAreRefusedWithoutBlocking() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vkk-special-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("pipe.npy").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let start = Date()
        for path in [fifo, folder.path] {
            for read in [{ _ = try NPY.read(contentsOf: path) }, { _ = try SafeTensorsFile(contentsOf: path) },
                         { _ = try SparseMatrixFile.readMatrixMarket(contentsOf: path) }, { _ = try SparseMatrixFile.readSMTX(contentsOf: path) },
                         { _ = try ScipySparseFile(contentsOf: path) }, { _ = try NGPSnapshot.read(contentsOf: path) },
                         { _ = try TransformsFile.read(contentsOf: path) }, { _ = try CameraPathFile.read(contentsOf: path) },
                         { _ = try PNG.read(path) }] as [() throws -> Void] {
                XCTAssertThrowsError(try read()) { error in
                    let text = "\(error)"
                    XCTAssert(text.contains(path) && text.contains("not a regular file"), text)
                    XCTAssertFalse(text.contains("NSCocoaErrorDomain"), text)
                }
            }
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5, "nothing blocked")
        // A transforms.json whose file_path names the FIFO: the PNG size probe skips it instead of hanging.
        let transforms = folder.appendingPathComponent("transforms.json").path
        try Data(#"{"fl_x": 100, "frames": [{"file_path": "pipe.npy", "transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}]}"#.utf8)
            .write(to: URL(fileURLWithPath: transforms))
        XCTAssertThrowsError(try TransformsFile.read(contentsOf: transforms)) { XCTAssert("\($0)".contains("image size"), "\($0)") }
    }

    /// The memory check measures: a 64 MiB allocation that is touched shows up as growth.
    func testPeakMemoryMeasuresAnAllocation() throws {
        let memory = PeakMemory()
        guard memory.growth() != nil else { throw XCTSkip("no /proc/self/status here") }
        let bytes = [UInt8](repeating: 1, count: 64 << 20)
        XCTAssertEqual(bytes[bytes.count - 1], 1)
        XCTAssertGreaterThanOrEqual(memory.growth() ?? 0, 60 << 20)
    }

    // MARK: The pass

    private func fuzz(_ format: FileFormat) throws {
        let seeds = try Self.seeds(for: format)
        XCTAssertFalse(seeds.isEmpty)
        for (index, seed) in seeds.enumerated() {
            XCTAssertNoThrow(try format.validate(seed, name: "seed \(index)", limits: Self.limits), "\(format) seed \(index) must parse")
        }
        let memory = PeakMemory()
        let watchdog = Watchdog(seconds: Self.hangSeconds)
        defer { watchdog.stop() }
        var generator = SeededGenerator(seed: 0x5eed_0000 &+ UInt64(FileFormat.allCases.firstIndex(of: format)!))
        var accepted = 0
        for index in 0..<Self.inputsPerFormat {
            var input = seeds[Int.random(in: 0..<seeds.count, using: &generator)]
            let rounds = 1 + Int.random(in: 0..<4, using: &generator)
            for _ in 0..<rounds { Mutator.mutate(&input, textual: format.isTextual, seeds: seeds, using: &generator) }
            watchdog.begin("\(format) input \(index) (\(input.count) bytes)")
            do {
                try format.validate(input, name: "mutant", limits: Self.limits)
                accepted += 1
            } catch {
                let text = "\(error)"
                XCTAssertFalse(text.contains("NSCocoaErrorDomain"), "raw Foundation error text: \(text)")
            }
            watchdog.end()
        }
        let growth = memory.growth()
        print("\(format): \(Self.inputsPerFormat) mutants of \(seeds.count) seeds, \(accepted) accepted, peak resident memory +\(growth.map { "\($0 >> 20) MiB" } ?? "n/a")")
        if let growth { XCTAssertLessThan(growth, Self.memoryCapBytes, "\(format): peak resident memory grew by \(growth >> 20) MiB") }
    }

    // MARK: Seeds

    /// Writes each format's own seeds (not the shared-data files, which stay out of the repository) to
    /// `VKK_FUZZ_WRITE_SEEDS`/<format>/: how Fuzz/Seeds was made.
    func testWriteSeedsForLibFuzzer() throws {
        guard let folder = ProcessInfo.processInfo.environment["VKK_FUZZ_WRITE_SEEDS"] else {
            throw XCTSkip("set VKK_FUZZ_WRITE_SEEDS=<package>/Fuzz/Seeds to regenerate the libFuzzer seeds")
        }
        for format in FileFormat.allCases {
            let directory = URL(fileURLWithPath: folder).appendingPathComponent(format.rawValue)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for (index, seed) in try Self.seeds(for: format, includeShared: false).enumerated() {
                try Data(seed).write(to: directory.appendingPathComponent("seed-\(index)"))
            }
        }
    }

    static func seeds(for format: FileFormat, includeShared: Bool = true) throws -> [[UInt8]] {
        func base64(_ text: String) -> [UInt8] { [UInt8](Data(base64Encoded: text)!) }
        func sharedFiles(under folder: String, suffix: String, maxBytes: Int, count: Int) -> [[UInt8]] {
            includeShared ? Self.sharedFiles(under: folder, suffix: suffix, maxBytes: maxBytes, count: count) : []
        }
        func sharedFiles(named paths: [String]) -> [[UInt8]] { includeShared ? Self.sharedFiles(named: paths) : [] }
        switch format {
        case .npy:
            return [Fixtures.f32, Fixtures.f16, Fixtures.i32, Fixtures.u8, Fixtures.scalar, Fixtures.v2].map(base64)
                + sharedFiles(under: "attention_vectors", suffix: ".npy", maxBytes: 4096, count: 4)
        case .safetensors:
            return [base64(Fixtures.safetensors)]
        case .matrixMarket:
            var symmetric = Fixtures.mtx.replacingOccurrences(of: "general", with: "symmetric")
            symmetric = symmetric.replacingOccurrences(of: "1 2 1.5", with: "2 2 1.5")
            return [Array(Fixtures.mtx.utf8), Array(symmetric.utf8),
                    Array("%%MatrixMarket matrix coordinate pattern general\n3 3 2\n1 1\n3 2\n".utf8)]
                + (try sharedFiles(under: "dlmc_subset", suffix: ".smtx", maxBytes: 4096, count: 2).map { try matrixMarketText(ofSMTX: $0) })
        case .smtx:
            return [Array("4, 4, 3\n0 1 2 3 3\n1 0 2\n".utf8)] + sharedFiles(under: "dlmc_subset", suffix: ".smtx", maxBytes: 4096, count: 3)
        case .npz:
            return [Fixtures.csrNPZ, Fixtures.csrNPZStored, Fixtures.cscNPZ, Fixtures.bsrNPZ].map(base64)
        case .gzip:
            let text = Array(String(repeating: "VulkanKernels gzip seed 0123456789 ", count: 40).utf8)
            return [try Zlib.compress(text), try Zlib.compress(text, gzip: false), try Zlib.compress(Array(text.prefix(10)))]
        case .messagePack:
            return [try snapshot().encoded(compressed: false)]
        case .snapshot:
            return [try snapshot().encoded(compressed: false), try snapshot().encoded(compressed: true)]
        case .transforms:
            return [Array(#"{"w": 8, "h": 6, "fl_x": 7, "k1": 0.1, "p2": 0.01, "frames": [{"file_path": "a", "transform_matrix": [[1,0,0,0.5],[0,1,0,0],[0,0,1,2],[0,0,0,1]]}]}"#.utf8)]
                + sharedFiles(named: ["nerf_scenes/instant_ngp_fox/transforms.json"])
        case .cameraPath:
            return [Array(#"{"render_height": 6, "render_width": 8, "fps": 24, "camera_path": [{"camera_to_world": [1,0,0,0,0,1,0,0,0,0,1,3,0,0,0,1], "fov": 50, "aspect": 1.3}]}"#.utf8)]
                + sharedFiles(named: ["nerf_scenes/nerfstudio_camera_paths/circular_camera_path.json"])
        case .png:
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vkk-fuzz-png-\(getpid())")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let rgb = folder.appendingPathComponent("rgb.png").path, gray = folder.appendingPathComponent("gray16.png").path
            let rgba = folder.appendingPathComponent("rgba.png").path
            try PNG.write8((0..<(8 * 6 * 3)).map { UInt8($0 % 251) }, width: 8, height: 6, channels: 3, to: rgb)
            try PNG.write16((0..<(5 * 4)).map { UInt16($0 * 3000) }, width: 5, height: 4, to: gray)
            try PNG.write8((0..<(3 * 3 * 4)).map { UInt8($0 * 7 % 256) }, width: 3, height: 3, channels: 4, to: rgba)
            return try [rgb, gray, rgba].map { [UInt8](try Data(contentsOf: URL(fileURLWithPath: $0))) }
                + sharedFiles(named: ["nerf_scenes/nerf_synthetic_lego/train/r_0.png"])
        case .instantNGPConfig:
            // base.json's blocks written out, and a smaller network with plain Adam and L2; instant-ngp's own configs
            // from the shared data when present (base.json; the others name it as their `parent`, a file).
            return [Array(#"{"loss": {"otype": "Huber"}, "optimizer": {"otype": "Ema", "decay": 0.95, "nested": {"otype": "ExponentialDecay", "decay_start": 20000, "decay_interval": 10000, "decay_base": 0.33, "nested": {"otype": "Adam", "learning_rate": 1e-2, "beta1": 0.9, "beta2": 0.99, "epsilon": 1e-15, "l2_reg": 1e-6}}}, "encoding": {"otype": "HashGrid", "n_levels": 8, "n_features_per_level": 4, "log2_hashmap_size": 19, "base_resolution": 16}, "network": {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "None", "n_neurons": 64, "n_hidden_layers": 1}, "dir_encoding": {"otype": "Composite", "nested": [{"n_dims_to_encode": 3, "otype": "SphericalHarmonics", "degree": 4}, {"otype": "Identity"}]}, "rgb_network": {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "None", "n_neurons": 64, "n_hidden_layers": 2}}"#.utf8),
                    Array(#"{"loss": {"otype": "L2"}, "optimizer": {"otype": "Adam", "learning_rate": 1e-2}, "encoding": {"otype": "HashGrid", "n_levels": 4, "n_features_per_level": 2, "log2_hashmap_size": 12, "base_resolution": 8, "per_level_scale": 1.5}, "network": {"otype": "CutlassMLP", "activation": "ReLU", "output_activation": "None", "n_neurons": 64, "n_hidden_layers": 1}, "dir_encoding": {"otype": "SphericalHarmonics", "degree": 4}, "rgb_network": {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "None", "n_neurons": 64, "n_hidden_layers": 1}}"#.utf8)]
                + sharedFiles(named: ["nerf_scenes/instant_ngp_configs/base.json"])
        case .jpeg:
            // Made for this test (synthetic gradients, Pillow): baseline 16×12 RGB, progressive 16×12 RGB and
            // baseline 9×7 greyscale. The fox capture's JPEGs (1080×1920) would make each mutant a full decode.
            return ["/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAYEBQYFBAYGBQYHBwYIChAKCgkJChQODwwQFxQYGBcUFhYaHSUfGhsjHBYWICwgIyYnKSopGR8tMC0oMCUoKSj/2wBDAQcHBwoIChMKChMoGhYaKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCj/wAARCAAMABADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDyfRPCG/b+7/Su90jwUiqrSIFHuK7fwzplqdmUrttA022uJFeRMk/pXk08XD2NOUoc0p7X2Vu/37fijLhjiWtdb6H/2Q==", "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAA0JCgsKCA0LCgsODg0PEyAVExISEyccHhcgLikxMC4pLSwzOko+MzZGNywtQFdBRkxOUlNSMj5aYVpQYEpRUk//2wBDAQ4ODhMREyYVFSZPNS01T09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT0//wgARCAAMABADASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAABAX/xAAVAQEBAAAAAAAAAAAAAAAAAAABA//aAAwDAQACEAMQAAABlPY2J//EABcQAAMBAAAAAAAAAAAAAAAAAAABAgP/2gAIAQEAAQUCjEnEzlESmf/EABYRAQEBAAAAAAAAAAAAAAAAAAQAAf/aAAgBAwEBPwEydv/EABgRAAIDAAAAAAAAAAAAAAAAAAABAhFh/9oACAECAQE/AVJUtP/EABQQAQAAAAAAAAAAAAAAAAAAACD/2gAIAQEABj8CH//EABgQAAMBAQAAAAAAAAAAAAAAAAABURFh/9oACAEBAAE/IeBdEA41o//aAAwDAQACAAMAAAAQq//EABURAQEAAAAAAAAAAAAAAAAAAAAR/9oACAEDAQE/ELX/xAAWEQEBAQAAAAAAAAAAAAAAAAABEQD/2gAIAQIBAT8Qqkrn/8QAFxABAQEBAAAAAAAAAAAAAAAAAQARIf/aAAgBAQABPxDTIICAT8gzov/Z", "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAAHAAkBAREA/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/9oACAEBAAA/ADVfDv8AYNm+uQ6fDaabHt+0I8FvGkGSqLtAWd2yx5yeM+nSl/wluk/897L/AL9J/wDIdf/Z"].map(base64)
        }
    }

    private static func snapshot() throws -> NGPSnapshot {
        let configuration = HashGridConfiguration(levels: 2, featuresPerLevel: 2, log2TableSize: 5, baseResolution: 2, perLevelScale: 2,
                                                  densityWidth: 16, colorWidth: 16, colorHiddenLayers: 1)
        let field = try randomHashGridField(configuration, seed: 5, bounds: AABB(lower: SIMD3(-0.5, -0.5, -0.5), upper: SIMD3(1.5, 1.5, 1.5)))
        // aabb_scale 2: instant-ngp's 1 + log2 2 = 2 cascades.
        field.densityGrid = try NGPDensityGrid(resolution: 4, cascades: 2, values: (0..<128).map { Float16(Float($0 % 64)) })
        return NGPSnapshot(field: field, aabbScale: 2)
    }

    /// The smallest `count` files under a shared-data folder with this suffix (none when the data is absent).
    private static func sharedFiles(under folder: String, suffix: String, maxBytes: Int, count: Int) -> [[UInt8]] {
        let root = sharedDataDirectory().appendingPathComponent(folder)
        guard let walker = FileManager.default.enumerator(atPath: root.path) else { return [] }
        var found: [(Int, String)] = []
        for case let path as String in walker where path.hasSuffix(suffix) {
            let full = root.appendingPathComponent(path).path
            if let size = (try? FileManager.default.attributesOfItem(atPath: full))?[.size] as? Int, size <= maxBytes { found.append((size, full)) }
        }
        return found.sorted { $0 < $1 }.prefix(count).compactMap { try? [UInt8](Data(contentsOf: URL(fileURLWithPath: $0.1))) }
    }

    private static func sharedFiles(named paths: [String]) -> [[UInt8]] {
        paths.compactMap { try? [UInt8](Data(contentsOf: sharedDataDirectory().appendingPathComponent($0))) }
    }

    private static func matrixMarketText(ofSMTX bytes: [UInt8]) throws -> [UInt8] {
        let matrix = try SparseMatrixFile.readSMTX(bytes: bytes, name: "seed").withRandomValues(seed: 1)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vkk-fuzz-\(getpid())-\(bytes.count).mtx").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try SparseMatrixFile.writeMatrixMarket(matrix, to: path)
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}

extension FileFormat {
    /// Text formats also get their numbers replaced by extreme ones.
    var isTextual: Bool { [.matrixMarket, .smtx, .transforms, .cameraPath].contains(self) }
}

/// The mutations: each one of the kinds a hostile or damaged file shows.
enum Mutator {
    /// Values that break size arithmetic when they land in a length, offset or count field.
    static let integers: [UInt64] = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0x1_0000_0000,
                                     0x7fff_ffff_ffff_ffff, 0xffff_ffff_ffff_ffff, 1 << 40]
    /// Numbers for text formats: huge, negative, non-finite, fractional, overflowing every integer type.
    static let numbers = ["0", "-1", "2147483647", "2147483648", "-2147483648", "4294967296", "9223372036854775807",
                          "99999999999999999999999", "1e30", "-1e30", "1e309", "nan", "inf", "-0", "0.5", "1e-45"]

    static func mutate(_ bytes: inout [UInt8], textual: Bool, seeds: [[UInt8]], using generator: inout SeededGenerator) {
        func position(_ extra: Int = 0) -> Int { bytes.count > extra ? Int.random(in: 0..<(bytes.count - extra), using: &generator) : 0 }
        switch Int.random(in: 0..<(textual ? 9 : 8), using: &generator) {
        case 0 where !bytes.isEmpty:  // flip one bit
            let at = position()
            bytes[at] ^= 1 << UInt8.random(in: 0..<8, using: &generator)
        case 1 where !bytes.isEmpty:  // a random byte
            bytes[position()] = UInt8.random(in: 0...255, using: &generator)
        case 2:  // truncate
            bytes.removeLast(bytes.isEmpty ? 0 : Int.random(in: 0...bytes.count, using: &generator))
        case 3 where bytes.count >= 8:  // a length field: an extreme integer written over 1, 2, 4 or 8 bytes, either byte order
            let width = [1, 2, 4, 8].randomElement(using: &generator)!
            let value = integers.randomElement(using: &generator)!
            let at = position(width)
            let big = Bool.random(using: &generator)
            for byte in 0..<width where at + byte < bytes.count {
                let shift = UInt64(8 * (big ? width - 1 - byte : byte))
                bytes[at + byte] = UInt8(truncatingIfNeeded: value >> shift)
            }
        case 4 where !bytes.isEmpty:  // delete a run
            let at = position(), length = min(bytes.count - at, Int.random(in: 1...64, using: &generator))
            bytes.removeSubrange(at..<(at + length))
        case 5:  // insert random bytes
            let count = Int.random(in: 1...32, using: &generator)
            bytes.insert(contentsOf: (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }, at: bytes.isEmpty ? 0 : position())
        case 6 where !bytes.isEmpty:  // duplicate a run (repeated records, longer lists)
            let at = position(), length = min(bytes.count - at, Int.random(in: 1...256, using: &generator))
            bytes.insert(contentsOf: bytes[at..<(at + length)], at: position())
        case 7:  // splice with another seed
            let other = seeds.randomElement(using: &generator)!
            guard !other.isEmpty else { return }
            let cut = bytes.isEmpty ? 0 : position(), from = Int.random(in: 0..<other.count, using: &generator)
            bytes = Array(bytes[..<cut]) + other[from...]
        case 8:  // replace a number in a text file
            let digits = bytes.indices.filter { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[$0]) }
            guard let start = digits.randomElement(using: &generator) else { return }
            var end = start
            while end < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[end]) || bytes[end] == UInt8(ascii: ".") { end += 1 }
            var begin = start
            while begin > 0, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[begin - 1]) || bytes[begin - 1] == UInt8(ascii: "-") { begin -= 1 }
            bytes.replaceSubrange(begin..<end, with: Array(numbers.randomElement(using: &generator)!.utf8))
        default:
            if !bytes.isEmpty { bytes[position()] = 0 }
        }
    }
}

/// Peak resident memory (VmHWM) growth since creation: the kernel's high-water mark is reset through
/// /proc/self/clear_refs first, so the figure is this pass's peak, not an earlier test's. nil where
/// /proc is not available.
final class PeakMemory {
    private let baseline: Int?

    init() {
        if let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") {
            try? handle.write(contentsOf: Data("5".utf8))
            try? handle.close()
        }
        baseline = Self.status("VmRSS")
    }

    func growth() -> Int? {
        guard let baseline, let peak = Self.status("VmHWM") else { return nil }
        return max(0, peak - baseline)
    }

    /// A `kB` line of /proc/self/status, in bytes.
    static func status(_ key: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
            return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
        }
        return nil
    }
}

/// Aborts the process, naming the input, when one input runs longer than `seconds` (a hang must fail the
/// suite rather than stall it).
final class Watchdog: @unchecked Sendable {
    private let lock = NSLock()
    private var current: (label: String, start: Date)?
    private var stopped = false

    init(seconds: Double) {
        Thread.detachNewThread { [self] in
            while true {
                Thread.sleep(forTimeInterval: 0.25)
                let (label, start, done) = lock.withLock { (current?.label, current?.start, stopped) }
                if done { return }
                if let label, let start, Date().timeIntervalSince(start) > seconds {
                    FileHandle.standardError.write(Data("HANG: \(label) ran over \(seconds) s\n".utf8))
                    abort()
                }
            }
        }
    }

    func begin(_ label: String) { lock.withLock { current = (label, Date()) } }
    func end() { lock.withLock { current = nil } }
    func stop() { lock.withLock { stopped = true } }
}
