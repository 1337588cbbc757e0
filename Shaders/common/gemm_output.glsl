// Output matrix C of the dense GEMM/GEMV shaders: set 0, binding 2, a read-write storage buffer of
// float, or of float16_t when the shader is compiled with -DSTORAGE_F16=1 (the "_f16" variants), or of
// uint16_t bf16 bits with -DSTORAGE_BF16=1 (the "_bf16" variants).
// The same binding is declared twice (scalar and vec4 views of the same memory) so that aligned rows
// are read and written four elements at a time; that aliasing is allowed for storage buffers.
// fp16 is a storage format only: every value is widened to fp32 before arithmetic, which needs
// storageBuffer16BitAccess but not shaderFloat16.
//
// gemmEpilogue applies alpha and beta (epilogue.glsl). beta == 0 never reads C, so C may hold NaN or
// garbage then.
#ifndef GEMM_OUTPUT_GLSL
#define GEMM_OUTPUT_GLSL

#include "epilogue.glsl"

#ifndef STORAGE_F16
#define STORAGE_F16 0
#endif

#ifndef STORAGE_BF16
#define STORAGE_BF16 0
#endif

#if STORAGE_BF16
// bf16 bits (-DSTORAGE_BF16=1): widened on load, rounded to nearest-even on store (bfloat16.glsl).
#extension GL_EXT_shader_16bit_storage : require
#include "bfloat16.glsl"
layout(set = 0, binding = 2, std430) buffer OutputScalars { uint16_t values[]; } outputC;
layout(set = 0, binding = 2, std430) buffer OutputVectors { u16vec4 values[]; } outputC4;
float loadC(uint i) { return bf16ToFloat(uint(outputC.values[i])); }
void storeC(uint i, float v) { outputC.values[i] = uint16_t(floatToBF16(v)); }
vec4 loadC4(uint i4) { return bf16ToFloat(uvec4(outputC4.values[i4])); }
void storeC4(uint i4, vec4 v) { outputC4.values[i4] = u16vec4(floatToBF16(v)); }
#elif STORAGE_F16
#extension GL_EXT_shader_16bit_storage : require
layout(set = 0, binding = 2, std430) buffer OutputScalars { float16_t values[]; } outputC;
layout(set = 0, binding = 2, std430) buffer OutputVectors { f16vec4 values[]; } outputC4;
float loadC(uint i) { return float(outputC.values[i]); }
void storeC(uint i, float v) { outputC.values[i] = float16_t(v); }
vec4 loadC4(uint i4) { return vec4(outputC4.values[i4]); }
void storeC4(uint i4, vec4 v) { outputC4.values[i4] = f16vec4(v); }
#else
layout(set = 0, binding = 2, std430) buffer OutputScalars { float values[]; } outputC;
layout(set = 0, binding = 2, std430) buffer OutputVectors { vec4 values[]; } outputC4;
float loadC(uint i) { return outputC.values[i]; }
void storeC(uint i, float v) { outputC.values[i] = v; }
vec4 loadC4(uint i4) { return outputC4.values[i4]; }
void storeC4(uint i4, vec4 v) { outputC4.values[i4] = v; }
#endif

// The element index of C(row, 0) of batch `batch`.
uint gemmOutputRow(uint batch, uint row) {
    return p.offsetC + batch * p.strideC + row * p.ldc;
}

// True when rows of C start on a 4-element boundary, so C(row, col..col+3) with col % 4 == 0 is one
// vec4 of outputC4. Uniform across the dispatch.
bool gemmOutputAligned() {
    return ((p.offsetC | p.strideC | p.ldc) & 3u) == 0u;
}

float gemmEpilogue(float accumulated, uint index) {
    float result;
    APPLY_EPILOGUE(result, accumulated, loadC(index));
    return result;
}

// Writes `count` (1..4) elements of one row of C starting at element `index`, where `acc` holds the
// accumulated op(A)*op(B) values. Takes the vec4 path when all four are inside the row and aligned.
void gemmStoreRow4(uint index, uint count, vec4 acc, bool aligned) {
    if (count == 4u && aligned && (index & 3u) == 0u) {
        vec4 result;
        APPLY_EPILOGUE(result, acc, loadC4(index >> 2));
        storeC4(index >> 2, result);
    } else {
        for (uint j = 0u; j < count; ++j) storeC(index + j, gemmEpilogue(acc[j], index + j));
    }
}

#endif
