// spmm_nm: C = alpha * A * B + beta * C with A N:M structured-sparse (e.g. 2:4), by register tiles: each
// fetch of B is reused by every row of a ROWS-row tile, as in the dense subgroup GEMM
// (Shaders/dense/gemm_subgroup.comp), while each row multiplies only its N stored values per group of M.
// fp32 accumulation; fp16 storage of A's values, B and C in the "_f16" variant (-DSTORAGE_F16=1), bf16 in "_bf16".
//
// A's layout (NMSparseMatrix): row r, group g, slot i (0 <= i < NM_N): value values[(r * groups + g) * NM_N + i]
// sits at column g * NM_M + positions[...] (same index; positions are bytes, strictly increasing in a group).
// The host uses this kernel only when (see SpMM+Vulkan.swift):
//   NM_N in {1, 2, 4}; a step of 4 stored values (4 / NM_N groups) spans KSTEP = 4 / NM_N * NM_M <= 16 columns;
//   every row's stored values fill whole texels (groups * NM_N % 4 == 0); N % 4 == 0 (B rows as vec4), or
//   for LINEAR, K % 4 == 0 and KSTEP % 4 == 0 (rows of X as vec4).
// LINEAR = 1 computes the linear-layer form Y = alpha * X * W^T + beta * Y: B is then X stored N x K and C
// is Y stored N x M (scalar stores).
//
// Bindings (set 0)
//   0  values     samplerBuffer  RGBA32F / RGBA16F / RGBA16UI (bf16): texel t = stored values 4t .. 4t + 3
//   1  positions  usamplerBuffer R32UI: texel t = the 4 in-group positions of those values, byte i = value 4t + i
//   2  B          samplerBuffer  RGBA32F / RGBA16F / RGBA16UI, K x N row-major (LINEAR: X, N x K row-major)
//   3  C          storage buffer, read-write, float[] (float16_t[] for "_f16"), M x N row-major
//
// Push constants (24 bytes): M N K groupsPerRow alpha beta. beta == 0 never reads C.
//
// Specialization constants
//   0  SUBGROUP_SIZE  8   local_size_x; the host requests this subgroup size. If the running subgroup does not
//                         match, every lane fetches every row itself (correct, slower).
//   1  ROWS           16  rows of C per workgroup (8, 16 or 32)
//   2  NM_N           2
//   3  NM_M           4
//   4  LINEAR         0   1: B is X stored N x K, C is Y stored N x M; each lane fetches 4 rows of X (its 4
//                         columns) KSTEP / 4 texels each per step and transposes them into the B pieces.
//                         2: X already transposed to K x N by transpose_tokens.comp (B read as for 0,
//                         N % 4 == 0), C stored N x M
//
// Tile: a workgroup (one subgroup of S lanes) computes ROWS rows x 4S columns of C; lane l owns columns
// n0 + 4l .. n0 + 4l + 3 and keeps ROWS vec4 accumulators. Per step (4 stored values of every row, KSTEP
// columns of A): each lane fetches the KSTEP x 4 piece of B its columns need (KSTEP texel fetches); the
// ROWS value texels and ROWS position texels are spread over the lanes (ROWS / S of each per lane) and reach
// every lane by subgroupShuffle with constant indices. Value i of a row is in group i / NM_N, and since the
// positions of a group increase, its position lies in [i % NM_N, NM_M - NM_N + i % NM_N]: the B row it
// multiplies is picked from those NM_M - NM_N + 1 candidates by a chain of selects (uniform across lanes).
// Rows past M are read as row M - 1 and never stored; lanes whose columns lie past N read the last four
// columns (LINEAR: column N - 1) and never store, so edge tiles stay on this path. Nothing outside A, B or C is read or written.
//
// Dispatch: x = ceil(N / (4 * SUBGROUP_SIZE)), y = ceil(M / ROWS).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require

// @variant f16: -DSTORAGE_F16=1
// @variant bf16: -DSTORAGE_BF16=1

layout(constant_id = 0) const uint SUBGROUP_SIZE = 8;
layout(constant_id = 1) const uint ROWS = 16;
layout(constant_id = 2) const uint NM_N = 2;
layout(constant_id = 3) const uint NM_M = 4;
layout(constant_id = 4) const uint LINEAR = 0;
layout(local_size_x_id = 0) in;

