/// An array read from a NumPy `.npy` file: shape, element type and the raw little-endian bytes.
///
/// Reads format versions 1.0–3.0 with `fortran_order: False` and element types `<f4`, `<f2`, `<i4`,
/// `<u4` and `|u1`, plus `<i8` (narrowed to int32; a value outside Int32's range is an error) and
/// `|b1` (booleans as uint8 0 / 1); anything else (float64, big-endian, Fortran order, object arrays)
/// is a clear ``DataFileError/unsupported(file:what:)``.
public struct NPYArray: Sendable, Equatable {
    public var shape: [Int]
    public var dtype: DType
    /// Row-major (C order) element bytes.
    public var bytes: [UInt8]

    public var count: Int { shape.reduce(1, *) }

    /// The elements as `Element`, which must match ``dtype``.
    public func values<Element: TensorElement>(as type: Element.Type = Element.self) throws -> [Element] {
        guard Element.dtype == dtype else {
            throw KernelError.dtypeMismatch(op: "NPYArray.values", expected: Element.dtype, got: dtype)
        }
        return bytes.withUnsafeBytes { Array($0.bindMemory(to: Element.self).prefix(count)) }
    }

    /// The elements widened or converted to `Float` (fp32, fp16, bf16, int32, uint32, uint8).
    public func floats() -> [Float] {
        bytes.withUnsafeBytes { raw in
            switch dtype {
            case .float32: Array(raw.bindMemory(to: Float.self).prefix(count))
            case .float16: raw.bindMemory(to: Float16.self).prefix(count).map(Float.init)
            case .bfloat16: raw.bindMemory(to: BFloat16.self).prefix(count).map(\.floatValue)
            case .int32: raw.bindMemory(to: Int32.self).prefix(count).map(Float.init)
            case .uint32: raw.bindMemory(to: UInt32.self).prefix(count).map(Float.init)
            case .uint8: raw.bindMemory(to: UInt8.self).prefix(count).map(Float.init)
            }
        }
    }
}

public enum NPY {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// Reads a `.npy` file (a regular file within `limits`; see ``ReadLimits``).
    public static func read(contentsOf path: String, limits: ReadLimits = .default) throws -> NPYArray {
        try read(bytes: readFile(path, limits: limits), name: path, limits: limits)
    }

    /// Reads `.npy` bytes (`name` appears in error messages). Non-finite values are kept as stored: a NaN
    /// weight or mask value may be meaningful, and the ops that take tensors check what they must.
    public static func read(bytes: [UInt8], name: String, limits: ReadLimits = .default) throws -> NPYArray {
        let raw = try readRaw(bytes: bytes, name: name, limits: limits)
        if raw.descr == "<i8" { return try narrowedInt64(raw, name: name) }
        if raw.descr == "|b1" {
            return NPYArray(shape: raw.shape, dtype: .uint8, bytes: raw.bytes.map { $0 == 0 ? 0 : 1 })
        }
        let dtype: DType = switch raw.descr {
        case "<f4": .float32
        case "<f2": .float16
        case "<i4": .int32
        case "<u4": .uint32
        case "|u1", "<u1": .uint8
        default: throw DataFileError.unsupported(file: name, what: "element type '\(raw.descr)' (fp32, fp16, int32, int64, uint32, uint8 and bool are read)")
        }
        guard raw.bytes.count == raw.count * dtype.byteSize else {
            throw DataFileError.truncated(file: name, needed: raw.count * dtype.byteSize, available: raw.bytes.count)
        }
        return NPYArray(shape: raw.shape, dtype: dtype, bytes: raw.bytes)
    }

    /// An int64 array as int32, refusing values outside Int32's range (sequence lengths, indices).
    private static func narrowedInt64(_ raw: RawArray, name: String) throws -> NPYArray {
        var narrowed = [Int32]()
        narrowed.reserveCapacity(raw.count)
        for index in 0..<raw.count {
            var value: Int64 = 0
            for byte in 0..<8 { value |= Int64(raw.bytes[index * 8 + byte]) << (8 * Int64(byte)) }
            guard let small = Int32(exactly: value) else {
                throw DataFileError.unsupported(file: name, what: "int64 value \(value) at element \(index) (outside Int32's range)")
            }
            narrowed.append(small)
        }
        return NPYArray(shape: raw.shape, dtype: .int32, bytes: narrowed.withUnsafeBytes { Array($0) })
    }

    /// An array of any fixed-size little-endian element type (`descr` as NumPy writes it, e.g. `<i8`).
    struct RawArray {
        var descr: String
        var shape: [Int]
        var bytes: [UInt8]
        var count: Int { shape.reduce(1, *) }
    }

