// spmm_csr: C = alpha * A * B + beta * C with A sparse, by stored entries: CSR, or N:M ("_nm" variants,
// where the entries of a row come from its compressed values and the in-group position metadata, so
// the zeros of every group are skipped without being stored). LINEAR = 1 computes the linear-layer
// form Y = alpha * X * W^T + beta * Y instead: B is then X stored N x K and C is Y stored N x M.
// fp32 accumulation; fp16 storage of A's values, B and C in the "_f16" variants (-DSTORAGE_F16=1), bf16 in
// the "_bf16" variants (-DSTORAGE_BF16=1: bits read through unsigned texel views, bfloat16.glsl).
//
// Bindings (set 0)
//   0  rowPointers  usamplerBuffer R32UI   CSR row pointers (M + 1); unused by N:M
//   1  columns      usamplerBuffer         CSR: column indices, R32UI. N:M: in-group positions, R8UI
//   2  values       samplerBuffer R32F / R16F / R16UI (bf16 bits, "_bf16" variants)
//   3  rowOrder     usamplerBuffer R32UI   CSR rows by descending length (the load-balancing order); unused by N:M
//   4  B            samplerBuffer          RGBA32F/RGBA16F/RGBA16UI view when VEC4_LOADS = 1, else R32F/R16F/R16UI
//   5  C            storage buffer, read-write, float[] (float16_t[] for "_f16")
//
// Push constants (36 bytes): M N K rowsPerGroup nmN nmM groupsPerRow alpha beta. beta == 0 never reads C.
//
// Specialization constants
//   0  SUBGROUP_SIZE  8  local_size_x; the host requests this subgroup size. If the running subgroup does
//                        not match, every invocation reads the entries itself (correct, slower).
//   1  VEC4_PER_LANE  8  vec4 column pieces per lane (1..8): a workgroup covers 4 * SUBGROUP_SIZE * VEC4_PER_LANE columns
//   2  VEC4_LOADS     1  B rows are read 4 values per fetch (needs N % 4 == 0 and LINEAR != 1)
//   3  LINEAR         0  1: B is stored N x K and C is stored N x M (scalar loads and stores); 2: the linear
//                        form with X already transposed to K x N by transpose_tokens.comp (B read as for 0,
//                        C stored N x M)
//
// Work split: workgroup (x, y) computes columns [x * W, (x + 1) * W) of rowsPerGroup consecutive slots
// y * rowsPerGroup ...; a CSR slot names the row rowOrder[slot], so the longest rows run first and rows
// of similar length share a workgroup (the load balance for power-law row lengths). Lane l owns the
// vec4 column pieces n0 + 4 * (l + SUBGROUP_SIZE * q), q < VEC4_PER_LANE. Per SUBGROUP_SIZE entries of a
// row, lane l fetches entry l (column, value) and every lane gets each of them by subgroupShuffle (with
// constant indices, i.e. register permutes, when SUBGROUP_SIZE == 8); then each lane does VEC4_PER_LANE vec4 fetches of B and FMAs per entry.
// Workgroups whose columns all lie inside N with vec4 rows of B (and a matching 8-lane subgroup) run a loop
// of their own without per-piece checks; the others check every piece.
// Nothing outside A, B or C is read: lanes past N skip their loads, partial entry groups are counted.
//
// Dispatch: x = ceil(N / (4 * SUBGROUP_SIZE * VEC4_PER_LANE)), y = ceil(M / rowsPerGroup).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require

// @variant f16: -DSTORAGE_F16=1
// @variant bf16: -DSTORAGE_BF16=1
// @variant nm: -DNM_FORMAT=1
// @variant nm_f16: -DNM_FORMAT=1 -DSTORAGE_F16=1
// @variant nm_bf16: -DNM_FORMAT=1 -DSTORAGE_BF16=1

layout(constant_id = 0) const uint SUBGROUP_SIZE = 8;
layout(constant_id = 1) const uint VEC4_PER_LANE = 8;
layout(constant_id = 2) const uint VEC4_LOADS = 1;
layout(constant_id = 3) const uint LINEAR = 0;
layout(local_size_x_id = 0) in;

#ifndef NM_FORMAT
#define NM_FORMAT 0
#endif

layout(push_constant, std430) uniform Params {
    uint M; uint N; uint K; uint rowsPerGroup; uint nmN; uint nmM; uint groupsPerRow; float alpha; float beta;
} p;

