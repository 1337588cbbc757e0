import CVulkan
import Glibc
import Synchronization

/// Messages the Khronos validation layer reported, collected so tests can fail on any of them.
final class ValidationLog: Sendable {
    private let messages = Mutex<[String]>([])

    func append(_ message: String) { messages.withLock { $0.append(message) } }
    var all: [String] { messages.withLock { $0 } }
    func clear() { messages.withLock { $0.removeAll() } }
}

/// A `VkInstance` with its entry points and, when asked for, the validation layer and its messenger.
final class VulkanInstance: @unchecked Sendable {
    let loader: VulkanLoader
    let handle: VkInstance
    let functions: InstanceFunctions
    /// Non-nil when the validation layer is on.
    let validationLog: ValidationLog?
    private var messenger: VkDebugUtilsMessengerEXT?

    static let validationLayer = "VK_LAYER_KHRONOS_validation"

    init(validation: Bool) throws(VulkanError) {
        let loader: VulkanLoader
        switch VulkanLoader.open() {
        case .success(let opened): loader = opened
        case .failure(let error): throw error
        }
        self.loader = loader

        var layers: [String] = []
        var extensions: [String] = []
        var enableSyncValidation = false
        if validation {
            guard Self.layerNames(loader).contains(Self.validationLayer) else { throw .validationLayerMissing }
            layers.append(Self.validationLayer)
            extensions.append("VK_EXT_debug_utils")
            if Self.extensionNames(loader, layer: Self.validationLayer).contains("VK_EXT_validation_features") {
                extensions.append("VK_EXT_validation_features")
                enableSyncValidation = true
            }
        }

        var appInfo = VkApplicationInfo()
        appInfo.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO
        appInfo.apiVersion = vkMakeAPIVersion(1, 3, 0)
        var instance: VkInstance?
        let result: VkResult = "VulkanKernels".withCString { appName in
            appInfo.pApplicationName = appName
            return withCStringArray(layers) { layerPointers in
                withCStringArray(extensions) { extensionPointers in
                    var enabled: [VkValidationFeatureEnableEXT] = [VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT]
                    return enabled.withUnsafeMutableBufferPointer { enabledPointer in
                        var features = VkValidationFeaturesEXT()
                        features.sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT
                        features.enabledValidationFeatureCount = 1
                        features.pEnabledValidationFeatures = UnsafePointer(enabledPointer.baseAddress)
                        return withUnsafePointer(to: &features) { featuresPointer in
                            withUnsafePointer(to: &appInfo) { appPointer in
                                var info = VkInstanceCreateInfo()
                                info.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO
                                info.pNext = enableSyncValidation ? UnsafeRawPointer(featuresPointer) : nil
                                info.pApplicationInfo = appPointer
                                info.enabledLayerCount = UInt32(layers.count)
                                info.ppEnabledLayerNames = layerPointers
                                info.enabledExtensionCount = UInt32(extensions.count)
                                info.ppEnabledExtensionNames = extensionPointers
                                return loader.createInstance(&info, nil, &instance)
                            }
                        }
                    }
                }
            }
        }
        try check(result, "vkCreateInstance")
        guard let instance else { throw .call("vkCreateInstance", VK_ERROR_INITIALIZATION_FAILED.rawValue) }
        handle = instance
        do {
            functions = try InstanceFunctions(loader: loader, instance: instance)
        } catch {
            if let pointer = loader.getInstanceProcAddr(instance, "vkDestroyInstance") {
                unsafeBitCast(pointer, to: PFN_vkDestroyInstance.self)(instance, nil)
            }
            throw error
        }
        validationLog = validation ? ValidationLog() : nil
        if let log = validationLog { try installMessenger(log) }
    }

    deinit {
        if let messenger { functions.destroyDebugUtilsMessenger?(handle, messenger, nil) }
        functions.destroyInstance(handle, nil)
    }

