// gemv: the N = 1 case of dense GEMM, y = alpha * op(A) * x + beta * y. Memory bound: the aim is to
// stream A once, contiguously, four elements per fetch.
//
//   C_b = alpha * op(A_b) * op(B_b) + beta * C_b,   b = gl_WorkGroupID.z, with N = 1 (p.N is ignored):
//   op(A) is M x K (A stored M x K, or K x M when TRANS_A), x = op(B) is K x 1 (B stored K x 1 with
//   row stride ldb, or 1 x K, contiguous, when TRANS_B), y = C is M x 1 with row stride ldc.
//   Accumulation is fp32.
//
// Bindings (set 0)
//   0  A  uniform FloatTexels  RGBA32F/RGBA16F/RGBA16UI (bf16) view when VEC4_LOADS = 1, R32F/R16F/R16UI when 0
//   1  x  uniform FloatTexels  same format rule as A
//   2  y  storage buffer, read-write: float[], or float16_t[] in the "_f16" variant (-DSTORAGE_F16=1), uint16_t[] bf16 bits in "_bf16"
//   A texel view must cover every texel that holds an element of the matrix (round a 4-channel view's
//   range up to 16 bytes).
// Push constants: GemmParams (Shaders/common/gemm_params.glsl, 56 bytes). beta == 0 never reads y;
//   K == 0 gives y = beta * y.
//
// Specialization constants
//   0  TRANS_A     0  1: A is stored K x M
//   1  TRANS_B     0  1: x is stored as a row (1 x K, element k at offsetB + k)
//   2  VEC4_LOADS  1  1: 4-channel views. Requires offsetA, offsetB, lda, strideA, strideB multiples
//                     of 4 (M, K, ldb, ldc may be anything; a strided x, ldb != 1 without TRANS_B, is
//                     read element by element). 0: 1-channel views, no alignment needed.
//   3  WG_SIZE     8  local_size_x. Best as the subgroup size (then the reduction is one subgroupAdd);
//                     any size is correct: several subgroups combine their sums in shared memory.
//   4  ROWS        4  !TRANS_A only: rows of A per workgroup (each fetch of x is reused ROWS times)
//   5  COLUMN_VECS 1  TRANS_A only: vec4s of y per invocation (1 to 16 measured alike on lavapipe)
//
// !TRANS_A: workgroup g computes y(g * ROWS .. g * ROWS + ROWS - 1). Lane l reads elements
//   4l + 4 * WG_SIZE * i .. + 3 of each of those rows (adjacent lanes, adjacent vec4s), then the lanes'
//   partial sums are added with subgroupAdd. Dispatch: x = ceil(M / ROWS), y = 1, z = batch count.
// TRANS_A: workgroup g computes the W = 4 * WG_SIZE * COLUMN_VECS elements y(g * W .. g * W + W - 1):
//   for every k it reads the W contiguous elements A(k, g * W ..) of one stored row, invocation l taking
//   the vec4s l, l + WG_SIZE, l + 2 * WG_SIZE, ... (so each fetch instruction of a subgroup reads
//   adjacent vec4s, and a CPU thread walks long runs of a row). Dispatch: x = ceil(M / W), y = 1,
//   z = batch count. Parallelism is M / W workgroups; K is not split, so a short, very wide A^T keeps
//   few workgroups busy: keep COLUMN_VECS at 1 on GPUs. On lavapipe this path streams A about 3x slower
//   than !TRANS_A (rows 16 KiB apart for a 4096-wide A defeat the CPU's prefetch).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

// @variant f16: -DSTORAGE_F16=1
// @variant bf16: -DSTORAGE_BF16=1

layout(constant_id = 0) const uint TRANS_A = 0;
layout(constant_id = 1) const uint TRANS_B = 0;
layout(constant_id = 2) const uint VEC4_LOADS = 1;
layout(constant_id = 3) const uint WG_SIZE = 8;
layout(constant_id = 4) const uint ROWS = 4;
layout(constant_id = 5) const uint COLUMN_VECS = 1;
layout(local_size_x_id = 3) in;

#include "gemm_params.glsl"
#include "gemm_output.glsl"
#include "texel_loads.glsl"

layout(set = 0, binding = 0) uniform FloatTexels matrixA;
layout(set = 0, binding = 1) uniform FloatTexels vectorX;

shared float partialSums[ROWS * WG_SIZE];   // used only when the workgroup holds several subgroups

// x(k .. k + 3), all inside K.
vec4 loadX4(uint xBase, uint xStep, uint k) {
    if (xStep == 1u) return loadVec4(vectorX, xBase + k);
    return vec4(loadElement(vectorX, xBase + k * xStep), loadElement(vectorX, xBase + (k + 1u) * xStep),
                loadElement(vectorX, xBase + (k + 2u) * xStep), loadElement(vectorX, xBase + (k + 3u) * xStep));
}

