import FoundationEssentials

/// Named tensors read from a `.safetensors` file (the format PyTorch/Hugging Face use for weights):
/// an 8-byte little-endian header length, a JSON header mapping each name to its dtype, shape and byte
/// range, then the data. Element types F32, F16, I32, U32 and U8 are read; others are a clear error.
public struct SafeTensorsFile: Sendable {
    /// Tensors by name, each as an ``NPYArray`` (shape, dtype, C-order bytes).
    public var tensors: [String: NPYArray]
    /// The optional `__metadata__` string map.
    public var metadata: [String: String]

    /// Reads a regular file within `limits` (see ``ReadLimits``). Non-finite values are kept as stored (a
    /// NaN weight may be meaningful; the ops check what they must).
    public init(contentsOf path: String, limits: ReadLimits = .default) throws {
        try self.init(bytes: readFile(path, limits: limits), name: path, limits: limits)
    }

    public init(bytes: [UInt8], name: String, limits: ReadLimits = .default) throws {
        var reader = ByteReader(bytes, file: name)
        let headerLength = try reader.littleEndian(UInt64.self)
        try limits.check(Int(clamping: headerLength), \.maxHeaderBytes, file: name, field: "header length")
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw DataFileError.truncated(file: name, needed: 8 + Int(clamping: headerLength), available: bytes.count)
        }
        let header = try reader.take(Int(headerLength))
        let dataStart = reader.position
        let entries: [String: Entry]
        do {
            entries = try JSONDecoder().decode(Header.self, from: Data(header)).entries
        } catch {
            throw DataFileError.malformed(file: name, reason: "header is not the expected JSON (\(decodingMessage(error)))")
        }
        metadata = (try? JSONDecoder().decode(MetadataOnly.self, from: Data(header)).metadata) ?? [:]
        var tensors: [String: NPYArray] = [:]
        for (tensorName, entry) in entries {
            let dtype: DType = switch entry.dtype {
            case "F32": .float32
            case "F16": .float16
            case "BF16": .bfloat16
            case "I32": .int32
            case "U32": .uint32
            case "U8": .uint8
            default: throw DataFileError.unsupported(file: name, what: "tensor \(tensorName) has dtype \(entry.dtype)")
            }
            guard entry.shape.allSatisfy({ $0 >= 0 }), entry.data_offsets.count == 2 else {
                throw DataFileError.malformed(file: name, reason: "tensor \(tensorName): bad shape or data_offsets")
            }
            let (begin, end) = (entry.data_offsets[0], entry.data_offsets[1])
            guard entry.shape.count <= 64, let byteCount = checkedProduct(entry.shape + [dtype.byteSize]) else {
                throw DataFileError.malformed(file: name, reason: "tensor \(tensorName): shape \(entry.shape) × \(dtype) overflows")
            }
            guard begin >= 0, end >= begin, end - begin == byteCount else {
                throw DataFileError.malformed(file: name, reason: "tensor \(tensorName): data_offsets [\(begin), \(end)] do not hold \(entry.shape) × \(dtype)")
            }
            guard end <= bytes.count - dataStart else {
                throw DataFileError.truncated(file: name, needed: dataStart + end, available: bytes.count)
            }
            tensors[tensorName] = NPYArray(shape: entry.shape, dtype: dtype, bytes: Array(bytes[(dataStart + begin)..<(dataStart + end)]))
        }
        self.tensors = tensors
    }

    private struct Entry: Decodable {
        var dtype: String
        var shape: [Int]
        var data_offsets: [Int]
    }

    /// The header: every key but `__metadata__` is a tensor entry.
    private struct Header: Decodable {
        var entries: [String: Entry] = [:]

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: AnyKey.self)
            for key in container.allKeys where key.stringValue != "__metadata__" {
                entries[key.stringValue] = try container.decode(Entry.self, forKey: key)
            }
        }
    }

    private struct MetadataOnly: Decodable {
        var metadata: [String: String]?
        enum CodingKeys: String, CodingKey { case metadata = "__metadata__" }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// A `DecodingError` as one line: what was wrong and where (the coding path), without the underlying
/// Foundation error's dump.
func decodingMessage(_ error: any Error) -> String {
    guard let error = error as? DecodingError else { return "\(type(of: error))" }
    let context: DecodingError.Context
    switch error {
    case let .typeMismatch(_, c), let .valueNotFound(_, c), let .keyNotFound(_, c), let .dataCorrupted(c): context = c
    @unknown default: return "undecodable"
    }
    let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
    return (path.isEmpty ? "" : "at \(path): ") + context.debugDescription
}