layout(push_constant, std430) uniform Params { uint M; uint N; uint K; uint groupsPerRow; float alpha; float beta; } p;

#include "bfloat16.glsl"   // FloatTexels, fetchFloats: fp32 / fp16 views, or bf16 bits (-DSTORAGE_BF16=1)
layout(set = 0, binding = 0) uniform FloatTexels values;
layout(set = 0, binding = 1) uniform usamplerBuffer positions;
layout(set = 0, binding = 2) uniform FloatTexels matrixB;
#define SPARSE_OUTPUT_BINDING 3
#include "sparse_output.glsl"

const uint KSTEP = (4u / NM_N) * NM_M;
const uint CANDIDATES = NM_M - NM_N + 1u;
const uint FETCHES_PER_LANE = (ROWS + SUBGROUP_SIZE - 1u) / SUBGROUP_SIZE;

// Every index into these arrays is a constant after specialization (loops unrolled by macro and checked
// against the specialization constants), so the driver keeps them in registers.
vec4 acc[32];
vec4 valueFetched[32];
uint positionFetched[32];
vec4 bBlock[16];

#define UNROLL4(X) X(0u) X(1u) X(2u) X(3u)
// A separate list for the candidates: a macro can not be expanded again inside its own expansion.
#define UNROLL_CANDIDATES(X) X(1u) X(2u) X(3u) X(4u) X(5u) X(6u) X(7u) X(8u) X(9u) X(10u) X(11u) X(12u) X(13u) X(14u) X(15u)
#define UNROLL16(X) X(0u) X(1u) X(2u) X(3u) X(4u) X(5u) X(6u) X(7u) X(8u) X(9u) X(10u) X(11u) X(12u) X(13u) X(14u) X(15u)
#define UNROLL32(X) X(0u) X(1u) X(2u) X(3u) X(4u) X(5u) X(6u) X(7u) X(8u) X(9u) X(10u) X(11u) X(12u) X(13u) X(14u) X(15u) X(16u) X(17u) X(18u) X(19u) X(20u) X(21u) X(22u) X(23u) \
    X(24u) X(25u) X(26u) X(27u) X(28u) X(29u) X(30u) X(31u)

// Value i of a row (value a, packed positions `packed`) times the B row its position names.
#define SELECT_CANDIDATE(c) if ((c) < CANDIDATES) { if (position == slot + (c)) b = bBlock[first + (c)]; }
#define MULTIPLY_VALUE(i) {                                                             \
    const uint slot = (i) % NM_N, first = ((i) / NM_N) * NM_M + slot;                   \
    const uint position = (packed >> (8u * (i))) & 0xffu;                               \
    vec4 b = bBlock[first];                                                             \
    UNROLL_CANDIDATES(SELECT_CANDIDATE)                                                 \
    accumulator = fma(vec4(a[i]), b, accumulator); }

#define MULTIPLY_ROW_SHUFFLED(r) if ((r) < ROWS) {                                                         \
    const vec4 a = subgroupShuffle(valueFetched[(r) / SUBGROUP_SIZE], (r) % SUBGROUP_SIZE);               \
    const uint packed = subgroupShuffle(positionFetched[(r) / SUBGROUP_SIZE], (r) % SUBGROUP_SIZE);       \
    vec4 accumulator = acc[r];                                                                             \
    UNROLL4(MULTIPLY_VALUE)                                                                                \
    acc[r] = accumulator; }

#define MULTIPLY_ROW_DIRECT(r) if ((r) < ROWS) {                                                           \
    const uint texel = min(m0 + (r), p.M - 1u) * rowTexels + step;                                         \
    const vec4 a = fetchFloats(values, int(texel));                                                         \
    const uint packed = texelFetch(positions, int(texel)).x;                                               \
    vec4 accumulator = acc[r];                                                                             \
    UNROLL4(MULTIPLY_VALUE)                                                                                \
    acc[r] = accumulator; }