    private func installMessenger(_ log: ValidationLog) throws(VulkanError) {
        guard let create = functions.createDebugUtilsMessenger else { throw .missingFunction("vkCreateDebugUtilsMessengerEXT") }
        var info = VkDebugUtilsMessengerCreateInfoEXT()
        info.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT
        info.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT.rawValue
            | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT.rawValue
        info.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT.rawValue
            | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT.rawValue
        info.pfnUserCallback = { _, _, data, userData in
            guard let userData, let message = data?.pointee.pMessage else { return VkBool32(VK_FALSE) }
            let log = Unmanaged<ValidationLog>.fromOpaque(userData).takeUnretainedValue()
            log.append(String(cString: message))
            return VkBool32(VK_FALSE)
        }
        // The instance owns the log for as long as the messenger can call back.
        info.pUserData = Unmanaged.passUnretained(log).toOpaque()
        var messenger: VkDebugUtilsMessengerEXT?
        try check(create(handle, &info, nil, &messenger), "vkCreateDebugUtilsMessengerEXT")
        self.messenger = messenger
    }

    static func layerNames(_ loader: VulkanLoader) -> Set<String> {
        var count: UInt32 = 0
        guard loader.enumerateInstanceLayerProperties(&count, nil) == VK_SUCCESS, count > 0 else { return [] }
        var properties = [VkLayerProperties](repeating: VkLayerProperties(), count: Int(count))
        guard loader.enumerateInstanceLayerProperties(&count, &properties) == VK_SUCCESS else { return [] }
        return Set(properties.prefix(Int(count)).map { fixedString($0.layerName) })
    }

    static func extensionNames(_ loader: VulkanLoader, layer: String) -> Set<String> {
        layer.withCString { layerName in
            var count: UInt32 = 0
            guard loader.enumerateInstanceExtensionProperties(layerName, &count, nil) == VK_SUCCESS else { return [] }
            var properties = [VkExtensionProperties](repeating: VkExtensionProperties(), count: Int(count))
            guard loader.enumerateInstanceExtensionProperties(layerName, &count, &properties) == VK_SUCCESS else { return [] }
            return Set(properties.prefix(Int(count)).map { fixedString($0.extensionName) })
        }
    }

    func physicalDevices() throws(VulkanError) -> [VkPhysicalDevice] {
        var count: UInt32 = 0
        try check(functions.enumeratePhysicalDevices(handle, &count, nil), "vkEnumeratePhysicalDevices")
        var devices = [VkPhysicalDevice?](repeating: nil, count: Int(count))
        try check(functions.enumeratePhysicalDevices(handle, &count, &devices), "vkEnumeratePhysicalDevices")
        return devices.prefix(Int(count)).compactMap { $0 }
    }

    func deviceExtensions(_ device: VkPhysicalDevice) -> Set<String> {
        var count: UInt32 = 0
        guard functions.enumerateDeviceExtensionProperties(device, nil, &count, nil) == VK_SUCCESS else { return [] }
        var properties = [VkExtensionProperties](repeating: VkExtensionProperties(), count: Int(count))
        guard functions.enumerateDeviceExtensionProperties(device, nil, &count, &properties) == VK_SUCCESS else { return [] }
        return Set(properties.prefix(Int(count)).map { fixedString($0.extensionName) })
    }

    /// Features the runtime may enable, as the device reports them.
    struct Features {
        var core = VkPhysicalDeviceFeatures2()
        var v11 = VkPhysicalDeviceVulkan11Features()
        var v12 = VkPhysicalDeviceVulkan12Features()
        var v13 = VkPhysicalDeviceVulkan13Features()
        var hasVulkan13 = false
        /// VK_EXT_shader_atomic_float's features, chained only when the device has the extension.
        var atomicFloat = VkPhysicalDeviceShaderAtomicFloatFeaturesEXT()
        var hasAtomicFloat = false
    }

    static let atomicFloatExtension = "VK_EXT_shader_atomic_float"

