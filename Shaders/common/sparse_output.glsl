// The dense output of the sparse shaders: a read-write storage buffer at binding SPARSE_OUTPUT_BINDING
// (defined by the includer), float[], float16_t[] with -DSTORAGE_F16=1 or uint16_t[] bf16 bits with
// -DSTORAGE_BF16=1, declared as scalar and vec4
// views of the same memory. Expects push constants `p.alpha` and `p.beta` (epilogue.glsl); beta == 0 never
// reads it.
#ifndef SPARSE_OUTPUT_GLSL
#define SPARSE_OUTPUT_GLSL

#include "epilogue.glsl"

#ifndef STORAGE_F16
#define STORAGE_F16 0
#endif

#ifndef STORAGE_BF16
#define STORAGE_BF16 0
#endif

#if STORAGE_BF16
// bf16 bits: widened on load, rounded to nearest-even on store (bfloat16.glsl).
#extension GL_EXT_shader_16bit_storage : require
#include "bfloat16.glsl"
layout(set = 0, binding = SPARSE_OUTPUT_BINDING, std430) buffer SparseOutputScalars { uint16_t values[]; } sparseOutput;
layout(set = 0, binding = SPARSE_OUTPUT_BINDING, std430) buffer SparseOutputVectors { u16vec4 values[]; } sparseOutput4;
#define OUTPUT_SCALAR(x) uint16_t(floatToBF16(x))
#define OUTPUT_VECTOR(x) u16vec4(floatToBF16(x))
#define INPUT_SCALAR(x) bf16ToFloat(uint(x))
#define INPUT_VECTOR(x) bf16ToFloat(uvec4(x))
#elif STORAGE_F16
#extension GL_EXT_shader_16bit_storage : require
layout(set = 0, binding = SPARSE_OUTPUT_BINDING, std430) buffer SparseOutputScalars { float16_t values[]; } sparseOutput;
layout(set = 0, binding = SPARSE_OUTPUT_BINDING, std430) buffer SparseOutputVectors { f16vec4 values[]; } sparseOutput4;
#define OUTPUT_SCALAR(x) float16_t(x)
#define OUTPUT_VECTOR(x) f16vec4(x)
#define INPUT_SCALAR(x) float(x)
#define INPUT_VECTOR(x) vec4(x)
#else
layout(set = 0, binding = SPARSE_OUTPUT_BINDING, std430) buffer SparseOutputScalars { float values[]; } sparseOutput;
layout(set = 0, binding = SPARSE_OUTPUT_BINDING, std430) buffer SparseOutputVectors { vec4 values[]; } sparseOutput4;
#define OUTPUT_SCALAR(x) (x)
#define OUTPUT_VECTOR(x) (x)
#define INPUT_SCALAR(x) (x)
#define INPUT_VECTOR(x) (x)
#endif

// out[i] = alpha * v + beta * out[i]
void storeOutput(uint i, float v) {
    float result;
    APPLY_EPILOGUE(result, v, INPUT_SCALAR(sparseOutput.values[i]));
    sparseOutput.values[i] = OUTPUT_SCALAR(result);
}

// `count` (1..4) consecutive outputs from element i; one vec4 access when all 4 are there and aligned.
void storeOutputRow4(uint i, uint count, vec4 v, bool aligned) {
    if (count == 4u && aligned && (i & 3u) == 0u) {
        vec4 result;
        APPLY_EPILOGUE(result, v, INPUT_VECTOR(sparseOutput4.values[i >> 2]));
        sparseOutput4.values[i >> 2] = OUTPUT_VECTOR(result);
    } else {
        for (uint j = 0u; j < count; ++j) storeOutput(i + j, v[j]);
    }
}

#endif
