// sddmm_csr: sampled dense-dense product. For every stored entry j = (row, column) of a CSR pattern:
//   out[j] = alpha * dot(A[row, :], B[column, :]) + beta * out[j]
// with A M x K and B N x K dense, row-major (out = (A * B^T) sampled at the pattern). fp32 accumulation;
// fp16 storage of A, B and out in the "_f16" variant.
//
// Bindings (set 0)
//   0  entryRows  usamplerBuffer R32UI  the row of each stored entry (nnz values)
//   1  columns    usamplerBuffer R32UI  the column of each stored entry
//   2  A          samplerBuffer         RGBA32F/RGBA16F/RGBA16UI (bf16) when VEC4_LOADS = 1, else R32F/R16F/R16UI
//   3  B          samplerBuffer         same
//   4  out        storage buffer, read-write, float[] (float16_t[] for "_f16", uint16_t[] bf16 bits for "_bf16"), nnz values
//
// Push constants (20 bytes): nnz K alpha beta pad. beta == 0 never reads out.
//
// Specialization constants
//   0  GROUP_SIZE  8  local_size_x
//   1  VEC4_LOADS  1  rows read 4 values per fetch (needs K % 4 == 0)
//
// Work split: one invocation per stored entry, in storage order, so every invocation does the same
// K-long dot product whatever the row lengths (perfect load balance by construction).
//
// Dispatch: x = ceil(nnz / GROUP_SIZE) (wrapped into y when above the device's x limit: entry =
// (y * gl_NumWorkGroups.x + x) * GROUP_SIZE + local id).
#version 450
#extension GL_GOOGLE_include_directive : require

// @variant f16: -DSTORAGE_F16=1
// @variant bf16: -DSTORAGE_BF16=1

layout(constant_id = 0) const uint GROUP_SIZE = 8;
layout(constant_id = 1) const uint VEC4_LOADS = 1;
layout(local_size_x_id = 0) in;

layout(push_constant, std430) uniform Params { uint nnz; uint K; float alpha; float beta; uint pad; } p;

#include "bfloat16.glsl"   // FloatTexels, fetchFloats: fp32 / fp16 views, or bf16 bits (-DSTORAGE_BF16=1)
layout(set = 0, binding = 0) uniform usamplerBuffer entryRows;
layout(set = 0, binding = 1) uniform usamplerBuffer columns;
layout(set = 0, binding = 2) uniform FloatTexels matrixA;
layout(set = 0, binding = 3) uniform FloatTexels matrixB;
#define SPARSE_OUTPUT_BINDING 4
#include "sparse_output.glsl"

void main() {
    const uint entry = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * GROUP_SIZE + gl_LocalInvocationID.x;
    if (entry >= p.nnz) return;
    const uint row = texelFetch(entryRows, int(entry)).x;
    const uint column = texelFetch(columns, int(entry)).x;
    float sum = 0.0;
    if (VEC4_LOADS != 0u) {
        const uint a0 = (row * p.K) >> 2, b0 = (column * p.K) >> 2;
        vec4 partial = vec4(0.0);
        for (uint t = 0u; t < (p.K >> 2); ++t) partial = fma(fetchFloats(matrixA, int(a0 + t)), fetchFloats(matrixB, int(b0 + t)), partial);
        sum = partial.x + partial.y + partial.z + partial.w;
    } else {
        for (uint k = 0u; k < p.K; ++k) sum = fma(fetchFloats(matrixA, int(row * p.K + k)).x, fetchFloats(matrixB, int(column * p.K + k)).x, sum);
    }
    storeOutput(entry, sum);
}