    func features(_ device: VkPhysicalDevice, apiVersion: UInt32) -> Features {
        var features = Features()
        features.hasVulkan13 = apiVersion >= vkMakeAPIVersion(1, 3, 0)
        features.core.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2
        features.v11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES
        features.v12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES
        features.v13.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES
        features.atomicFloat.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_ATOMIC_FLOAT_FEATURES_EXT
        features.hasAtomicFloat = deviceExtensions(device).contains(Self.atomicFloatExtension)
        withFeatureChain(&features) { functions.getPhysicalDeviceFeatures2(device, $0) }
        return features
    }

    func describe(_ device: VkPhysicalDevice, index: Int) -> DeviceInfo {
        var properties = VkPhysicalDeviceProperties()
        functions.getPhysicalDeviceProperties(device, &properties)
        let hasVulkan13 = properties.apiVersion >= vkMakeAPIVersion(1, 3, 0)
        var v11 = VkPhysicalDeviceVulkan11Properties()
        v11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES
        var v13 = VkPhysicalDeviceVulkan13Properties()
        v13.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_PROPERTIES
        withUnsafeMutablePointer(to: &v13) { v13Pointer in
            v11.pNext = hasVulkan13 ? UnsafeMutableRawPointer(v13Pointer) : nil
            withUnsafeMutablePointer(to: &v11) { v11Pointer in
                var properties2 = VkPhysicalDeviceProperties2()
                properties2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2
                properties2.pNext = UnsafeMutableRawPointer(v11Pointer)
                functions.getPhysicalDeviceProperties2(device, &properties2)
            }
        }
        let features = features(device, apiVersion: properties.apiVersion)
        var memory = VkPhysicalDeviceMemoryProperties()
        functions.getPhysicalDeviceMemoryProperties(device, &memory)
        let heaps = withUnsafeBytes(of: memory.memoryHeaps) { Array($0.bindMemory(to: VkMemoryHeap.self).prefix(Int(memory.memoryHeapCount))) }
        let types = withUnsafeBytes(of: memory.memoryTypes) { Array($0.bindMemory(to: VkMemoryType.self).prefix(Int(memory.memoryTypeCount))) }
        let deviceLocal = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT.rawValue
        let hostVisible = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT.rawValue | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT.rawValue
        let localHeapBytes = heaps.filter { $0.flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT.rawValue != 0 }.map { Int($0.size) }.max() ?? 0
        let unified = types.contains { $0.propertyFlags & (deviceLocal | hostVisible) == deviceLocal | hostVisible }
            && properties.deviceType != VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU
        let limits = properties.limits
        let kind: DeviceInfo.Kind = switch properties.deviceType {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: .discreteGPU
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: .integratedGPU
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: .virtualGPU
        case VK_PHYSICAL_DEVICE_TYPE_CPU: .cpu
        default: .other
        }
        let subgroupOps = v11.subgroupSupportedOperations
        let extensions = deviceExtensions(device)
        let version = properties.apiVersion
        return DeviceInfo(
            index: index,
            name: fixedString(properties.deviceName),
            kind: kind,
            apiVersion: "\(version >> 22).\((version >> 12) & 0x3ff).\(version & 0xfff)",
            driverVersion: properties.driverVersion,
            vendorID: properties.vendorID,
            maxStorageBufferRange: Int(limits.maxStorageBufferRange),
            maxTexelBufferElements: Int(limits.maxTexelBufferElements),
            maxMemoryAllocationSize: Int(v11.maxMemoryAllocationSize),
            maxComputeSharedMemorySize: Int(limits.maxComputeSharedMemorySize),
            maxComputeWorkGroupInvocations: Int(limits.maxComputeWorkGroupInvocations),
            maxComputeWorkGroupSize: [Int(limits.maxComputeWorkGroupSize.0), Int(limits.maxComputeWorkGroupSize.1), Int(limits.maxComputeWorkGroupSize.2)],
            maxComputeWorkGroupCount: [Int(limits.maxComputeWorkGroupCount.0), Int(limits.maxComputeWorkGroupCount.1), Int(limits.maxComputeWorkGroupCount.2)],
            maxPushConstantsSize: Int(limits.maxPushConstantsSize),
            minStorageBufferOffsetAlignment: Int(limits.minStorageBufferOffsetAlignment),
            minTexelBufferOffsetAlignment: Int(limits.minTexelBufferOffsetAlignment),
            subgroupSize: Int(v11.subgroupSize),
            minSubgroupSize: hasVulkan13 ? Int(v13.minSubgroupSize) : Int(v11.subgroupSize),
            maxSubgroupSize: hasVulkan13 ? Int(v13.maxSubgroupSize) : Int(v11.subgroupSize),
            timestampPeriod: Double(limits.timestampPeriod),
            deviceLocalHeapBytes: localHeapBytes,
            unifiedMemory: unified,
            supportsFloat16Arithmetic: features.v12.shaderFloat16 != 0,
            supports16BitStorage: features.v11.storageBuffer16BitAccess != 0,
            supports8BitStorage: features.v12.storageBuffer8BitAccess != 0,
            supportsSubgroupSizeControl: features.hasVulkan13 && features.v13.subgroupSizeControl != 0
                && features.v13.computeFullSubgroups != 0
                && (v13.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT.rawValue) != 0,
            supportsSubgroupShuffle: subgroupOps & VK_SUBGROUP_FEATURE_SHUFFLE_BIT.rawValue != 0,
            supportsSubgroupArithmetic: subgroupOps & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT.rawValue != 0,
            supportsCooperativeMatrix: extensions.contains("VK_KHR_cooperative_matrix"),
            supportsFloat32AtomicAdd: features.hasAtomicFloat && features.atomicFloat.shaderBufferFloat32AtomicAdd != 0)
    }
}

