// spmv_csr: y = alpha * A * x + beta * y with A sparse by stored entries: CSR, N:M in the "_nm"
// variants (columns from the compressed values' in-group positions), or BSR in the "_bsr" variants
// (row r's entries are the r % B rows of its block row's blocks, B = nmM, read as one run per block). fp32 accumulation; fp16 storage
// of values, x and y in the "_f16" variants.
//
// Bindings (set 0)
//   0  rowPointers  usamplerBuffer R32UI   CSR row pointers (M + 1), BSR block-row pointers; unused by N:M
//   1  columns      usamplerBuffer         CSR: column indices, RGBA32UI (4 entries per texel); BSR: block
//                                          columns, R32UI. N:M: in-group positions, R8UI
//   2  values       samplerBuffer R32F / R16F / R16UI (bf16) (CSR: RGBA32F / RGBA16F / RGBA16UI, 4 entries per texel)
//   3  rowOrder     usamplerBuffer R32UI   CSR rows by descending length; unused by N:M
//   4  x            samplerBuffer R32F / R16F / R16UI (bf16) (K values)
//   5  y            storage buffer, read-write, float[] (float16_t[] for "_f16", uint16_t[] bf16 bits for "_bf16") (M values)
//
// Push constants (36 bytes): M K rowsPerGroup nmN nmM groupsPerRow alpha beta pad. beta == 0 never reads y.
//   BSR: nmM holds the block size.
//
// Specialization constants
//   0  SUBGROUP_SIZE  8  local_size_x; the host requests it.
//
// Work split: a workgroup (one subgroup) takes rowsPerGroup consecutive slots (CSR: row rowOrder[slot],
// longest rows first). For each row the lanes stride over its entries (N:M: lane l takes entries
// start + l, start + l + S, ...; CSR: texels of 4 entries, see main), each accumulating value * x[column],
// and subgroupAdd reduces them; a
// single dense row is therefore spread over all lanes of its workgroup. If the running subgroup does not
// match the workgroup, lane 0 computes each row alone.
//
// Dispatch: x = ceil(M / rowsPerGroup).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

// @variant f16: -DSTORAGE_F16=1
// @variant bf16: -DSTORAGE_BF16=1
// @variant nm: -DNM_FORMAT=1
// @variant nm_f16: -DNM_FORMAT=1 -DSTORAGE_F16=1
// @variant nm_bf16: -DNM_FORMAT=1 -DSTORAGE_BF16=1
// @variant bsr: -DBSR_FORMAT=1
// @variant bsr_f16: -DBSR_FORMAT=1 -DSTORAGE_F16=1
// @variant bsr_bf16: -DBSR_FORMAT=1 -DSTORAGE_BF16=1

layout(constant_id = 0) const uint SUBGROUP_SIZE = 8;
layout(local_size_x_id = 0) in;

#ifndef NM_FORMAT
#define NM_FORMAT 0
#endif
#ifndef BSR_FORMAT
#define BSR_FORMAT 0
#endif

layout(push_constant, std430) uniform Params {
    uint M; uint K; uint rowsPerGroup; uint nmN; uint nmM; uint groupsPerRow; float alpha; float beta; uint pad;
} p;

#include "bfloat16.glsl"   // FloatTexels, fetchFloats: fp32 / fp16 views, or bf16 bits (-DSTORAGE_BF16=1)
layout(set = 0, binding = 0) uniform usamplerBuffer rowPointers;
layout(set = 0, binding = 1) uniform usamplerBuffer columns;
layout(set = 0, binding = 2) uniform FloatTexels values;
layout(set = 0, binding = 3) uniform usamplerBuffer rowOrder;
layout(set = 0, binding = 4) uniform FloatTexels vectorX;
#define SPARSE_OUTPUT_BINDING 5
#include "sparse_output.glsl"

