import CVulkan
import Synchronization

/// A logical device on one physical device: its compute queue, memory pools, pipelines and the
/// command resources batches reuse.
final class VulkanDevice: @unchecked Sendable {
    let instance: VulkanInstance
    let physical: VkPhysicalDevice
    let info: DeviceInfo
    let handle: VkDevice
    let vk: DeviceFunctions
    let queue: VkQueue
    let queueFamily: UInt32
    /// Holds `vkQueueSubmit`, which needs external synchronisation when several threads submit.
    let queueLock = Mutex(())
    /// Where tensors live: device-local memory, mapped when the device has unified memory.
    let tensorPool: MemoryPool
    /// Host-visible memory for staging copies; nil when tensors are mapped directly.
    let stagingPool: MemoryPool?
    let pipelines: PipelineCache
    private let spareResources = Mutex<[BatchResources]>([])

    init(instance: VulkanInstance, physical: VkPhysicalDevice, info: DeviceInfo, forceStaging: Bool) throws {
        self.instance = instance
        self.physical = physical
        let fn = instance.functions

        var familyCount: UInt32 = 0
        fn.getPhysicalDeviceQueueFamilyProperties(physical, &familyCount, nil)
        var families = [VkQueueFamilyProperties](repeating: VkQueueFamilyProperties(), count: Int(familyCount))
        fn.getPhysicalDeviceQueueFamilyProperties(physical, &familyCount, &families)
        let compute = families.indices.filter { families[$0].queueFlags & VK_QUEUE_COMPUTE_BIT.rawValue != 0 }
        // Prefer a family with timestamps; among those, a compute-only one (often an async compute engine).
        guard let family = compute.min(by: { a, b in
            let ka = (families[a].timestampValidBits == 0 ? 1 : 0, families[a].queueFlags & VK_QUEUE_GRAPHICS_BIT.rawValue != 0 ? 1 : 0)
            let kb = (families[b].timestampValidBits == 0 ? 1 : 0, families[b].queueFlags & VK_QUEUE_GRAPHICS_BIT.rawValue != 0 ? 1 : 0)
            return ka < kb
        }) else { throw VulkanError.noDevice("\(info.name) has no compute queue") }
        queueFamily = UInt32(family)
        var deviceInfo = info
        if families[family].timestampValidBits == 0 { deviceInfo.timestampPeriod = 0 }
        self.info = deviceInfo

        // Enable exactly the optional features the kernels use, where present.
        let supported = instance.features(physical, apiVersion: vkMakeAPIVersion(1, 3, 0))
        var enabled = VulkanInstance.Features()
        enabled.hasVulkan13 = supported.hasVulkan13
        enabled.core.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2
        enabled.v11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES
        enabled.v12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES
        enabled.v13.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES
        enabled.core.features.shaderInt16 = supported.core.features.shaderInt16
        enabled.core.features.shaderInt64 = supported.core.features.shaderInt64
        enabled.core.features.shaderFloat64 = supported.core.features.shaderFloat64
        enabled.v11.storageBuffer16BitAccess = supported.v11.storageBuffer16BitAccess
        enabled.v11.uniformAndStorageBuffer16BitAccess = supported.v11.uniformAndStorageBuffer16BitAccess
        enabled.v11.storagePushConstant16 = supported.v11.storagePushConstant16
        enabled.v12.shaderFloat16 = supported.v12.shaderFloat16
        enabled.v12.shaderInt8 = supported.v12.shaderInt8
        enabled.v12.storageBuffer8BitAccess = supported.v12.storageBuffer8BitAccess
        enabled.v12.uniformAndStorageBuffer8BitAccess = supported.v12.uniformAndStorageBuffer8BitAccess
        // Float atomics (NeRF training's hash-table gradient scatter) need their extension enabled too.
        var deviceExtensions: [String] = []
        if supported.hasAtomicFloat && supported.atomicFloat.shaderBufferFloat32AtomicAdd != 0 {
            enabled.hasAtomicFloat = true
            enabled.atomicFloat.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_ATOMIC_FLOAT_FEATURES_EXT
            enabled.atomicFloat.shaderBufferFloat32AtomicAdd = VkBool32(VK_TRUE)
            deviceExtensions.append(VulkanInstance.atomicFloatExtension)
        }
        if supported.hasVulkan13 {
            enabled.v13.subgroupSizeControl = supported.v13.subgroupSizeControl
            enabled.v13.computeFullSubgroups = supported.v13.computeFullSubgroups
        }
        var priority: Float = 1
        var queueInfo = VkDeviceQueueCreateInfo()
        queueInfo.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO
        queueInfo.queueFamilyIndex = queueFamily
        queueInfo.queueCount = 1
        var device: VkDevice?
        let result = withUnsafePointer(to: &priority) { priorityPointer in
            queueInfo.pQueuePriorities = priorityPointer
            return withUnsafePointer(to: &queueInfo) { queuePointer in
                withFeatureChain(&enabled) { features in
                    withCStringArray(deviceExtensions) { extensionNames in
                        var createInfo = VkDeviceCreateInfo()
                        createInfo.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO
                        createInfo.pNext = UnsafeRawPointer(features)
                        createInfo.queueCreateInfoCount = 1
                        createInfo.pQueueCreateInfos = queuePointer
                        createInfo.enabledExtensionCount = UInt32(deviceExtensions.count)
                        createInfo.ppEnabledExtensionNames = deviceExtensions.isEmpty ? nil : extensionNames
                        return fn.createDevice(physical, &createInfo, nil, &device)
                    }
                }
            }
        }
        try check(result, "vkCreateDevice (\(info.name))")
        handle = device!
        do {
            vk = try DeviceFunctions(instance: fn, device: handle)
        } catch {
            if let pointer = fn.getDeviceProcAddr(handle, "vkDestroyDevice") {
                unsafeBitCast(pointer, to: PFN_vkDestroyDevice.self)(handle, nil)
            }
            throw error
        }
        var queue: VkQueue?
        vk.getDeviceQueue(handle, queueFamily, 0, &queue)
        self.queue = queue!

        var memory = VkPhysicalDeviceMemoryProperties()
        fn.getPhysicalDeviceMemoryProperties(physical, &memory)
        let types = withUnsafeBytes(of: memory.memoryTypes) { Array($0.bindMemory(to: VkMemoryType.self).prefix(Int(memory.memoryTypeCount))) }
        // Every memory type a storage/texel buffer may use.
        var probe = VkBufferCreateInfo()
        probe.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO
        probe.size = 4096
        probe.usage = MemoryPool.bufferUsage
        var probeBuffer: VkBuffer?
        try check(vk.createBuffer(handle, &probe, nil, &probeBuffer), "vkCreateBuffer")
        var requirements = VkMemoryRequirements()
        vk.getBufferMemoryRequirements(handle, probeBuffer, &requirements)
        vk.destroyBuffer(handle, probeBuffer, nil)
        func findType(_ required: UInt32, preferring preferred: UInt32 = 0) -> UInt32? {
            let candidates = types.indices.filter {
                requirements.memoryTypeBits & (1 << UInt32($0)) != 0 && types[$0].propertyFlags & required == required
            }
            return (candidates.first { types[$0].propertyFlags & preferred == preferred } ?? candidates.first).map(UInt32.init)
        }
        let deviceLocal = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT.rawValue
        let hostCoherent = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT.rawValue | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT.rawValue
        let alignment = max(256, info.minStorageBufferOffsetAlignment, info.minTexelBufferOffsetAlignment, Int(requirements.alignment))
        let blockSize = 256 << 20
        let maxAllocation = info.maxMemoryAllocationSize > 0 ? info.maxMemoryAllocationSize : 1 << 30
        if info.unifiedMemory && !forceStaging, let unified = findType(deviceLocal | hostCoherent) {
            tensorPool = MemoryPool(name: "unified", device: handle, functions: vk, memoryTypeIndex: unified, hostVisible: true,
                                    alignment: alignment, blockSize: blockSize, maxAllocation: maxAllocation)
            stagingPool = nil
        } else {
            guard let local = findType(deviceLocal) ?? findType(0),
                  let staging = findType(hostCoherent, preferring: VK_MEMORY_PROPERTY_HOST_CACHED_BIT.rawValue) else {
                vk.destroyDevice(handle, nil)
                throw VulkanError.noSuitableMemory("storage buffers on \(info.name)")
            }
            tensorPool = MemoryPool(name: "device-local", device: handle, functions: vk, memoryTypeIndex: local, hostVisible: false,
                                    alignment: alignment, blockSize: blockSize, maxAllocation: maxAllocation)
            stagingPool = MemoryPool(name: "staging", device: handle, functions: vk, memoryTypeIndex: staging, hostVisible: true,
                                     alignment: alignment, blockSize: 64 << 20, maxAllocation: maxAllocation)
        }
        do {
            pipelines = try PipelineCache(device: handle, functions: vk, info: self.info)
        } catch {
            vk.destroyDevice(handle, nil)
            throw error
        }
    }