/// Links the feature structs into a `pNext` chain for the duration of `body`: core → 1.1 → 1.2 → 1.3 (when
/// the device has 1.3) → VK_EXT_shader_atomic_float (when it has the extension).
func withFeatureChain<R>(_ features: inout VulkanInstance.Features, _ body: (UnsafeMutablePointer<VkPhysicalDeviceFeatures2>) -> R) -> R {
    let has13 = features.hasVulkan13, hasAtomicFloat = features.hasAtomicFloat
    return withUnsafeMutablePointer(to: &features.atomicFloat) { atomicFloat in
        atomicFloat.pointee.pNext = nil
        let tail: UnsafeMutableRawPointer? = hasAtomicFloat ? UnsafeMutableRawPointer(atomicFloat) : nil
        return withUnsafeMutablePointer(to: &features.v13) { v13 in
            v13.pointee.pNext = tail
            return withUnsafeMutablePointer(to: &features.v12) { v12 in
                v12.pointee.pNext = has13 ? UnsafeMutableRawPointer(v13) : tail
                return withUnsafeMutablePointer(to: &features.v11) { v11 in
                    v11.pointee.pNext = UnsafeMutableRawPointer(v12)
                    return withUnsafeMutablePointer(to: &features.core) { core in
                        core.pointee.pNext = UnsafeMutableRawPointer(v11)
                        return body(core)
                    }
                }
            }
        }
    }
}

func vkMakeAPIVersion(_ major: UInt32, _ minor: UInt32, _ patch: UInt32) -> UInt32 {
    (major << 22) | (minor << 12) | patch
}

/// Reads a NUL-terminated fixed-size C char array (a tuple in Swift).
func fixedString<T>(_ tuple: T) -> String {
    withUnsafeBytes(of: tuple) { bytes in
        let chars = bytes.bindMemory(to: UInt8.self)
        let end = chars.firstIndex(of: 0) ?? chars.count
        return String(decoding: chars[..<end], as: UTF8.self)
    }
}

/// Calls `body` with a C array of C strings valid for its duration.
func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    let duplicates = strings.map { strdup($0) }
    defer { duplicates.forEach { free($0) } }
    let pointers = duplicates.map { UnsafePointer<CChar>($0) }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
}
