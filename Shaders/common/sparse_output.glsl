// The dense output of the sparse shaders: a read-write storage buffer at binding SPARSE_OUTPUT_BINDING
// (defined by the includer), float[] or float16_t[] with -DSTORAGE_F16=1, declared as scalar and vec4
// views of the same memory. Expects push constants `p.alpha` and `p.beta` (epilogue.glsl); beta == 0 never
// reads it.
#ifndef SPARSE_OUTPUT_GLSL
#define SPARSE_OUTPUT_GLSL

#include "epilogue.glsl"

#ifndef STORAGE_F16
#define STORAGE_F16 0
#endif

#if STORAGE_F16
#extension GL_EXT_shader_16bit_storage : require
layout(set = 0, binding = SPARSE_OUTPUT_BINDING, std430) buffer SparseOutputScalars { float16_t values[]; } sparseOutput;
layout(set = 0, binding = SPARSE_OUTPUT_BINDING, std430) buffer SparseOutputVectors { f16vec4 values[]; } sparseOutput4;
#define OUTPUT_SCALAR(x) float16_t(x)
#define OUTPUT_VECTOR(x) f16vec4(x)
#else
layout(set = 0, binding = SPARSE_OUTPUT_BINDING, std430) buffer SparseOutputScalars { float values[]; } sparseOutput;
layout(set = 0, binding = SPARSE_OUTPUT_BINDING, std430) buffer SparseOutputVectors { vec4 values[]; } sparseOutput4;
#define OUTPUT_SCALAR(x) (x)
#define OUTPUT_VECTOR(x) (x)
#endif

// out[i] = alpha * v + beta * out[i]
void storeOutput(uint i, float v) {
    float result;
    APPLY_EPILOGUE(result, v, float(sparseOutput.values[i]));
    sparseOutput.values[i] = OUTPUT_SCALAR(result);
}

// `count` (1..4) consecutive outputs from element i; one vec4 access when all 4 are there and aligned.
void storeOutputRow4(uint i, uint count, vec4 v, bool aligned) {
    if (count == 4u && aligned && (i & 3u) == 0u) {
        vec4 result;
        APPLY_EPILOGUE(result, v, vec4(sparseOutput4.values[i >> 2]));
        sparseOutput4.values[i >> 2] = OUTPUT_VECTOR(result);
    } else {
        for (uint j = 0u; j < count; ++j) storeOutput(i + j, v[j]);
    }
}

#endif
