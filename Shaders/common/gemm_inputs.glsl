// Inputs A (binding 0) and B (binding 1) of the storage-buffer GEMM shaders (gemm_tiled, gemm_naive):
// read-only storage buffers of float, or of float16_t with -DSTORAGE_F16=1 (the "_f16" variants), or of
// uint16_t bf16 bits with -DSTORAGE_BF16=1 ("_bf16"; same switches as gemm_output.glsl, so A, B and C
// always share one dtype). Each binding is also declared
// as vec4s so that aligned runs of four elements are one load. Values are widened to fp32 on load.
#ifndef GEMM_INPUTS_GLSL
#define GEMM_INPUTS_GLSL

#ifndef STORAGE_F16
#define STORAGE_F16 0
#endif

#ifndef STORAGE_BF16
#define STORAGE_BF16 0
#endif

#if STORAGE_BF16
// bf16 bits (-DSTORAGE_BF16=1, the "_bf16" variants), widened on load (bfloat16.glsl).
#extension GL_EXT_shader_16bit_storage : require
#include "bfloat16.glsl"
layout(set = 0, binding = 0, std430) readonly buffer InputAScalars { uint16_t values[]; } inputA;
layout(set = 0, binding = 0, std430) readonly buffer InputAVectors { u16vec4 values[]; } inputA4;
layout(set = 0, binding = 1, std430) readonly buffer InputBScalars { uint16_t values[]; } inputB;
layout(set = 0, binding = 1, std430) readonly buffer InputBVectors { u16vec4 values[]; } inputB4;
float loadA(uint i) { return bf16ToFloat(uint(inputA.values[i])); }
float loadB(uint i) { return bf16ToFloat(uint(inputB.values[i])); }
vec4 loadA4(uint i4) { return bf16ToFloat(uvec4(inputA4.values[i4])); }
vec4 loadB4(uint i4) { return bf16ToFloat(uvec4(inputB4.values[i4])); }
#else
#if STORAGE_F16
#extension GL_EXT_shader_16bit_storage : require
layout(set = 0, binding = 0, std430) readonly buffer InputAScalars { float16_t values[]; } inputA;
layout(set = 0, binding = 0, std430) readonly buffer InputAVectors { f16vec4 values[]; } inputA4;
layout(set = 0, binding = 1, std430) readonly buffer InputBScalars { float16_t values[]; } inputB;
layout(set = 0, binding = 1, std430) readonly buffer InputBVectors { f16vec4 values[]; } inputB4;
#else
layout(set = 0, binding = 0, std430) readonly buffer InputAScalars { float values[]; } inputA;
layout(set = 0, binding = 0, std430) readonly buffer InputAVectors { vec4 values[]; } inputA4;
layout(set = 0, binding = 1, std430) readonly buffer InputBScalars { float values[]; } inputB;
layout(set = 0, binding = 1, std430) readonly buffer InputBVectors { vec4 values[]; } inputB4;
#endif

float loadA(uint i) { return float(inputA.values[i]); }
float loadB(uint i) { return float(inputB.values[i]); }
vec4 loadA4(uint i4) { return vec4(inputA4.values[i4]); }   // elements 4*i4 .. 4*i4 + 3
vec4 loadB4(uint i4) { return vec4(inputB4.values[i4]); }
#endif

#endif