void rowsTimesVector(uint batch, uint baseA, uint xBase, uint xStep) {
    const uint m0 = gl_WorkGroupID.x * ROWS;
    const uint lane = gl_LocalInvocationID.x;
    // Rows past M are clamped to row M - 1: read, never stored.
    vec4 acc[ROWS];
    for (uint r = 0u; r < ROWS; ++r) acc[r] = vec4(0.0);

    // With VEC4_LOADS, a strided x is the only thing that can not come as one fetch, and loadX4 handles it.
    const uint kVector = p.K & ~3u;
    for (uint k = 4u * lane; k < kVector; k += 4u * WG_SIZE) {
        const vec4 x = loadX4(xBase, xStep, k);
        for (uint r = 0u; r < ROWS; ++r)
            acc[r] = fma(loadVec4(matrixA, baseA + min(m0 + r, p.M - 1u) * p.lda + k), x, acc[r]);
    }
    const uint k = kVector + lane;   // the K % 4 tail, one element per lane
    if (k < p.K) {
        const float x = loadElement(vectorX, xBase + k * xStep);
        for (uint r = 0u; r < ROWS; ++r)
            acc[r].x += loadElement(matrixA, baseA + min(m0 + r, p.M - 1u) * p.lda + k) * x;
    }

    float sums[ROWS];
    for (uint r = 0u; r < ROWS; ++r) sums[r] = subgroupAdd(dot(acc[r], vec4(1.0)));
    if (gl_NumSubgroups > 1u) {   // uniform: the barrier below is reached by the whole workgroup
        if (subgroupElect())
            for (uint r = 0u; r < ROWS; ++r) partialSums[r * WG_SIZE + gl_SubgroupID] = sums[r];
        barrier();
        if (lane != 0u) return;
        for (uint r = 0u; r < ROWS; ++r) {
            sums[r] = 0.0;
            for (uint s = 0u; s < gl_NumSubgroups; ++s) sums[r] += partialSums[r * WG_SIZE + s];
        }
    } else if (!subgroupElect()) {
        return;
    }
    for (uint r = 0u; r < ROWS; ++r) {
        if (m0 + r < p.M) {
            const uint index = gemmOutputRow(batch, m0 + r);
            storeC(index, gemmEpilogue(sums[r], index));
        }
    }
}

void transposedTimesVector(uint batch, uint baseA, uint xBase, uint xStep) {
    // Invocation l of workgroup g owns the vec4 columns m = 4 * (g * WG_SIZE * COLUMN_VECS + l + WG_SIZE * j),
    // j < COLUMN_VECS: the workgroup reads 16 * WG_SIZE * COLUMN_VECS contiguous bytes of each stored row.
    const uint mGroup = 4u * gl_WorkGroupID.x * WG_SIZE * COLUMN_VECS + 4u * gl_LocalInvocationID.x;
    vec4 acc[COLUMN_VECS];
    for (uint j = 0u; j < COLUMN_VECS; ++j) acc[j] = vec4(0.0);

    const bool wholeGroup = mGroup + 4u * WG_SIZE * (COLUMN_VECS - 1u) + 3u < p.M;
    uint k = 0u;
    if (wholeGroup) {
        for (; k + 4u <= p.K; k += 4u) {
            const vec4 x = loadX4(xBase, xStep, k);
            for (uint kk = 0u; kk < 4u; ++kk) {
                const uint row = baseA + (k + kk) * p.lda + mGroup;
                for (uint j = 0u; j < COLUMN_VECS; ++j)
                    acc[j] = fma(loadVec4(matrixA, row + 4u * WG_SIZE * j), vec4(x[kk]), acc[j]);
            }
        }
    }
    for (; k < p.K; ++k) {   // the K % 4 tail, or every k for the last, partial group of columns
        const float x = loadElement(vectorX, xBase + k * xStep);
        const uint row = baseA + k * p.lda;
        for (uint j = 0u; j < COLUMN_VECS; ++j) {
            const uint m = mGroup + 4u * WG_SIZE * j;
            for (uint i = 0u; i < 4u; ++i)
                if (m + i < p.M) acc[j][i] = fma(loadElement(matrixA, row + m + i), x, acc[j][i]);
        }
    }
    for (uint j = 0u; j < COLUMN_VECS; ++j) {
        const uint m = mGroup + 4u * WG_SIZE * j;
        for (uint i = 0u; i < 4u && m + i < p.M; ++i) {
            const uint index = gemmOutputRow(batch, m + i);
            storeC(index, gemmEpilogue(acc[j][i], index));
        }
    }
}

void main() {
    const uint batch = gl_WorkGroupID.z;
    const uint baseA = p.offsetA + batch * p.strideA;
    const uint xBase = p.offsetB + batch * p.strideB;
    const uint xStep = TRANS_B != 0u ? 1u : p.ldb;
    if (TRANS_A != 0u) transposedTimesVector(batch, baseA, xBase, xStep);
    else rowsTimesVector(batch, baseA, xBase, xStep);
}
