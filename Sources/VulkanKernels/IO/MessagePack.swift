/// A MessagePack value (https://github.com/msgpack/msgpack/blob/master/spec.md), as instant-ngp's
/// snapshots use it (nlohmann::json's `to_msgpack`). Maps keep their key order.
///
/// Encoding always picks the smallest representation (as nlohmann does), and decoding keeps the
/// float32/float64 and signed/unsigned distinctions, so decode → encode reproduces any canonically
/// encoded document byte for byte.
public indirect enum MessagePack: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case float32(Float)
    case float64(Double)
    case string(String)
    case binary([UInt8])
    case array([MessagePack])
    case map([MessagePackPair])
    case ext(type: Int8, data: [UInt8])

    /// The value for string key `key` of a map.
    public subscript(key: String) -> MessagePack? {
        guard case .map(let pairs) = self else { return nil }
        return pairs.first { $0.key == .string(key) }?.value
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let v): Double(v)
        case .uint(let v): Double(v)
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: nil
        }
    }

    public var intValue: Int? {
        switch self {
        case .int(let v): Int(exactly: v)
        case .uint(let v): Int(exactly: v)
        case .float64(let v): Int(exactly: v)
        case .float32(let v): Int(exactly: v)
        default: nil
        }
    }

    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }

    /// Bit-exact equality (NaNs with equal bits are equal, 0.0 and −0.0 differ): what a round trip must keep.
    public static func == (lhs: MessagePack, rhs: MessagePack) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case let (.bool(a), .bool(b)): a == b
        case let (.int(a), .int(b)): a == b
        case let (.uint(a), .uint(b)): a == b
        case let (.float32(a), .float32(b)): a.bitPattern == b.bitPattern
        case let (.float64(a), .float64(b)): a.bitPattern == b.bitPattern
        case let (.string(a), .string(b)): a == b
        case let (.binary(a), .binary(b)): a == b
        case let (.array(a), .array(b)): a == b
        case let (.map(a), .map(b)): a == b
        case let (.ext(t1, d1), .ext(t2, d2)): t1 == t2 && d1 == d2
        default: false
        }
    }
}

public struct MessagePackPair: Sendable, Equatable {
    public var key: MessagePack
    public var value: MessagePack
    public init(_ key: MessagePack, _ value: MessagePack) { self.key = key; self.value = value }
}

/// Why a MessagePack document could not be read.
public struct MessagePackError: Error, CustomStringConvertible, Equatable {
    public let offset: Int
    public let reason: String
    public var description: String { "malformed MessagePack at byte \(offset): \(reason)" }
}

extension MessagePack {
    /// Nesting deeper than this is rejected (a crafted file must not overflow the stack).
    public static let maximumDepth = 128
    /// Values in one document decoded at most by default: each costs a few dozen bytes of memory, so a
    /// file of one-byte values must not cost fifty times its size (instant-ngp snapshots hold a few
    /// hundred values, their parameters and grids being single binary values).
    public static let defaultMaximumValues = 1 << 22

    /// Decodes one complete document; trailing bytes, truncation, invalid UTF-8, reserved type bytes,
    /// nesting beyond ``maximumDepth`` and more than `maximumValues` values throw ``MessagePackError``.
    public static func decode(_ bytes: [UInt8], maximumValues: Int = defaultMaximumValues) throws -> MessagePack {
        try bytes.withUnsafeBufferPointer { buffer in
            var reader = MessagePackReader(bytes: buffer, valuesLeft: maximumValues)
            let value = try reader.value(depth: 0)
            guard reader.position == buffer.count else {
                throw MessagePackError(offset: reader.position, reason: "\(buffer.count - reader.position) bytes after the document")
            }
            return value
        }
    }

