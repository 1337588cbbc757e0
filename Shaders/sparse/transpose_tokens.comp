// transpose_tokens: Xt = X^T for the linear form of the CSR and BSR SpMM kernels. X is N x K (tokens x
// inputs), Xt is K x N, both row-major; N and K are multiples of 4. The SpMM kernels then read Xt as
// vec4 rows of B, one texel fetch per 4 columns, instead of 4 scalar fetches from 4 rows of X.
//
// Bindings (set 0)
//   0  X   samplerBuffer RGBA32F / RGBA16F
//   1  Xt  storage buffer, write: vec4[] (f16vec4[] in the "_f16" variant, -DSTORAGE_F16=1; u16vec4[] of
//          bf16 bits in "_bf16", -DSTORAGE_BF16=1, X then read through an RGBA16UI view)
//
// Push constants (8 bytes): N K.
//
// Specialization constants
//   0  LOCAL_SIZE  8   local_size_x (a multiple of 8 suits lavapipe, which vectorises along x)
//
// Invocation (x, y) moves the 4 x 4 block at rows 4y .. 4y + 3 and columns 4x .. 4x + 3 of X: 4 texel
// fetches, 4 vec4 stores. Invocations with 4x >= K do nothing.
//
// Dispatch: x = ceil(K / (4 * LOCAL_SIZE)), y = N / 4.
#version 450
#extension GL_GOOGLE_include_directive : require
#ifndef STORAGE_F16
#define STORAGE_F16 0
#endif
#ifndef STORAGE_BF16
#define STORAGE_BF16 0
#endif
#if STORAGE_F16 || STORAGE_BF16
#extension GL_EXT_shader_16bit_storage : require
#endif

// @variant f16: -DSTORAGE_F16=1
// @variant bf16: -DSTORAGE_BF16=1

layout(constant_id = 0) const uint LOCAL_SIZE = 8;
layout(local_size_x_id = 0) in;

layout(push_constant, std430) uniform Params { uint N; uint K; } p;

#include "bfloat16.glsl"   // FloatTexels, fetchFloats: fp32 / fp16 views, or bf16 bits (-DSTORAGE_BF16=1)
layout(set = 0, binding = 0) uniform FloatTexels tokens;
#if STORAGE_F16
layout(set = 0, binding = 1, std430) writeonly buffer Transposed { f16vec4 values[]; } transposed;
#define OUTPUT(x) f16vec4(x)
#elif STORAGE_BF16
// The widened bf16 values round back to the same bits (NaNs made quiet).
layout(set = 0, binding = 1, std430) writeonly buffer Transposed { u16vec4 values[]; } transposed;
#define OUTPUT(x) u16vec4(floatToBF16(x))
#else
layout(set = 0, binding = 1, std430) writeonly buffer Transposed { vec4 values[]; } transposed;
#define OUTPUT(x) (x)
#endif

void main() {
    const uint kTexel = gl_GlobalInvocationID.x, nBlock = gl_GlobalInvocationID.y;
    const uint kTexels = p.K >> 2, nTexels = p.N >> 2;
    if (kTexel >= kTexels) return;
    const vec4 r0 = fetchFloats(tokens, int((4u * nBlock) * kTexels + kTexel));
    const vec4 r1 = fetchFloats(tokens, int((4u * nBlock + 1u) * kTexels + kTexel));
    const vec4 r2 = fetchFloats(tokens, int((4u * nBlock + 2u) * kTexels + kTexel));
    const vec4 r3 = fetchFloats(tokens, int((4u * nBlock + 3u) * kTexels + kTexel));
    const uint out0 = (4u * kTexel) * nTexels + nBlock;
    transposed.values[out0] = OUTPUT(vec4(r0.x, r1.x, r2.x, r3.x));
    transposed.values[out0 + nTexels] = OUTPUT(vec4(r0.y, r1.y, r2.y, r3.y));
    transposed.values[out0 + 2u * nTexels] = OUTPUT(vec4(r0.z, r1.z, r2.z, r3.z));
    transposed.values[out0 + 3u * nTexels] = OUTPUT(vec4(r0.w, r1.w, r2.w, r3.w));
}
