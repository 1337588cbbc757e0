import CVulkan

/// A failure of the Vulkan API or of the machine's Vulkan installation.
public enum VulkanError: Error, CustomStringConvertible, Equatable {
    /// A call returned something other than `VK_SUCCESS`.
    case call(String, Int32)
    /// No loader could be opened, or it lacks its entry point.
    case loaderUnavailable(String)
    /// The loader or driver does not provide a required entry point.
    case missingFunction(String)
    /// The loader found no physical device (no driver installed, or `VK_DRIVER_FILES` points at nothing).
    case noDevice(String)
    /// The requested device index does not exist.
    case deviceIndexOutOfRange(index: Int, count: Int)
    /// No memory type with the required properties.
    case noSuitableMemory(String)
    /// Validation was requested but `VK_LAYER_KHRONOS_validation` is not installed.
    case validationLayerMissing

    public var description: String {
        switch self {
        case let .call(name, result): "\(name) failed with \(Self.resultName(result)) (\(result))"
        case let .loaderUnavailable(why): "Vulkan unavailable: \(why)"
        case let .missingFunction(name): "the Vulkan loader or driver does not provide \(name)"
        case let .noDevice(why): "no Vulkan device: \(why)"
        case let .deviceIndexOutOfRange(index, count):
            "Vulkan device \(index) requested (VKK_DEVICE or .vulkan(deviceIndex:)), but only \(count) exist"
        case let .noSuitableMemory(what): "no Vulkan memory type for \(what)"
        case .validationLayerMissing:
            "VK_LAYER_KHRONOS_validation is not installed: apt-get install vulkan-validationlayers"
        }
    }

    static func resultName(_ result: Int32) -> String {
        switch result {
        case VK_NOT_READY.rawValue: "VK_NOT_READY"
        case VK_TIMEOUT.rawValue: "VK_TIMEOUT"
        case VK_INCOMPLETE.rawValue: "VK_INCOMPLETE"
        case VK_ERROR_OUT_OF_HOST_MEMORY.rawValue: "VK_ERROR_OUT_OF_HOST_MEMORY"
        case VK_ERROR_OUT_OF_DEVICE_MEMORY.rawValue: "VK_ERROR_OUT_OF_DEVICE_MEMORY"
        case VK_ERROR_INITIALIZATION_FAILED.rawValue: "VK_ERROR_INITIALIZATION_FAILED"
        case VK_ERROR_DEVICE_LOST.rawValue: "VK_ERROR_DEVICE_LOST"
        case VK_ERROR_MEMORY_MAP_FAILED.rawValue: "VK_ERROR_MEMORY_MAP_FAILED"
        case VK_ERROR_LAYER_NOT_PRESENT.rawValue: "VK_ERROR_LAYER_NOT_PRESENT"
        case VK_ERROR_EXTENSION_NOT_PRESENT.rawValue: "VK_ERROR_EXTENSION_NOT_PRESENT"
        case VK_ERROR_FEATURE_NOT_PRESENT.rawValue: "VK_ERROR_FEATURE_NOT_PRESENT"
        case VK_ERROR_INCOMPATIBLE_DRIVER.rawValue: "VK_ERROR_INCOMPATIBLE_DRIVER"
        case VK_ERROR_TOO_MANY_OBJECTS.rawValue: "VK_ERROR_TOO_MANY_OBJECTS"
        case VK_ERROR_FORMAT_NOT_SUPPORTED.rawValue: "VK_ERROR_FORMAT_NOT_SUPPORTED"
        case VK_ERROR_FRAGMENTED_POOL.rawValue: "VK_ERROR_FRAGMENTED_POOL"
        case VK_ERROR_OUT_OF_POOL_MEMORY.rawValue: "VK_ERROR_OUT_OF_POOL_MEMORY"
        default: "VkResult"
        }
    }
}

/// Checks a `VkResult`, turning anything but success into a thrown ``VulkanError`` naming the call.
@inline(__always)
func check(_ result: VkResult, _ call: @autoclosure () -> String) throws(VulkanError) {
    if result != VK_SUCCESS { throw VulkanError.call(call(), result.rawValue) }
}

/// Bad input to a kernel, detected before anything is dispatched.
public enum KernelError: Error, CustomStringConvertible, Equatable {
    /// Two operands whose shapes do not fit together.
    case shapeMismatch(op: String, lhs: [Int], rhs: [Int])
    /// A tensor of the wrong rank or shape for its role.
    case invalidShape(op: String, operand: String, shape: [Int], expected: String)
    /// Operands of different element types where one is required.
    case dtypeMismatch(op: String, expected: DType, got: DType)
    /// An element type the op does not implement.
    case unsupportedDType(op: String, DType)
    /// A tensor created by another ``ComputeContext``.
    case foreignTensor(op: String, operand: String)
    /// A tensor with no elements where the op needs some.
    case emptyTensor(op: String, operand: String)
    /// A scalar parameter that is NaN, infinite or out of its range.
    case invalidParameter(op: String, name: String, value: String)
    /// The data given to fill a tensor does not match its element count.
    case countMismatch(expected: Int, got: Int)
    /// The device lacks a feature the op needs (and no other path exists).
    case unsupportedOnDevice(op: String, feature: String)
    /// A size that does not fit the device's limits.
    case exceedsDeviceLimit(op: String, what: String, value: Int, limit: Int)

    public var description: String {
        switch self {
        case let .shapeMismatch(op, lhs, rhs): "\(op): shapes \(lhs) and \(rhs) do not match"
        case let .invalidShape(op, operand, shape, expected): "\(op): \(operand) has shape \(shape), expected \(expected)"
        case let .dtypeMismatch(op, expected, got): "\(op): expected element type \(expected), got \(got)"
        case let .unsupportedDType(op, dtype): "\(op): element type \(dtype) is not supported"
        case let .foreignTensor(op, operand): "\(op): \(operand) belongs to another ComputeContext"
        case let .emptyTensor(op, operand): "\(op): \(operand) has no elements"
        case let .invalidParameter(op, name, value): "\(op): invalid \(name) = \(value)"
        case let .countMismatch(expected, got): "tensor holds \(expected) elements but \(got) were given"
        case let .unsupportedOnDevice(op, feature): "\(op): the device does not support \(feature)"
        case let .exceedsDeviceLimit(op, what, value, limit): "\(op): \(what) = \(value) exceeds the device limit \(limit)"
        }
    }
}
