/// The typed boundary between Swift and GLSL. For every `Shaders/**/*.comp`, the ShaderEmbedder build
/// tool reads the compiled SPIR-V and generates `Shader.<identifier>` (an enum conforming to
/// ``ShaderInterface``): its variants, its bindings by the names the shader gives them, and its
/// push-constant block as a struct with the block's members, in offset order, with their GLSL names and
/// types. Ops build those structs with labelled initialisers, so a member added, removed, renamed,
/// moved or retyped in a shader changes the generated initialiser and the op no longer compiles: a
/// misplaced word fails the build, not a test.
enum Shader {}

/// One compiled build of a shader (the base build or a `// @variant`).
protocol ShaderVariant: Hashable, Sendable {
    var shader: EmbeddedShader { get }
}

/// The buffers of a shader's descriptor set 0, one stored property per binding, in binding order.
protocol ShaderBindings {
    /// Bindings 0, 1, 2, … in order.
    var ordered: [BufferBinding] { get }
}

/// A shader's push-constant block, laid out as its SPIR-V `Offset` decorations say.
protocol PushConstantBlock {
    /// The block's size in bytes (last member's offset plus its size).
    static var byteCount: Int { get }
    /// Stores every member at its offset; `bytes` holds `byteCount` bytes.
    func write(to bytes: UnsafeMutableRawBufferPointer)
}

/// Everything the host must agree on with one shader file, generated from its SPIR-V.
protocol ShaderInterface {
    associatedtype Variant: ShaderVariant
    associatedtype Bindings: ShaderBindings
    associatedtype PushConstants: PushConstantBlock
    /// The descriptor kind of each binding, in binding order.
    static var descriptorKinds: [DescriptorKind] { get }
}

/// A pipeline of one shader interface: a variant plus its specialization constants. Dispatches take
/// the bindings and push constants of the same interface, so they cannot be mixed up between shaders.
struct Kernel<Interface: ShaderInterface>: Sendable {
    let spec: KernelSpec

    init(_ variant: Interface.Variant, specialization: [UInt32] = [], requiredSubgroupSize: Int? = nil) {
        spec = KernelSpec(shader: variant.shader, bindings: Interface.descriptorKinds, pushConstantBytes: Interface.PushConstants.byteCount,
                          specialization: specialization, requiredSubgroupSize: requiredSubgroupSize)
    }
}

extension CommandBatch {
    /// Records one compute dispatch of `kernel` (Vulkan only).
    func dispatch<Interface>(_ kernel: Kernel<Interface>, _ bindings: Interface.Bindings, push: Interface.PushConstants,
                             groups: (Int, Int, Int)) throws {
        var bytes = [UInt8](repeating: 0, count: Interface.PushConstants.byteCount)
        bytes.withUnsafeMutableBytes { push.write(to: $0) }
        try dispatch(kernel.spec, bindings.ordered, pushBytes: bytes, groups: groups)
    }

    /// Records one dispatch of `kernel` whose workgroup counts the device reads from `arguments` at
    /// `byteOffset` (three uint32 words; see ``CommandBatch/dispatchIndirect(_:_:pushBytes:arguments:byteOffset:)``).
    func dispatchIndirect<Interface>(_ kernel: Kernel<Interface>, _ bindings: Interface.Bindings, push: Interface.PushConstants,
                                     arguments: Storage, byteOffset: Int) throws {
        var bytes = [UInt8](repeating: 0, count: Interface.PushConstants.byteCount)
        bytes.withUnsafeMutableBytes { push.write(to: $0) }
        try dispatchIndirect(kernel.spec, bindings.ordered, pushBytes: bytes, arguments: arguments, byteOffset: byteOffset)
    }
}
