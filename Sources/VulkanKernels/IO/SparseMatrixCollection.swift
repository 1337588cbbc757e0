import Foundation

/// The sparse-matrix files under a folder (DLMC `.smtx` and Matrix Market `.mtx`, found recursively),
/// each with what its path says about it and the number of dense columns N its layer multiplies.
///
/// DLMC (Gale et al., "Sparse GPU Kernels for Deep Learning", SC'20) lays its files out as
/// `<model>/<method>/<sparsity>/<layer>.smtx`, e.g. `rn50/magnitude_pruning/0.9/final_dense.smtx`. A file
/// whose parent folder is a sparsity (a number in [0, 1]) takes its method from the folder above that
/// and its model from the one above that; any other file is grouped as model and method `other`.
///
/// N, the columns of B in C = A·B: a file `<model>_batchsizes.txt` (lines `layer,N`; DLMC ships
/// `rn50_batchsizes.txt`, the output spatial size of each ResNet-50 convolution for one image) found
/// under the folder or in any folder above it gives N for that model's layers. Every other matrix —
/// Transformer layers, layers the file does not list, files outside DLMC — gets `defaultTokens`
/// (256 unless the caller says otherwise: the sequence length the DLMC paper benchmarks Transformer
/// layers at).
public struct SparseMatrixCollection: Sendable {
    /// N for matrices no batch-size file lists.
    public static let standardDefaultTokens = 256
    /// The suffix of a batch-size file: `<model>_batchsizes.txt`.
    public static let batchSizeFileSuffix = "_batchsizes.txt"
    /// The file extensions read, in lower case.
    public static let extensions = ["smtx", "mtx"]

    /// Where a matrix's N came from.
    public enum TokensSource: String, Sendable, Equatable {
        /// Listed in a `<model>_batchsizes.txt` file.
        case batchSizeFile = "batch-size file"
        /// Not listed anywhere: the collection's default.
        case `default`
    }

    /// One matrix file.
    public struct Entry: Sendable, Equatable {
        /// The file, as found (the folder given plus the path below it).
        public var path: String
        /// `rn50`, `transformer`, … or `other`.
        public var model: String
        /// The pruning method folder (`magnitude_pruning`, …) or `other`.
        public var method: String
        /// The sparsity folder's value (the method's target; the file's own sparsity may differ), nil for `other`.
        public var nominalSparsity: Double?
        /// The file name without its extension.
        public var layer: String
        /// Columns of the dense operand this layer sees.
        public var tokens: Int
        public var tokensSource: TokensSource

        /// Reads the file's pattern (values nil for `.smtx` and Matrix Market `pattern` files).
        public func read() throws -> SparseMatrixData {
            path.lowercased().hasSuffix(".smtx") ? try SparseMatrixFile.readSMTX(contentsOf: path)
                                                 : try SparseMatrixFile.readMatrixMarket(contentsOf: path)
        }
    }

    public let directory: String
    /// Sorted by model, method, nominal sparsity, layer.
    public let entries: [Entry]
    /// N by layer name, per model, from every batch-size file found.
    public let batchSizes: [String: [String: Int]]
    /// The batch-size files read, by model.
    public let batchSizeFiles: [String: String]
    public let defaultTokens: Int