#include "bfloat16.glsl"   // FloatTexels, fetchFloats: fp32 / fp16 views, or bf16 bits (-DSTORAGE_BF16=1)
layout(set = 0, binding = 0) uniform usamplerBuffer rowPointers;
layout(set = 0, binding = 1) uniform usamplerBuffer columns;
layout(set = 0, binding = 2) uniform FloatTexels values;
layout(set = 0, binding = 3) uniform usamplerBuffer rowOrder;
layout(set = 0, binding = 4) uniform FloatTexels matrixB;
#define SPARSE_OUTPUT_BINDING 5
#include "sparse_output.glsl"

vec4 acc[8];

// op(B)(k, n .. n + 3); lanes only ask for n < N.
vec4 loadB(uint k, uint n) {
    if (LINEAR == 1u) {
        vec4 r = vec4(0.0);
        for (uint i = 0u; i < 4u; ++i) if (n + i < p.N) r[i] = fetchFloats(matrixB, int((n + i) * p.K + k)).x;
        return r;
    }
    if (VEC4_LOADS != 0u) return fetchFloats(matrixB, int((k * p.N + n) >> 2));
    uint base = k * p.N;
    return vec4(fetchFloats(matrixB, int(base + n)).x, fetchFloats(matrixB, int(base + min(n + 1u, p.N - 1u))).x,
                fetchFloats(matrixB, int(base + min(n + 2u, p.N - 1u))).x, fetchFloats(matrixB, int(base + min(n + 3u, p.N - 1u))).x);
}

// Every index into acc is a constant after the macro unrolling (q < 8 is checked against the
// specialization constant, which the driver folds), so the accumulators stay in registers.
#define UNROLL8(X) X(0u) X(1u) X(2u) X(3u) X(4u) X(5u) X(6u) X(7u)
#define ADD_PIECE(q) if ((q) < VEC4_PER_LANE) { uint n = n0 + 4u * (lane + SUBGROUP_SIZE * (q)); \
    if (n < p.N) acc[q] = fma(vec4(value), loadB(column, n), acc[q]); }
// Interior workgroups (all columns inside N, vec4 rows): one texel fetch per piece, no checks.
#define ADD_PIECE_INTERIOR(q) if ((q) < VEC4_PER_LANE) \
    acc[q] = fma(vec4(value), fetchFloats(matrixB, int(rowTexel + lane + SUBGROUP_SIZE * (q))), acc[q]);

void addEntryInterior(uint column, float value, uint n0, uint lane) {
    const uint rowTexel = (column * p.N + n0) >> 2;
    UNROLL8(ADD_PIECE_INTERIOR)
}

// The checked path: every piece bounds-checked against N, B through loadB.
void addEntry(uint column, float value, uint n0, uint lane) {
    UNROLL8(ADD_PIECE)
}

// Entry j (start <= j < end) of the current row: its column and value.
void entryAt(uint row, uint j, out uint column, out float value) {
    value = fetchFloats(values, int(j)).x;
    if (NM_FORMAT != 0) {
        uint within = j - row * p.groupsPerRow * p.nmN;
        column = (within / p.nmN) * p.nmM + texelFetch(columns, int(j)).x;
    } else {
        column = texelFetch(columns, int(j)).x;
    }
}

void storePiece(uint row, uint n, vec4 value) {
    if (LINEAR != 0u) {
        for (uint i = 0u; i < 4u && n + i < p.N; ++i) storeOutput((n + i) * p.M + row, value[i]);
    } else {
        storeOutputRow4(row * p.N + n, min(4u, p.N - n), value, (p.N & 3u) == 0u);
    }
}

#define SHARED_ENTRY(s) if ((s) < count) addEntry(subgroupShuffle(myColumn, s), subgroupShuffle(myValue, s), n0, lane);
#define ENTRY_INTERIOR(s) addEntryInterior(subgroupShuffle(myColumn, s), subgroupShuffle(myValue, s), n0, lane);
#define SHARED_ENTRY_INTERIOR(s) if ((s) < count) addEntryInterior(subgroupShuffle(myColumn, s), subgroupShuffle(myValue, s), n0, lane);

// The entries [start, end) of the row in `slot` (CSR: the slot names the row through the length order).
void rowAt(uint slot, out uint row, out uint start, out uint end) {
    if (NM_FORMAT != 0) {
        row = slot;
        start = row * p.groupsPerRow * p.nmN;
        end = start + p.groupsPerRow * p.nmN;
    } else {
        row = texelFetch(rowOrder, int(slot)).x;
        start = texelFetch(rowPointers, int(row)).x;
        end = texelFetch(rowPointers, int(row + 1u)).x;
    }
}

