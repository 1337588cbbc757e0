import CVulkan

/// A field's parameters uploaded to one context (made on first use, reused by every later dispatch;
/// kept in the context's ``ResidentCache``).
struct HashGridGPUResources: Sendable {
    let grid: Tensor<Float16>
    let weights: Tensor<Float16>
    let levels: Tensor<UInt32>
}

extension HashGridField {
    /// Records the fused encode + MLP kernel (Shaders/nerf/hashgrid_evaluate.comp) over `capacity` samples.
    func encodeEvaluate(into batch: CommandBatch, samples: Tensor<Float>, sampleCount: Tensor<UInt32>, capacity: Int,
                        output: Tensor<Float>, on device: VulkanDevice) throws {
        let context = batch.context
        let info = device.info
        let resources = try uploaded(to: context)
        let c = configuration
        let features = c.featuresPerLevel
        let gridTexels = resources.grid.count / min(features, 4)
        guard gridTexels <= info.maxTexelBufferElements, samples.count / 4 <= info.maxTexelBufferElements else {
            throw KernelError.exceedsDeviceLimit(op: "hashgrid", what: "texels in the grid table view", value: gridTexels,
                                                 limit: info.maxTexelBufferElements)
        }
        guard capacity * 16 <= info.maxStorageBufferRange else {
            throw KernelError.exceedsDeviceLimit(op: "hashgrid", what: "output bytes", value: capacity * 16, limit: info.maxStorageBufferRange)
        }
        let gridFormat: (VkFormat, Int) = switch features {
        case 1: (VK_FORMAT_R16_SFLOAT, 2)
        case 2: (VK_FORMAT_R16G16_SFLOAT, 4)
        default: (VK_FORMAT_R16G16B16A16_SFLOAT, 8)
        }
        // CPU drivers vectorise along x in groups of 8 and did best with small groups; GPUs want 64.
        let localSize = info.isCPUDriver ? 16 : 64
        let maxWidth = max(c.encodingWidth, c.densityWidth, c.colorWidth, 32)
        let kernel = Kernel<Shader.nerf_hashgrid_evaluate>(
            fixedShapeVariant ?? .base,
            specialization: [localSize, c.levels, features, c.encodingWidth, c.densityWidth,
                             c.densityHiddenLayers, c.colorWidth, c.colorHiddenLayers, maxWidth, colorActivation == .exponential ? 1 : 0].map { UInt32($0) })
        try batch.dispatch(kernel, .init(
            samples: BufferBinding(samples.storage, .texel(VK_FORMAT_R32G32B32A32_SFLOAT, texelBytes: 16), byteCount: capacity * 32),
            count: BufferBinding(sampleCount.storage, .storageRead, byteCount: 4),
            grid: BufferBinding(resources.grid.storage, .texel(gridFormat.0, texelBytes: gridFormat.1)),
            weights: BufferBinding(resources.weights.storage, .texel(VK_FORMAT_R16G16B16A16_SFLOAT, texelBytes: 8)),
            levels: BufferBinding(resources.levels.storage, .storageRead),
            output: BufferBinding(output.storage, .storageWrite, byteCount: capacity * 16)),
            push: .init(aabbLower: bounds.lower, capacity: UInt32(capacity), inverseSize: 1 / bounds.size, pad: 0),
            groups: Self.groups(capacity: capacity, localSize: localSize, maxX: info.maxComputeWorkGroupCount[0]))
    }

    /// Workgroups for `capacity` samples: a row of at most `maxX` groups, as many rows as needed.
    static func groups(capacity: Int, localSize: Int, maxX: Int) -> (Int, Int, Int) {
        let total = (capacity + localSize - 1) / localSize
        let x = min(total, maxX)
        return (x, (total + x - 1) / x, 1)
    }

    /// The compile-time-shaped variant for instant-ngp's standard networks, when this is one: all loops
    /// unrolled, activations in registers.
    var fixedShapeVariant: Shader.nerf_hashgrid_evaluate.Variant? {
        let c = configuration
        guard c.densityWidth == 64, c.densityHiddenLayers == 1, c.colorWidth == 64, c.colorHiddenLayers == 2 else { return nil }
        switch (c.levels, c.featuresPerLevel) {
        case (8, 4): return .l8f4
        case (16, 2): return .l16f2
        default: return nil
        }
    }

    /// Uploads the grid tables, MLP weights and level table to `context` once.
    func uploaded(to context: ComputeContext) throws -> HashGridGPUResources {
        try context.resident.value(for: self) {
            let c = configuration
            let split = c.gridParameterOffset
            let grid = try context.residentTensor(Array(parameters[split...]), shape: [c.gridParameterCount])
            let weights = try context.residentTensor(Array(parameters[..<split]), shape: [split])
            var table: [UInt32] = []
            for level in geometry {
                table += [UInt32(level.tableOffset), UInt32(level.tableSize), level.scale.bitPattern,
                          UInt32(level.resolution) | (level.isDense ? 0x8000_0000 : 0)]
            }
            let levels = try context.residentTensor(table, shape: [geometry.count, 4])
            return HashGridGPUResources(grid: grid, weights: weights, levels: levels)
        }
    }

}