    deinit {
        _ = vk.deviceWaitIdle(handle)
        spareResources.withLock { spares in
            for resources in spares { resources.destroy(device: handle, vk: vk) }
            spares.removeAll()
        }
        // Pools and pipelines hold handles of this device: release them before it goes.
        releaseChildren()
        vk.destroyDevice(handle, nil)
    }

    /// Drops the pools and the pipeline cache ahead of `vkDestroyDevice` (Swift would destroy stored
    /// properties only after `deinit` returns).
    private func releaseChildren() {
        withExtendedLifetime((tensorPool, stagingPool, pipelines)) {}
        tensorPool.releaseAll()
        stagingPool?.releaseAll()
        pipelines.releaseAll()
    }

    func takeResources() throws -> BatchResources {
        if let spare = spareResources.withLock({ $0.popLast() }) { return spare }
        return try BatchResources(device: handle, vk: vk, queueFamily: queueFamily)
    }

    func recycle(_ resources: BatchResources) {
        do {
            try resources.reset(device: handle, vk: vk)
            spareResources.withLock { $0.append(resources) }
        } catch {
            resources.destroy(device: handle, vk: vk)
        }
    }
}

/// A command pool, one primary command buffer, a fence and the descriptor pools of one batch, reused
/// after the batch completes.
final class BatchResources: @unchecked Sendable {
    let commandPool: VkCommandPool
    let commandBuffer: VkCommandBuffer
    let fence: VkFence
    var descriptorPools: [VkDescriptorPool] = []
    var currentPool = 0
    var queryPool: VkQueryPool?
    static let queryCapacity = 1024
    static let setsPerPool: UInt32 = 256

