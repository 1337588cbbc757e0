import CVulkan

// MARK: - Dispatches and their descriptor sets

extension CommandBatch {
    /// Records one compute dispatch (Vulkan only). Ops call the typed `dispatch(_:_:push:groups:)` of their
    /// shader's generated interface (ShaderInterface.swift), which lands here.
    func dispatch(_ spec: KernelSpec, _ bindings: [BufferBinding], pushBytes push: [UInt8], groups: (Int, Int, Int)) throws {
        try record(spec, bindings, pushBytes: push, size: .groups(groups))
    }

    /// Records one compute dispatch whose workgroup counts the device reads at execution time from
    /// `arguments` (a `VkDispatchIndirectCommand`, three uint32 words x, y, z, at `byteOffset`), written
    /// by an earlier command of the batch or by the host (Vulkan only). A count of 0 on any axis makes it
    /// a no-op; counts past the device's `maxComputeWorkGroupCount` are the writer's error (the writer
    /// must clamp them). The barrier before it makes shader writes visible to the indirect read.
    func dispatchIndirect(_ spec: KernelSpec, _ bindings: [BufferBinding], pushBytes push: [UInt8], arguments: Storage, byteOffset: Int) throws {
        precondition(byteOffset >= 0 && byteOffset % 4 == 0 && byteOffset + 12 <= arguments.byteCount,
                     "\(spec.shader.name): indirect arguments at byte \(byteOffset) outside a \(arguments.byteCount)-byte buffer")
        try record(spec, bindings, pushBytes: push, size: .indirect(arguments, byteOffset))
    }

    /// How a recorded dispatch gets its workgroup counts.
    enum DispatchSize {
        case groups((Int, Int, Int))
        case indirect(Storage, Int)
    }

    private func record(_ spec: KernelSpec, _ bindings: [BufferBinding], pushBytes push: [UInt8], size: DispatchSize) throws {
        try ensureRecording(spec.shader.name)
        precondition(bindings.count == spec.bindings.count, "\(spec.shader.name): \(bindings.count) bindings for \(spec.bindings.count) slots")
        for (index, binding) in bindings.enumerated() {
            let texel = if case .texel = binding.kind { true } else { false }
            precondition(texel == (spec.bindings[index] == .uniformTexelBuffer),
                         "\(spec.shader.name) binding \(index): the view kind does not match the shader's declaration")
        }
        guard let device = context.device, let resources else { preconditionFailure("dispatch on the CPU backend") }
        let info = device.info
        var uses = bindings.map { ($0.storage, reads: $0.reads, writes: $0.writes) }
        switch size {
        case .groups(let groups):
            for (axis, count) in [groups.0, groups.1, groups.2].enumerated() where count > info.maxComputeWorkGroupCount[axis] {
                throw KernelError.exceedsDeviceLimit(op: spec.shader.name, what: "workgroup count[\(axis)]", value: count,
                                                     limit: info.maxComputeWorkGroupCount[axis])
            }
            guard groups.0 > 0, groups.1 > 0, groups.2 > 0 else { return }
        case .indirect(let arguments, _):
            guard arguments.allocation != nil else { preconditionFailure("host tensor as indirect arguments") }
            uses.append((arguments, reads: true, writes: false))
        }
        let pipeline = try device.pipelines.pipeline(for: spec)
        let set = try resources.allocateSet(pipeline.setLayout, device: device.handle, vk: device.vk)
        try writeDescriptors(set, bindings, device: device)
        barrierIfNeeded(uses, device: device, resources: resources)

        let commandBuffer = resources.commandBuffer
        device.vk.cmdBindPipeline(commandBuffer, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline.handle)
        var setCopy: VkDescriptorSet? = set
        device.vk.cmdBindDescriptorSets(commandBuffer, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline.layout, 0, 1, &setCopy, 0, nil)
        if !push.isEmpty {
            precondition(push.count == spec.pushConstantBytes, "push constants of \(spec.shader.name) do not match its spec")
            push.withUnsafeBytes { bytes in
                device.vk.cmdPushConstants(commandBuffer, pipeline.layout, VK_SHADER_STAGE_COMPUTE_BIT.rawValue, 0,
                                            UInt32(bytes.count), bytes.baseAddress)
            }
        }
        switch size {
        case .groups(let groups):
            device.vk.cmdDispatch(commandBuffer, UInt32(groups.0), UInt32(groups.1), UInt32(groups.2))
        case .indirect(let arguments, let byteOffset):
            let allocation = arguments.allocation!
            device.vk.cmdDispatchIndirect(commandBuffer, allocation.buffer, VkDeviceSize(allocation.offset + byteOffset))
            retained.append(arguments)
        }
        dispatchCount += 1
        retained.append(contentsOf: bindings.map(\.storage))
    }

