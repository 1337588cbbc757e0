import CVulkan

/// One binding of a dispatch: a byte range of a tensor's storage and how the shader sees it.
struct BufferBinding {
    enum Kind {
        case storageRead, storageWrite, storageReadWrite
        /// A uniform texel buffer view (`samplerBuffer`) of the given format.
        case texel(VkFormat, texelBytes: Int)

        /// The texel view of fp32 (`half` false) or fp16 data, four elements per texel (`vec4`) or one.
        static func floatTexels(half: Bool, vec4: Bool) -> Kind {
            switch (half, vec4) {
            case (false, true): .texel(VK_FORMAT_R32G32B32A32_SFLOAT, texelBytes: 16)
            case (false, false): .texel(VK_FORMAT_R32_SFLOAT, texelBytes: 4)
            case (true, true): .texel(VK_FORMAT_R16G16B16A16_SFLOAT, texelBytes: 8)
            case (true, false): .texel(VK_FORMAT_R16_SFLOAT, texelBytes: 2)
            }
        }

        /// The texel view of fp32, fp16 or bf16 data. bf16 has no texel format: it is viewed as 16-bit
        /// unsigned integers (R16_UINT / R16G16B16A16_UINT, mandatory for uniform texel buffers) that the
        /// "_bf16" shader variants widen (Shaders/common/bfloat16.glsl).
        static func floatTexels(_ dtype: DType, vec4: Bool) -> Kind {
            guard dtype == .bfloat16 else { return floatTexels(half: dtype == .float16, vec4: vec4) }
            return vec4 ? .texel(VK_FORMAT_R16G16B16A16_UINT, texelBytes: 8) : .texel(VK_FORMAT_R16_UINT, texelBytes: 2)
        }
    }

    let storage: Storage
    let kind: Kind
    let byteOffset: Int
    let byteCount: Int

    init(_ storage: Storage, _ kind: Kind, byteOffset: Int = 0, byteCount: Int? = nil) {
        self.storage = storage
        self.kind = kind
        self.byteOffset = byteOffset
        self.byteCount = byteCount ?? (storage.byteCount - byteOffset)
    }

    var reads: Bool { if case .storageWrite = kind { false } else { true } }
    var writes: Bool {
        switch kind {
        case .storageWrite, .storageReadWrite: true
        default: false
        }
    }
}
