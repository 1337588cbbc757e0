import CVulkan
import FoundationEssentials
import Synchronization

/// SPIR-V compiled from `Shaders/**/*.comp` at build time and embedded in the library by the
/// ShaderCompiler plugin (one generated `static let` per shader and variant).
public struct EmbeddedShader: Sendable, Hashable, CustomStringConvertible {
    /// Path below `Shaders/` without `.comp`, plus `#variant` for define variants.
    public let name: String
    let base64: String

    init(name: String, base64: String) { self.name = name; self.base64 = base64 }

    public var description: String { name }
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.name == rhs.name }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }

    /// The SPIR-V words.
    func words() -> [UInt32] {
        guard let data = Data(base64Encoded: base64), data.count % 4 == 0 else {
            preconditionFailure("embedded shader \(name) is not base64 SPIR-V: the build plugin produced a bad file")
        }
        return data.withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
    }
}

/// The kind of resource behind one binding of a kernel's descriptor set 0.
enum DescriptorKind: Hashable, Sendable {
    case storageBuffer
    case uniformTexelBuffer

    var vkType: VkDescriptorType {
        switch self {
        case .storageBuffer: VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
        case .uniformTexelBuffer: VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER
        }
    }
}

/// Everything that makes one compute pipeline: the key of the pipeline cache.
struct KernelSpec: Hashable, Sendable {
    var shader: EmbeddedShader
    /// Descriptor kinds of bindings 0, 1, 2, … of set 0.
    var bindings: [DescriptorKind]
    var pushConstantBytes: Int
    /// Specialization constants 0, 1, 2, … as 32-bit words (bools as 0/1, floats by bit pattern).
    var specialization: [UInt32] = []
    /// Asks for this subgroup size (and full subgroups) where the device supports subgroup size control.
    var requiredSubgroupSize: Int? = nil
}

/// A created compute pipeline with its layouts.
final class Pipeline: @unchecked Sendable {
    let handle: VkPipeline
    let layout: VkPipelineLayout
    let setLayout: VkDescriptorSetLayout
    let spec: KernelSpec

    init(handle: VkPipeline, layout: VkPipelineLayout, setLayout: VkDescriptorSetLayout, spec: KernelSpec) {
        self.handle = handle; self.layout = layout; self.setLayout = setLayout; self.spec = spec
    }
}

/// Creates pipelines lazily from embedded SPIR-V and keeps them for the life of the device, keyed by
/// shader + bindings + specialization constants. Shader modules are shared across specializations.
final class PipelineCache: @unchecked Sendable {
    private struct State {
        var pipelines: [KernelSpec: Pipeline] = [:]
        var modules: [EmbeddedShader: VkShaderModule] = [:]
        var creations = 0
    }

    private let device: VkDevice
    private let vk: DeviceFunctions
    private let info: DeviceInfo
    private let cache: VkPipelineCache?
    private let state = Mutex(State())

    init(device: VkDevice, functions: DeviceFunctions, info: DeviceInfo) throws(VulkanError) {
        self.device = device; vk = functions; self.info = info
        var cacheInfo = VkPipelineCacheCreateInfo()
        cacheInfo.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO
        var cache: VkPipelineCache?
        try check(vk.createPipelineCache(device, &cacheInfo, nil, &cache), "vkCreatePipelineCache")
        self.cache = cache
    }

    /// Destroys every pipeline and module; called by the device just before `vkDestroyDevice`.
    func releaseAll() {
        state.withLock { state in
            for pipeline in state.pipelines.values {
                vk.destroyPipeline(device, pipeline.handle, nil)
                vk.destroyPipelineLayout(device, pipeline.layout, nil)
                vk.destroyDescriptorSetLayout(device, pipeline.setLayout, nil)
            }
            for module in state.modules.values { vk.destroyShaderModule(device, module, nil) }
            state.pipelines.removeAll()
            state.modules.removeAll()
        }
        vk.destroyPipelineCache(device, cache, nil)
    }

    /// Pipelines created so far (a cache hit creates none).
    var creationCount: Int { state.withLock { $0.creations } }

    func pipeline(for spec: KernelSpec) throws -> Pipeline {
        try state.withLock { state throws -> Pipeline in
            if let pipeline = state.pipelines[spec] { return pipeline }
            guard spec.pushConstantBytes <= info.maxPushConstantsSize else {
                throw KernelError.exceedsDeviceLimit(op: spec.shader.name, what: "push constant bytes",
                                                     value: spec.pushConstantBytes, limit: info.maxPushConstantsSize)
            }
            let module = try state.modules[spec.shader] ?? makeModule(spec.shader)
            state.modules[spec.shader] = module
            let pipeline = try makePipeline(spec, module: module)
            state.pipelines[spec] = pipeline
            state.creations += 1
            return pipeline
        }
    }