    private func writeDescriptors(_ set: VkDescriptorSet, _ bindings: [BufferBinding], device: VulkanDevice) throws {
        let info = device.info
        var bufferInfos = [VkDescriptorBufferInfo](repeating: VkDescriptorBufferInfo(), count: bindings.count)
        var texelViews = [VkBufferView?](repeating: nil, count: bindings.count)
        for (index, binding) in bindings.enumerated() {
            guard let allocation = binding.storage.allocation else { preconditionFailure("host tensor bound to a dispatch") }
            precondition(binding.byteOffset >= 0 && binding.byteOffset + binding.byteCount <= allocation.size,
                         "binding outside its allocation")
            switch binding.kind {
            case .texel(let format, let texelBytes):
                precondition((allocation.offset + binding.byteOffset) % info.minTexelBufferOffsetAlignment == 0,
                             "texel view offset not aligned")
                // The range may run past the tensor's last element into its allocation's padding
                // (kernels bounds-check); it must be a whole number of texels within the device's limit.
                let texels = min((binding.byteCount + texelBytes - 1) / texelBytes,
                                 (allocation.size - binding.byteOffset) / texelBytes)
                guard texels <= info.maxTexelBufferElements else {
                    throw KernelError.exceedsDeviceLimit(op: "texel buffer view", what: "texels", value: texels,
                                                         limit: info.maxTexelBufferElements)
                }
                var viewInfo = VkBufferViewCreateInfo()
                viewInfo.sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO
                viewInfo.buffer = allocation.buffer
                viewInfo.format = format
                viewInfo.offset = VkDeviceSize(allocation.offset + binding.byteOffset)
                viewInfo.range = VkDeviceSize(max(texels, 1) * texelBytes)
                var view: VkBufferView?
                try check(device.vk.createBufferView(device.handle, &viewInfo, nil, &view), "vkCreateBufferView")
                views.append(view!)
                texelViews[index] = view
            default:
                guard binding.byteCount <= info.maxStorageBufferRange else {
                    throw KernelError.exceedsDeviceLimit(op: "storage buffer binding", what: "bytes", value: binding.byteCount,
                                                         limit: info.maxStorageBufferRange)
                }
                precondition((allocation.offset + binding.byteOffset) % info.minStorageBufferOffsetAlignment == 0,
                             "storage binding offset not aligned")
                bufferInfos[index] = VkDescriptorBufferInfo(buffer: allocation.buffer,
                                                            offset: VkDeviceSize(allocation.offset + binding.byteOffset),
                                                            range: VkDeviceSize(max(binding.byteCount, 4)))
            }
        }
        bufferInfos.withUnsafeBufferPointer { buffers in
            texelViews.withUnsafeBufferPointer { texels in
                var writes = bindings.indices.map { index -> VkWriteDescriptorSet in
                    var write = VkWriteDescriptorSet()
                    write.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET
                    write.dstSet = set
                    write.dstBinding = UInt32(index)
                    write.descriptorCount = 1
                    if case .texel = bindings[index].kind {
                        write.descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER
                        write.pTexelBufferView = texels.baseAddress! + index
                    } else {
                        write.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
                        write.pBufferInfo = buffers.baseAddress! + index
                    }
                    return write
                }
                device.vk.updateDescriptorSets(device.handle, UInt32(writes.count), &writes, 0, nil)
            }
        }
    }
}