#define FETCH_B(j) if ((j) < KSTEP) bBlock[j] = fetchFloats(matrixB, int(bTexel + (j) * bRowTexels));
// LINEAR: B is X stored N x K. Lane columns n + i (clamped to N - 1) are rows of X; texel t of a step
// holds k0 + 4t .. k0 + 4t + 3 of each, transposed into bBlock[4t ..].
#define FETCH_X(t) if ((t) < KSTEP / 4u) {                                                                 \
    const vec4 c0 = fetchFloats(matrixB, int(xTexel0 + (t))), c1 = fetchFloats(matrixB, int(xTexel1 + (t)));  \
    const vec4 c2 = fetchFloats(matrixB, int(xTexel2 + (t))), c3 = fetchFloats(matrixB, int(xTexel3 + (t)));  \
    bBlock[4u * (t)] = vec4(c0.x, c1.x, c2.x, c3.x); bBlock[4u * (t) + 1u] = vec4(c0.y, c1.y, c2.y, c3.y);     \
    bBlock[4u * (t) + 2u] = vec4(c0.z, c1.z, c2.z, c3.z); bBlock[4u * (t) + 3u] = vec4(c0.w, c1.w, c2.w, c3.w); }
void fetchB(uint bTexel, uint bRowTexels, uint xTexel0, uint xTexel1, uint xTexel2, uint xTexel3) {
    if (LINEAR == 1u) {
        UNROLL4(FETCH_X)
    } else {
        UNROLL16(FETCH_B)
    }
}
#define FETCH_A(s) if ((s) < FETCHES_PER_LANE) {                                                           \
    const uint texel = min(m0 + lane + (s) * SUBGROUP_SIZE, p.M - 1u) * rowTexels + step;                  \
    valueFetched[s] = fetchFloats(values, int(texel)); positionFetched[s] = texelFetch(positions, int(texel)).x; }
#define CLEAR_ROW(r) if ((r) < ROWS) acc[r] = vec4(0.0);
#define STORE_ROW(r) if ((r) < ROWS && m0 + (r) < p.M) storeRow(m0 + (r), n, acc[r]);
void storeRow(uint row, uint n, vec4 value) {
    if (LINEAR != 0u) {
        for (uint i = 0u; i < 4u && n + i < p.N; ++i) storeOutput((n + i) * p.M + row, value[i]);
    } else {
        storeOutputRow4(row * p.N + n, 4u, value, true);
    }
}

void main() {
    const uint lane = gl_LocalInvocationID.x;
    const uint m0 = gl_WorkGroupID.y * ROWS;
    const uint n = gl_WorkGroupID.x * 4u * SUBGROUP_SIZE + 4u * lane;
    // Lanes past N (N is a multiple of 4) read the last four columns and store nothing.
    const uint nRead = LINEAR == 1u ? n : min(n, p.N - 4u);
    const uint rowTexels = p.groupsPerRow * NM_N / 4u, bRowTexels = p.N >> 2;
    // Uniform across the workgroup, so the shuffles run in uniform control flow.
    const bool lanesMatch = gl_SubgroupSize == SUBGROUP_SIZE && gl_NumSubgroups == 1u;
    UNROLL32(CLEAR_ROW)

    uint bTexel = nRead >> 2;
    // LINEAR: texel of X row min(n + i, N - 1) at k = 0, advanced by a step's KSTEP / 4 texels.
    const uint kTexels = p.K >> 2;
    uint xTexel0 = min(n, p.N - 1u) * kTexels, xTexel1 = min(n + 1u, p.N - 1u) * kTexels;
    uint xTexel2 = min(n + 2u, p.N - 1u) * kTexels, xTexel3 = min(n + 3u, p.N - 1u) * kTexels;
    if (lanesMatch) {
        for (uint step = 0u; step < rowTexels; ++step, bTexel += KSTEP * bRowTexels) {
            fetchB(bTexel, bRowTexels, xTexel0 + step * (KSTEP / 4u), xTexel1 + step * (KSTEP / 4u),
                   xTexel2 + step * (KSTEP / 4u), xTexel3 + step * (KSTEP / 4u));
            UNROLL32(FETCH_A)
            UNROLL32(MULTIPLY_ROW_SHUFFLED)
        }
    } else {
        for (uint step = 0u; step < rowTexels; ++step, bTexel += KSTEP * bRowTexels) {
            fetchB(bTexel, bRowTexels, xTexel0 + step * (KSTEP / 4u), xTexel1 + step * (KSTEP / 4u),
                   xTexel2 + step * (KSTEP / 4u), xTexel3 + step * (KSTEP / 4u));
            UNROLL32(MULTIPLY_ROW_DIRECT)
        }
    }
    if (n >= p.N) return;
    UNROLL32(STORE_ROW)
}