    /// The canonical (smallest) encoding.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        append(to: &out)
        return out
    }

    private func append(to out: inout [UInt8]) {
        func big<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0) } }
        func header(_ count: Int, fix: UInt8?, fixLimit: Int, _ b8: UInt8?, _ b16: UInt8, _ b32: UInt8) {
            if let fix, count < fixLimit { out.append(fix | UInt8(count)) }
            else if let b8, count <= 0xff { out.append(b8); out.append(UInt8(count)) }
            else if count <= 0xffff { out.append(b16); big(UInt16(count)) }
            else { out.append(b32); big(UInt32(count)) }
        }
        func unsigned(_ v: UInt64) {
            if v < 0x80 { out.append(UInt8(v)) }
            else if v <= 0xff { out.append(0xcc); out.append(UInt8(v)) }
            else if v <= 0xffff { out.append(0xcd); big(UInt16(v)) }
            else if v <= 0xffff_ffff { out.append(0xce); big(UInt32(v)) }
            else { out.append(0xcf); big(v) }
        }
        switch self {
        case .null: out.append(0xc0)
        case .bool(let v): out.append(v ? 0xc3 : 0xc2)
        case .uint(let v): unsigned(v)
        case .int(let v):
            if v >= 0 { unsigned(UInt64(v)) }
            else if v >= -32 { out.append(UInt8(bitPattern: Int8(v))) }
            else if v >= -128 { out.append(0xd0); big(Int8(v)) }
            else if v >= -32768 { out.append(0xd1); big(Int16(v)) }
            else if v >= -2_147_483_648 { out.append(0xd2); big(Int32(v)) }
            else { out.append(0xd3); big(v) }
        case .float32(let v): out.append(0xca); big(v.bitPattern)
        case .float64(let v): out.append(0xcb); big(v.bitPattern)
        case .string(let s):
            let utf8 = Array(s.utf8)
            header(utf8.count, fix: 0xa0, fixLimit: 32, 0xd9, 0xda, 0xdb)
            out += utf8
        case .binary(let data):
            header(data.count, fix: nil, fixLimit: 0, 0xc4, 0xc5, 0xc6)
            out += data
        case .array(let items):
            header(items.count, fix: 0x90, fixLimit: 16, nil, 0xdc, 0xdd)
            for item in items { item.append(to: &out) }
        case .map(let pairs):
            header(pairs.count, fix: 0x80, fixLimit: 16, nil, 0xde, 0xdf)
            for pair in pairs { pair.key.append(to: &out); pair.value.append(to: &out) }
        case let .ext(type, data):
            let fixed: [Int: UInt8] = [1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8]
            if let code = fixed[data.count] { out.append(code) } else { header(data.count, fix: nil, fixLimit: 0, 0xc7, 0xc8, 0xc9) }
            out.append(UInt8(bitPattern: type))
            out += data
        }
    }
}

