// bfloat16 storage (the upper 16 bits of an fp32) for the "_bf16" variants (-DSTORAGE_BF16=1). Vulkan
// has no bf16 texel format, so bf16 data is read through unsigned views (R16_UINT, R16G16B16A16_UINT:
// uniform-texel-buffer support for both is mandatory) or uint16_t storage buffers, and widened exactly
// by a 16-bit shift; results are rounded back to nearest, ties to even. Arithmetic stays fp32.
#ifndef BFLOAT16_GLSL
#define BFLOAT16_GLSL

float bf16ToFloat(uint bits) { return uintBitsToFloat(bits << 16); }
vec4 bf16ToFloat(uvec4 bits) { return uintBitsToFloat(bits << 16); }

// fp32 -> bf16 bits: round to nearest, ties to even (add just under half an ulp, plus one when the kept
// lsb is odd; overflow carries into the exponent and gives infinity). A NaN keeps its sign and the top of
// its payload and is made quiet, so it cannot round to infinity. Matches vkk_narrow_bf16 (CKernels).
uint floatToBF16(float v) {
    const uint bits = floatBitsToUint(v);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (bits >> 16) | 0x40u;
    return (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
}
uvec4 floatToBF16(vec4 v) {
    return uvec4(floatToBF16(v.x), floatToBF16(v.y), floatToBF16(v.z), floatToBF16(v.w));
}

// Float inputs read through texel views: declare them `uniform FloatTexels name;` and read with
// fetchFloats, which returns fp32 whatever the view holds. A samplerBuffer (R32F / R16F / RGBA32F /
// RGBA16F views), or with INPUT_BF16 (default: STORAGE_BF16) a usamplerBuffer of bf16 bits (R16UI /
// RGBA16UI views), widened on fetch.
#ifndef STORAGE_BF16
#define STORAGE_BF16 0
#endif
#ifndef INPUT_BF16
#define INPUT_BF16 STORAGE_BF16
#endif
#if INPUT_BF16
#define FloatTexels usamplerBuffer
vec4 fetchFloats(usamplerBuffer texels, int texel) { return bf16ToFloat(texelFetch(texels, texel)); }
#else
#define FloatTexels samplerBuffer
vec4 fetchFloats(samplerBuffer texels, int texel) { return texelFetch(texels, texel); }
#endif

#endif