    private func makeModule(_ shader: EmbeddedShader) throws(VulkanError) -> VkShaderModule {
        let words = shader.words()
        var module: VkShaderModule?
        let result = words.withUnsafeBufferPointer { code in
            var moduleInfo = VkShaderModuleCreateInfo()
            moduleInfo.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO
            moduleInfo.codeSize = code.count * 4
            moduleInfo.pCode = code.baseAddress
            return vk.createShaderModule(device, &moduleInfo, nil, &module)
        }
        try check(result, "vkCreateShaderModule (\(shader.name))")
        return module!
    }

    private func makePipeline(_ spec: KernelSpec, module: VkShaderModule) throws(VulkanError) -> Pipeline {
        var layoutBindings = spec.bindings.enumerated().map { index, kind in
            var binding = VkDescriptorSetLayoutBinding()
            binding.binding = UInt32(index)
            binding.descriptorType = kind.vkType
            binding.descriptorCount = 1
            binding.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT.rawValue
            return binding
        }
        var setLayout: VkDescriptorSetLayout?
        try check(layoutBindings.withUnsafeMutableBufferPointer { bindings in
            var setInfo = VkDescriptorSetLayoutCreateInfo()
            setInfo.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO
            setInfo.bindingCount = UInt32(bindings.count)
            setInfo.pBindings = UnsafePointer(bindings.baseAddress)
            return vk.createDescriptorSetLayout(device, &setInfo, nil, &setLayout)
        }, "vkCreateDescriptorSetLayout")

        var range = VkPushConstantRange(stageFlags: VK_SHADER_STAGE_COMPUTE_BIT.rawValue, offset: 0,
                                        size: UInt32(spec.pushConstantBytes))
        var layout: VkPipelineLayout?
        let layoutResult = withUnsafePointer(to: &setLayout) { setLayouts in
            var layoutInfo = VkPipelineLayoutCreateInfo()
            layoutInfo.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO
            layoutInfo.setLayoutCount = 1
            layoutInfo.pSetLayouts = setLayouts
            layoutInfo.pushConstantRangeCount = spec.pushConstantBytes > 0 ? 1 : 0
            return withUnsafePointer(to: &range) { rangePointer in
                layoutInfo.pPushConstantRanges = rangePointer
                return vk.createPipelineLayout(device, &layoutInfo, nil, &layout)
            }
        }
        guard layoutResult == VK_SUCCESS else {
            vk.destroyDescriptorSetLayout(device, setLayout, nil)
            throw .call("vkCreatePipelineLayout", layoutResult.rawValue)
        }

        var entries = spec.specialization.indices.map {
            VkSpecializationMapEntry(constantID: UInt32($0), offset: UInt32($0 * 4), size: 4)
        }
        var values = spec.specialization
        var subgroupInfo = VkPipelineShaderStageRequiredSubgroupSizeCreateInfo()
        subgroupInfo.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO
        let useSubgroupSize = spec.requiredSubgroupSize.map {
            info.supportsSubgroupSizeControl && $0 >= info.minSubgroupSize && $0 <= info.maxSubgroupSize
        } ?? false
        subgroupInfo.requiredSubgroupSize = UInt32(spec.requiredSubgroupSize ?? 0)
        var pipeline: VkPipeline?
        let result = entries.withUnsafeMutableBufferPointer { entryPointer in
            values.withUnsafeMutableBytes { valueBytes in
                var specialization = VkSpecializationInfo(mapEntryCount: UInt32(entryPointer.count),
                                                          pMapEntries: UnsafePointer(entryPointer.baseAddress),
                                                          dataSize: valueBytes.count,
                                                          pData: UnsafeRawPointer(valueBytes.baseAddress))
                return withUnsafePointer(to: &specialization) { specializationPointer in
                    withUnsafePointer(to: &subgroupInfo) { subgroupPointer in
                        "main".withCString { entryName in
                            var stage = VkPipelineShaderStageCreateInfo()
                            stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO
                            stage.pNext = useSubgroupSize ? UnsafeRawPointer(subgroupPointer) : nil
                            stage.flags = useSubgroupSize ? VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT.rawValue : 0
                            stage.stage = VK_SHADER_STAGE_COMPUTE_BIT
                            stage.module = module
                            stage.pName = entryName
                            stage.pSpecializationInfo = spec.specialization.isEmpty ? nil : specializationPointer
                            var pipelineInfo = VkComputePipelineCreateInfo()
                            pipelineInfo.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO
                            pipelineInfo.stage = stage
                            pipelineInfo.layout = layout
                            return vk.createComputePipelines(device, cache, 1, &pipelineInfo, nil, &pipeline)
                        }
                    }
                }
            }
        }
        guard result == VK_SUCCESS, let pipeline else {
            vk.destroyPipelineLayout(device, layout, nil)
            vk.destroyDescriptorSetLayout(device, setLayout, nil)
            throw .call("vkCreateComputePipelines (\(spec.shader.name))", result.rawValue)
        }
        return Pipeline(handle: pipeline, layout: layout!, setLayout: setLayout!, spec: spec)
    }
}