/// A bounds-checked cursor over the document: every read checks the remaining length first.
private struct MessagePackReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var position = 0
    /// Values still allowed (see ``MessagePack/decode(_:maximumValues:)``).
    var valuesLeft: Int
    let maximumValues: Int

    init(bytes: UnsafeBufferPointer<UInt8>, valuesLeft: Int) {
        self.bytes = bytes
        self.valuesLeft = valuesLeft
        maximumValues = valuesLeft
    }

    func fail(_ reason: String, at offset: Int? = nil) -> MessagePackError {
        MessagePackError(offset: offset ?? position, reason: reason)
    }

    mutating func take(_ count: Int, _ what: String) throws -> UnsafeBufferPointer<UInt8> {
        guard count >= 0, count <= bytes.count - position else {
            throw fail("truncated: \(what) needs \(count) bytes, \(bytes.count - position) left")
        }
        defer { position += count }
        return UnsafeBufferPointer(rebasing: bytes[position..<(position + count)])
    }

    mutating func integer<T: FixedWidthInteger>(_ type: T.Type, _ what: String) throws -> T {
        let raw = try take(MemoryLayout<T>.size, what)
        var value: T = 0
        // Bit patterns: `T(byte)` would trap for a signed T and a byte ≥ 0x80 (an int8 of −1).
        for byte in raw { value = value << 8 | T(truncatingIfNeeded: byte) }
        return value
    }

    mutating func length(_ width: Int, _ what: String) throws -> Int {
        switch width {
        case 1: Int(try integer(UInt8.self, what))
        case 2: Int(try integer(UInt16.self, what))
        default: Int(try integer(UInt32.self, what))
        }
    }

    mutating func value(depth: Int) throws -> MessagePack {
        guard depth < MessagePack.maximumDepth else { throw fail("nesting deeper than \(MessagePack.maximumDepth)") }
        guard valuesLeft > 0 else { throw fail("more than \(maximumValues) values (the decoder's maximumValues)") }
        valuesLeft -= 1
        let start = position
        let type = try take(1, "a type byte")[0]
        switch type {
        case 0x00...0x7f: return .uint(UInt64(type))
        case 0x80...0x8f: return try map(Int(type & 0x0f), depth)
        case 0x90...0x9f: return try array(Int(type & 0x0f), depth)
        case 0xa0...0xbf: return try string(Int(type & 0x1f), start)
        case 0xc0: return .null
        case 0xc2: return .bool(false)
        case 0xc3: return .bool(true)
        case 0xc4, 0xc5, 0xc6:
            let count = try length(1 << Int(type - 0xc4), "a binary length")
            return .binary(Array(try take(count, "binary data")))
        case 0xc7, 0xc8, 0xc9:
            let count = try length(1 << Int(type - 0xc7), "an ext length")
            let extType = Int8(bitPattern: try integer(UInt8.self, "an ext type"))
            return .ext(type: extType, data: Array(try take(count, "ext data")))
        case 0xca: return .float32(Float(bitPattern: try integer(UInt32.self, "a float32")))
        case 0xcb: return .float64(Double(bitPattern: try integer(UInt64.self, "a float64")))
        case 0xcc: return .uint(UInt64(try integer(UInt8.self, "a uint8")))
        case 0xcd: return .uint(UInt64(try integer(UInt16.self, "a uint16")))
        case 0xce: return .uint(UInt64(try integer(UInt32.self, "a uint32")))
        case 0xcf: return .uint(try integer(UInt64.self, "a uint64"))
        case 0xd0: return .int(Int64(try integer(Int8.self, "an int8")))
        case 0xd1: return .int(Int64(try integer(Int16.self, "an int16")))
        case 0xd2: return .int(Int64(try integer(Int32.self, "an int32")))
        case 0xd3: return .int(try integer(Int64.self, "an int64"))
        case 0xd4...0xd8:
            let extType = Int8(bitPattern: try integer(UInt8.self, "an ext type"))
            return .ext(type: extType, data: Array(try take(1 << Int(type - 0xd4), "ext data")))
        case 0xd9, 0xda, 0xdb: return try string(try length(1 << Int(type - 0xd9), "a string length"), start)
        case 0xdc, 0xdd: return try array(try length(type == 0xdc ? 2 : 4, "an array length"), depth)
        case 0xde, 0xdf: return try map(try length(type == 0xde ? 2 : 4, "a map length"), depth)
        case 0xe0...0xff: return .int(Int64(Int8(bitPattern: type)))
        default: throw fail("reserved type byte 0x\(String(type, radix: 16))", at: start)
        }
    }

    mutating func string(_ count: Int, _ start: Int) throws -> MessagePack {
        let raw = try take(count, "string data")
        guard let text = String(validating: raw, as: UTF8.self) else { throw fail("string is not valid UTF-8", at: start) }
        return .string(text)
    }

    mutating func array(_ count: Int, _ depth: Int) throws -> MessagePack {
        // Every element takes at least one byte: a length beyond what is left is a truncated file, not an allocation.
        guard count <= bytes.count - position else { throw fail("truncated: array of \(count) elements, \(bytes.count - position) bytes left") }
        guard count <= valuesLeft else { throw fail("array of \(count) elements: more than \(maximumValues) values (the decoder's maximumValues)") }
        var items: [MessagePack] = []
        items.reserveCapacity(count)
        for _ in 0..<count { items.append(try value(depth: depth + 1)) }
        return .array(items)
    }

    mutating func map(_ count: Int, _ depth: Int) throws -> MessagePack {
        guard count <= (bytes.count - position) / 2 else { throw fail("truncated: map of \(count) pairs, \(bytes.count - position) bytes left") }
        guard count <= valuesLeft / 2 else { throw fail("map of \(count) pairs: more than \(maximumValues) values (the decoder's maximumValues)") }
        var pairs: [MessagePackPair] = []
        pairs.reserveCapacity(count)
        for _ in 0..<count {
            let key = try value(depth: depth + 1)
            pairs.append(MessagePackPair(key, try value(depth: depth + 1)))
        }
        return .map(pairs)
    }
}