    /// Lists `directory`. Throws ``DataFileError`` when the folder is missing, holds no `.smtx` / `.mtx`
    /// file, or a batch-size file is malformed (the files themselves are read by ``Entry/read()``).
    public init(directory: String, defaultTokens: Int = standardDefaultTokens) throws {
        guard defaultTokens > 0 else { throw DataFileError.malformed(file: directory, reason: "default N must be positive, got \(defaultTokens)") }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DataFileError.io(file: directory, reason: "no such directory")
        }
        let subpaths: [String]
        do {
            subpaths = try FileManager.default.subpathsOfDirectory(atPath: directory).sorted()
        } catch {
            throw DataFileError.io(file: directory, reason: "cannot list (\(error))")
        }
        let root = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        var batchSizeFiles: [String: String] = [:]
        // Batch-size files in the folders above first, so that one inside the folder wins.
        var ancestor = URL(fileURLWithPath: root).standardizedFileURL.deletingLastPathComponent()
        var ancestors: [URL] = []
        while ancestor.path != "/" && !ancestor.path.isEmpty {
            ancestors.append(ancestor)
            ancestor = ancestor.deletingLastPathComponent()
        }
        for folder in ancestors.reversed() {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            for name in names.sorted() where name.hasSuffix(Self.batchSizeFileSuffix) {
                batchSizeFiles[String(name.dropLast(Self.batchSizeFileSuffix.count))] = folder.appendingPathComponent(name).path
            }
        }
        var matrixPaths: [String] = []
        for subpath in subpaths {
            let name = subpath.split(separator: "/").last.map(String.init) ?? subpath
            if name.hasSuffix(Self.batchSizeFileSuffix) {
                batchSizeFiles[String(name.dropLast(Self.batchSizeFileSuffix.count))] = root + "/" + subpath
            } else if let dot = name.lastIndex(of: "."), Self.extensions.contains(name[name.index(after: dot)...].lowercased()) {
                matrixPaths.append(root + "/" + subpath)
            }
        }
        guard !matrixPaths.isEmpty else { throw DataFileError.io(file: directory, reason: "no .smtx or .mtx files found (searched recursively)") }
        var batchSizes: [String: [String: Int]] = [:]
        for (model, file) in batchSizeFiles {
            batchSizes[model] = try Self.parseBatchSizes(String(decoding: try readFile(file), as: UTF8.self), name: file)
        }
        let absoluteRoot = URL(fileURLWithPath: root).standardizedFileURL.path
        let order = { (entry: Entry) in (entry.model, entry.method, entry.nominalSparsity ?? -1, entry.layer, entry.path) }
        entries = matrixPaths.map { path in
            Self.describe(path: path, absolutePath: absoluteRoot + path.dropFirst(root.count), batchSizes: batchSizes,
                          defaultTokens: defaultTokens)
        }.sorted { order($0) < order($1) }
        self.directory = directory
        self.batchSizes = batchSizes
        self.batchSizeFiles = batchSizeFiles
        self.defaultTokens = defaultTokens
    }

    /// What a path says about its matrix (see the type's comment); `absolutePath` supplies the folders
    /// above the one listed, so that listing `dlmc/rn50` still finds model `rn50`.
    public static func describe(path: String, absolutePath: String? = nil, batchSizes: [String: [String: Int]],
                                defaultTokens: Int = standardDefaultTokens) -> Entry {
        let components = (absolutePath ?? path).split(separator: "/").map(String.init)
        let file = components.last ?? path
        let layer = file.lastIndex(of: ".").map { String(file[..<$0]) } ?? file
        var (model, method, nominal): (String, String, Double?) = ("other", "other", nil)
        if components.count >= 4, let sparsity = Double(components[components.count - 2]), (0...1).contains(sparsity) {
            (model, method, nominal) = (components[components.count - 4], components[components.count - 3], sparsity)
        }
        var tokens = defaultTokens, source = TokensSource.default
        if let listed = batchSizes[model], let n = lookUp(layer, in: listed) {
            (tokens, source) = (n, .batchSizeFile)
        }
        return Entry(path: path, model: model, method: method, nominalSparsity: nominal, layer: layer, tokens: tokens, tokensSource: source)
    }

    /// A layer's N: by its name, or without DLMC's `_fully_connected` suffix (magnitude and random
    /// pruning folders add it to Transformer layer names).
    static func lookUp(_ layer: String, in sizes: [String: Int]) -> Int? {
        if let n = sizes[layer] { return n }
        let suffix = "_fully_connected"
        return layer.hasSuffix(suffix) ? sizes[String(layer.dropLast(suffix.count))] : nil
    }

    /// Parses `layer,N` lines (blank lines and `#` comments skipped). Throws naming the file and line for
    /// anything else, a non-positive N, or a layer listed twice with different N.
    public static func parseBatchSizes(_ text: String, name: String) throws -> [String: Int] {
        var sizes: [String: Int] = [:]
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let fields = trimmed.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count == 2, !fields[0].isEmpty, let n = Int(fields[1]), n > 0 else {
                throw DataFileError.malformed(file: name, reason: "line \(number + 1): expected 'layer,N' with N > 0, got '\(trimmed)'")
            }
            if let previous = sizes[fields[0]], previous != n {
                throw DataFileError.malformed(file: name, reason: "line \(number + 1): \(fields[0]) listed with N \(previous) and \(n)")
            }
            sizes[fields[0]] = n
        }
        return sizes
    }
}