    init(device: VkDevice, vk: DeviceFunctions, queueFamily: UInt32) throws {
        var poolInfo = VkCommandPoolCreateInfo()
        poolInfo.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO
        poolInfo.queueFamilyIndex = queueFamily
        var pool: VkCommandPool?
        try check(vk.createCommandPool(device, &poolInfo, nil, &pool), "vkCreateCommandPool")
        var allocateInfo = VkCommandBufferAllocateInfo()
        allocateInfo.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO
        allocateInfo.commandPool = pool
        allocateInfo.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY
        allocateInfo.commandBufferCount = 1
        var buffer: VkCommandBuffer?
        try check(vk.allocateCommandBuffers(device, &allocateInfo, &buffer), "vkAllocateCommandBuffers")
        var fenceInfo = VkFenceCreateInfo()
        fenceInfo.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO
        var fence: VkFence?
        try check(vk.createFence(device, &fenceInfo, nil, &fence), "vkCreateFence")
        commandPool = pool!
        commandBuffer = buffer!
        self.fence = fence!
    }

    /// A descriptor set for `layout`, from the current pool or a new one when it is full.
    func allocateSet(_ layout: VkDescriptorSetLayout, device: VkDevice, vk: DeviceFunctions) throws -> VkDescriptorSet {
        while true {
            if currentPool == descriptorPools.count { descriptorPools.append(try Self.makeDescriptorPool(device: device, vk: vk)) }
            var set: VkDescriptorSet?
            var layoutCopy: VkDescriptorSetLayout? = layout
            let result = withUnsafePointer(to: &layoutCopy) { layouts in
                var info = VkDescriptorSetAllocateInfo()
                info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO
                info.descriptorPool = descriptorPools[currentPool]
                info.descriptorSetCount = 1
                info.pSetLayouts = layouts
                return vk.allocateDescriptorSets(device, &info, &set)
            }
            if result == VK_SUCCESS, let set { return set }
            guard result == VK_ERROR_OUT_OF_POOL_MEMORY || result == VK_ERROR_FRAGMENTED_POOL else {
                throw VulkanError.call("vkAllocateDescriptorSets", result.rawValue)
            }
            currentPool += 1
        }
    }

    private static func makeDescriptorPool(device: VkDevice, vk: DeviceFunctions) throws -> VkDescriptorPool {
        var sizes = [
            VkDescriptorPoolSize(type: VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, descriptorCount: setsPerPool * 8),
            VkDescriptorPoolSize(type: VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, descriptorCount: setsPerPool * 8),
        ]
        var pool: VkDescriptorPool?
        try check(sizes.withUnsafeMutableBufferPointer { sizePointer in
            var info = VkDescriptorPoolCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO
            info.maxSets = setsPerPool
            info.poolSizeCount = UInt32(sizePointer.count)
            info.pPoolSizes = UnsafePointer(sizePointer.baseAddress)
            return vk.createDescriptorPool(device, &info, nil, &pool)
        }, "vkCreateDescriptorPool")
        return pool!
    }

    func queries(device: VkDevice, vk: DeviceFunctions) throws -> VkQueryPool {
        if let queryPool { return queryPool }
        var info = VkQueryPoolCreateInfo()
        info.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO
        info.queryType = VK_QUERY_TYPE_TIMESTAMP
        info.queryCount = UInt32(Self.queryCapacity)
        var pool: VkQueryPool?
        try check(vk.createQueryPool(device, &info, nil, &pool), "vkCreateQueryPool")
        queryPool = pool
        return pool!
    }

    func reset(device: VkDevice, vk: DeviceFunctions) throws {
        try check(vk.resetCommandPool(device, commandPool, 0), "vkResetCommandPool")
        for pool in descriptorPools { try check(vk.resetDescriptorPool(device, pool, 0), "vkResetDescriptorPool") }
        currentPool = 0
        var fenceCopy: VkFence? = fence
        try check(vk.resetFences(device, 1, &fenceCopy), "vkResetFences")
    }

    func destroy(device: VkDevice, vk: DeviceFunctions) {
        for pool in descriptorPools { vk.destroyDescriptorPool(device, pool, nil) }
        if let queryPool { vk.destroyQueryPool(device, queryPool, nil) }
        vk.destroyFence(device, fence, nil)
        vk.destroyCommandPool(device, commandPool, nil)
    }
}