// Entry j of the current row times x at its column. CSR views hold 4 entries per texel.
float product(uint row, uint j) {
    uint column;
    float value;
    if (NM_FORMAT != 0) {
        uint within = j - row * p.groupsPerRow * p.nmN;
        column = (within / p.nmN) * p.nmM + texelFetch(columns, int(j)).x;
        value = fetchFloats(values, int(j)).x;
    } else {
        column = texelFetch(columns, int(j >> 2))[j & 3u];
        value = fetchFloats(values, int(j >> 2))[j & 3u];
    }
    return value * fetchFloats(vectorX, int(column)).x;
}

#if BSR_FORMAT
// Row `row` of a BSR matrix: its entries are, for each block j of the block row, the B values of the
// block's row row % B. Entry e (0 <= e < blocks * B) is block first + e / B, column e % B inside it.
float bsrProduct(uint row, uint first, uint e) {
    const uint B = p.nmM, block = first + e / B, c = e % B;
    const uint column = texelFetch(columns, int(block)).x * B + c;
    return fetchFloats(values, int((block * B + row % B) * B + c)).x * fetchFloats(vectorX, int(column)).x;
}
#endif

void main() {
    const uint lane = gl_LocalInvocationID.x;
    const bool lanesMatch = gl_SubgroupSize == SUBGROUP_SIZE && gl_NumSubgroups == 1u;
    const uint firstSlot = gl_WorkGroupID.x * p.rowsPerGroup;
    const uint lastSlot = min(p.M, firstSlot + p.rowsPerGroup);
    for (uint slot = firstSlot; slot < lastSlot; ++slot) {
        uint row, start, end;
#if BSR_FORMAT
        row = slot;
        const uint first = texelFetch(rowPointers, int(row / p.nmM)).x;
        const uint count = (texelFetch(rowPointers, int(row / p.nmM + 1u)).x - first) * p.nmM;
        float bsrSum = 0.0;
        if (lanesMatch) {
            for (uint e = lane; e < count; e += SUBGROUP_SIZE) bsrSum += bsrProduct(row, first, e);
            bsrSum = subgroupAdd(bsrSum);
            if (lane == 0u) storeOutput(row, bsrSum);
        } else if (lane == 0u) {
            for (uint e = 0u; e < count; ++e) bsrSum += bsrProduct(row, first, e);
            storeOutput(row, bsrSum);
        }
        continue;
#endif
        if (NM_FORMAT != 0) {
            row = slot;
            start = row * p.groupsPerRow * p.nmN;
            end = start + p.groupsPerRow * p.nmN;
        } else {
            row = texelFetch(rowOrder, int(slot)).x;
            start = texelFetch(rowPointers, int(row)).x;
            end = texelFetch(rowPointers, int(row + 1u)).x;
        }
        float sum = 0.0;
        if (lanesMatch) {
            if (NM_FORMAT == 0) {
                // CSR: lane l takes texels l, l + S, ... of the row, 4 entries each (fetches are what costs on
                // CPU drivers: this halves them). Entries of a texel before start or from end on belong to
                // other rows (or to the padding past the last entry, whose columns may be anything) and add
                // nothing.
                for (uint t = (start >> 2) + lane; 4u * t < end; t += SUBGROUP_SIZE) {
                    const uvec4 column = texelFetch(columns, int(t));
                    const vec4 value = fetchFloats(values, int(t));
                    for (uint i = 0u; i < 4u; ++i) {
                        const bool inside = 4u * t + i >= start && 4u * t + i < end;
                        const float xv = fetchFloats(vectorX, int(inside ? column[i] : 0u)).x;
                        sum += inside ? value[i] * xv : 0.0;
                    }
                }
            } else {
                for (uint j = start + lane; j < end; j += SUBGROUP_SIZE) sum += product(row, j);
            }
            sum = subgroupAdd(sum);
            if (lane == 0u) storeOutput(row, sum);
        } else if (lane == 0u) {
            for (uint j = start; j < end; ++j) sum += product(row, j);
            storeOutput(row, sum);
        }
    }
}