    /// Parses the header and takes `count × itemsize` bytes, the item size read from `descr`'s digits.
    static func readRaw(bytes: [UInt8], name: String, limits: ReadLimits = .default) throws -> RawArray {
        var reader = ByteReader(bytes, file: name)
        guard Array(try reader.take(6)) == magic else { throw DataFileError.malformed(file: name, reason: "no \\x93NUMPY magic") }
        let major = try reader.littleEndian(UInt8.self)
        _ = try reader.littleEndian(UInt8.self)
        let headerLength: Int = switch major {
        case 1: Int(try reader.littleEndian(UInt16.self))
        case 2, 3: Int(try reader.littleEndian(UInt32.self))
        default: throw DataFileError.unsupported(file: name, what: "format version \(major)")
        }
        try limits.check(headerLength, \.maxHeaderBytes, file: name, field: "header length")
        let header = String(decoding: try reader.take(headerLength), as: UTF8.self)
        let descr = try field("descr", in: header, name: name)
        let fortran = try field("fortran_order", in: header, name: name)
        let shapeText = try field("shape", in: header, name: name)
        guard fortran == "False" else { throw DataFileError.unsupported(file: name, what: "Fortran-order array (save it C-ordered)") }
        let type = descr.trimmingCharacters(in: "'\"")
        guard let order = type.first, order == "<" || order == "|", let itemCount = Int(type.dropFirst(2)), itemCount > 0,
              itemCount <= 1 << 20 else {
            throw DataFileError.unsupported(file: name, what: "element type \(descr) (little-endian fixed-size types of at most 2^20 bytes are read)")
        }
        // NumPy's unicode strings ('<U3') hold 4 bytes per character.
        let itemSize = type.dropFirst().first == "U" ? 4 * itemCount : itemCount
        let inner = shapeText.trimmingCharacters(in: "()")
        var shape: [Int] = []
        for part in inner.split(separator: ",") {
            let text = String(part).trimmingCharacters(in: " ")
            if text.isEmpty { continue }
            guard let dimension = Int(text), dimension >= 0 else { throw DataFileError.malformed(file: name, reason: "shape \(shapeText)") }
            shape.append(dimension)
        }
        // The data must be in the file, so the byte count is bounded by the file's size once it is known
        // not to overflow.
        guard shape.count <= 64, let byteCount = checkedProduct(shape + [itemSize]) else {
            throw DataFileError.malformed(file: name, reason: "shape \(shapeText) × \(itemSize)-byte items overflows")
        }
        let data = try reader.take(byteCount)
        return RawArray(descr: type, shape: shape, bytes: Array(data))
    }

    /// Writes `values` with `shape` as a version 1.0 `.npy` file NumPy reads with `np.load`.
    public static func write<Element: TensorElement>(_ values: [Element], shape: [Int], to path: String) throws {
        try writeFile(try bytes(values, shape: shape), to: path)
    }

    public static func bytes<Element: TensorElement>(_ values: [Element], shape: [Int]) throws -> [UInt8] {
        guard shape.reduce(1, *) == values.count else { throw KernelError.countMismatch(expected: shape.reduce(1, *), got: values.count) }
        let descr = switch Element.dtype {
        case .float32: "<f4"
        case .float16: "<f2"
        // NumPy has no bfloat16 (ml_dtypes adds one outside the format's descr codes).
        case .bfloat16: throw KernelError.unsupportedDType(op: "NPY.write", .bfloat16)
        case .int32: "<i4"
        case .uint32: "<u4"
        case .uint8: "|u1"
        }
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        // Magic (6) + version (2) + length (2) + header + newline: a multiple of 64, as NumPy writes it.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var result = magic + [1, 0, UInt8(header.utf8.count & 0xff), UInt8(header.utf8.count >> 8)]
        result += Array(header.utf8)
        values.withUnsafeBytes { result += $0 }
        return result
    }

    /// The text after `'key':` up to the next top-level comma of the header dictionary.
    private static func field(_ key: String, in header: String, name: String) throws -> String {
        guard let range = header.firstRange(of: "'\(key)':") else { throw DataFileError.malformed(file: name, reason: "header has no '\(key)'") }
        var depth = 0
        var value = ""
        for character in header[range.upperBound...] {
            if character == "(" { depth += 1 }
            if character == ")" { depth -= 1 }
            if (character == "," && depth == 0) || character == "}" { break }
            value.append(character)
        }
        return value.trimmingCharacters(in: " ")
    }
}

extension ComputeContext {
    /// A tensor holding a `.npy` array, converted to `Element` (fp32 from any supported type; fp16 from fp16
    /// or fp32; otherwise the types must match).
    public func tensor<Element: TensorElement>(_ array: NPYArray, as type: Element.Type = Element.self) throws -> Tensor<Element> {
        if Element.dtype == array.dtype { return try tensor(try array.values(as: Element.self), shape: array.shape) }
        switch Element.self {
        case is Float.Type: return try tensor(array.floats() as! [Element], shape: array.shape)
        case is Float16.Type where array.dtype == .float32:
            return try tensor(array.floats().map { Float16($0) } as! [Element], shape: array.shape)
        default: throw KernelError.dtypeMismatch(op: "tensor(npy)", expected: Element.dtype, got: array.dtype)
        }
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        let characters = Set(set)
        var slice = Substring(self)
        while let first = slice.first, characters.contains(first) { slice.removeFirst() }
        while let last = slice.last, characters.contains(last) { slice.removeLast() }
        return String(slice)
    }
}
