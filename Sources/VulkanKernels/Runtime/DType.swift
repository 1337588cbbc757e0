/// The element types a ``Tensor`` can hold.
public enum DType: String, Sendable, CustomStringConvertible, CaseIterable {
    case float32, float16, bfloat16, int32, uint32, uint8

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float32, .int32, .uint32: 4
        case .float16, .bfloat16: 2
        case .uint8: 1
        }
    }

    public var description: String { rawValue }
}

/// A Swift type that can be stored in a ``Tensor``.
public protocol TensorElement: BitwiseCopyable, Sendable {
    static var dtype: DType { get }
}

extension Float: TensorElement { public static var dtype: DType { .float32 } }
extension Float16: TensorElement { public static var dtype: DType { .float16 } }
extension BFloat16: TensorElement { public static var dtype: DType { .bfloat16 } }
extension Int32: TensorElement { public static var dtype: DType { .int32 } }
extension UInt32: TensorElement { public static var dtype: DType { .uint32 } }
extension UInt8: TensorElement { public static var dtype: DType { .uint8 } }

/// Floating-point element types that kernels compute on in fp32 (fp16 or bf16 storage, fp32 arithmetic).
public protocol FloatingPointElement: TensorElement, BinaryFloatingPoint {}
extension Float: FloatingPointElement {}
extension Float16: FloatingPointElement {}
extension BFloat16: FloatingPointElement {}

extension DType {
    /// True for the 16-bit floating-point storage types (fp16, bf16).
    var isHalfWidthFloat: Bool { self == .float16 || self == .bfloat16 }

    /// The shader variant holding this storage type: `base` for fp32, the "_f16" or "_bf16" variant.
    func storageVariant<Variant>(base: Variant, f16: Variant, bf16: Variant) -> Variant {
        switch self {
        case .float16: f16
        case .bfloat16: bf16
        default: base
        }
    }
}