#define CLEAR_PIECE(q) acc[q] = vec4(0.0);
#define STORE_PIECE(q) if ((q) < VEC4_PER_LANE) { uint n = n0 + 4u * (lane + SUBGROUP_SIZE * (q)); \
    if (n < p.N) storePiece(row, n, acc[q]); }

void main() {
    const uint lane = gl_LocalInvocationID.x;
    const uint n0 = gl_WorkGroupID.x * 4u * SUBGROUP_SIZE * VEC4_PER_LANE;
    const bool lanesMatch = gl_SubgroupSize == SUBGROUP_SIZE && gl_NumSubgroups == 1u;
    // Uniform across the workgroup.
    const bool interior = VEC4_LOADS != 0u && LINEAR != 1u && n0 + 4u * SUBGROUP_SIZE * VEC4_PER_LANE <= p.N;
    const uint firstSlot = gl_WorkGroupID.y * p.rowsPerGroup;
    const uint lastSlot = min(p.M, firstSlot + p.rowsPerGroup);
    uint row, start, end;
    // The paths are chosen once per workgroup: lavapipe runs both sides of a branch under a lane mask, even
    // a uniform one, and a loop whose mask is empty still runs one masked iteration, so a choice per row or
    // per entry costs the other path's fetches too (choosing per entry made this kernel ~1.7x slower at
    // 4096 x 4096, 90%, 256 columns).
    if (lanesMatch && interior && SUBGROUP_SIZE == 8u) {
        // Every column inside N and B read as vec4 rows: no per-piece checks.
        for (uint slot = firstSlot; slot < lastSlot; ++slot) {
            rowAt(slot, row, start, end);
            UNROLL8(CLEAR_PIECE)
            // Whole groups of 8 entries without guards (masked guards cost a blend per accumulator), then
            // the partial group, guarded (entries past the row end must not add 0 * B, which is NaN for inf).
            uint j0 = start;
            for (; j0 + 8u <= end; j0 += 8u) {
                uint myColumn;
                float myValue;
                entryAt(row, j0 + lane, myColumn, myValue);
                // Constant shuffle indices: register permutes on CPU drivers.
                ENTRY_INTERIOR(0u) ENTRY_INTERIOR(1u) ENTRY_INTERIOR(2u) ENTRY_INTERIOR(3u)
                ENTRY_INTERIOR(4u) ENTRY_INTERIOR(5u) ENTRY_INTERIOR(6u) ENTRY_INTERIOR(7u)
            }
            if (j0 < end) {
                uint myColumn = 0u;
                float myValue = 0.0;
                if (j0 + lane < end) entryAt(row, j0 + lane, myColumn, myValue);
                const uint count = end - j0;
                SHARED_ENTRY_INTERIOR(0u) SHARED_ENTRY_INTERIOR(1u) SHARED_ENTRY_INTERIOR(2u) SHARED_ENTRY_INTERIOR(3u)
                SHARED_ENTRY_INTERIOR(4u) SHARED_ENTRY_INTERIOR(5u) SHARED_ENTRY_INTERIOR(6u) SHARED_ENTRY_INTERIOR(7u)
            }
            UNROLL8(STORE_PIECE)
        }
    } else {
        for (uint slot = firstSlot; slot < lastSlot; ++slot) {
            rowAt(slot, row, start, end);
            UNROLL8(CLEAR_PIECE)
            if (lanesMatch) {
                for (uint j0 = start; j0 < end; j0 += SUBGROUP_SIZE) {
                    uint myColumn = 0u;
                    float myValue = 0.0;
                    if (j0 + lane < end) entryAt(row, j0 + lane, myColumn, myValue);
                    const uint count = min(SUBGROUP_SIZE, end - j0);
                    if (SUBGROUP_SIZE == 8u) {
                        SHARED_ENTRY(0u) SHARED_ENTRY(1u) SHARED_ENTRY(2u) SHARED_ENTRY(3u)
                        SHARED_ENTRY(4u) SHARED_ENTRY(5u) SHARED_ENTRY(6u) SHARED_ENTRY(7u)
                    } else {
                        for (uint s = 0u; s < count; ++s) addEntry(subgroupShuffle(myColumn, s), subgroupShuffle(myValue, s), n0, lane);
                    }
                }
            } else {
                for (uint j = start; j < end; ++j) {
                    uint column;
                    float value;
                    entryAt(row, j, column, value);
                    addEntry(column, value, n0, lane);
                }
            }
            UNROLL8(STORE_PIECE)
        }
    }
}
