// gemm_subgroup: dense GEMM for CPU Vulkan drivers (lavapipe / llvmpipe, SwiftShader).
//
//   C_b = alpha * op(A_b) * op(B_b) + beta * C_b,   b = gl_WorkGroupID.z, all matrices row-major.
//   op(A) is M x K: A is stored M x K, or K x M when TRANS_A.  op(B) is K x N: B is stored K x N, or
//   N x K when TRANS_B.  C is M x N.  Accumulation is fp32.
//
// Why this shape: CPU drivers run a subgroup as SIMD lanes of one core. There, storage-buffer and
// shared-memory accesses become per-lane loops and barriers are expensive, while texel-buffer fetches
// are vector loads and subgroupShuffle with a constant index is a register permute. So inputs come in
// through texel views, 4 values per fetch, and values are shared between lanes by shuffles, never
// through shared memory. (Measured on lavapipe: DESIGN.md, "The test device".)
//
// Bindings (set 0)
//   0  A  uniform FloatTexels  RGBA32F/RGBA16F/RGBA16UI (bf16) view when VEC4_LOADS = 1, R32F/R16F/R16UI when 0
//   1  B  uniform FloatTexels  same format rule as A
//   2  C  storage buffer, read-write: float[], or float16_t[] in the "_f16" variant (-DSTORAGE_F16=1), uint16_t[] bf16 bits in "_bf16"
//   A texel view must cover every texel that holds an element of the matrix (round a 4-channel view's
//   range up to 16 bytes). Texel views also reach past maxStorageBufferRange (2^27 texels).
//
// Push constants: GemmParams (Shaders/common/gemm_params.glsl, 56 bytes): M N K, lda ldb ldc,
//   strideA strideB strideC (0 = broadcast one matrix to every batch), offsetA offsetB offsetC
//   (elements), alpha, beta. beta == 0 never reads C. K == 0 gives C = beta * C.
//
// Specialization constants
//   0  TRANS_A        0   1: A is stored K x M
//   1  TRANS_B        0   1: B is stored N x K
//   2  VEC4_LOADS     1   1: A and B are bound as 4-channel views. Requires offsetA, offsetB, lda,
//                         ldb, strideA, strideB all multiples of 4 (M, N, K may be anything). 0: bind
//                         1-channel views; no alignment needed (about 2x slower on lavapipe).
//   3  SUBGROUP_SIZE  8   the workgroup size (local_size_x) and the lane count the tile is built
//                         for. The host should request exactly this subgroup size
//                         (VkPipelineShaderStageRequiredSubgroupSizeCreateInfo, with
//                         computeFullSubgroups) and set it to the device's subgroup size when it can
//                         not. Any power of two works; if the running subgroup does not match (size
//                         differs, or the group is split into several subgroups) every tile takes the
//                         shuffle-free path below, which is correct but slow.
//
// Tile: one workgroup = one subgroup of S = SUBGROUP_SIZE lanes computes a TILE_M x TILE_N = 16 x 4S
// block of C (16 x 32 for S = 8). Lane l owns columns n0 + 4l .. n0 + 4l + 3 of all 16 rows and keeps
// them in 16 vec4 accumulators. For every 4 values of k:
//   - B: each lane fetches the 4 x 4 block of op(B) its columns need (4 texel fetches).
//   - A: the 16 x 4 block of op(A) is 16 vec4 fetches (rows when !TRANS_A, 4-row column pieces when
//     TRANS_A), spread over the lanes: fetch f (0..15) is made by lane f % S, ceil(16 / S) per lane
//     (2 for S = 8), and reaches every lane through subgroupShuffle(value, f % S), an index that is a
//     constant once S is specialized.
//   - 64 vec4 FMAs per lane.
// The k loop is unrolled x2. Right-edge tiles with N % 4 != 0, bottom-edge tiles when TRANS_A, the
// K % 4 tail and mismatched subgroups
// use a per-element path with bounds checks: nothing outside the matrices is ever read or written.
//
// Dispatch: x = ceil(N / (4 * SUBGROUP_SIZE)), y = ceil(M / 16), z = batch count.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require

// @variant f16: -DSTORAGE_F16=1
// @variant bf16: -DSTORAGE_BF16=1

layout(constant_id = 0) const uint TRANS_A = 0;
layout(constant_id = 1) const uint TRANS_B = 0;
layout(constant_id = 2) const uint VEC4_LOADS = 1;
layout(constant_id = 3) const uint SUBGROUP_SIZE = 8;
layout(local_size_x_id = 3) in;

#include "gemm_params.glsl"
#include "gemm_output.glsl"
#include "texel_loads.glsl"

layout(set = 0, binding = 0) uniform FloatTexels matrixA;
layout(set = 0, binding = 1) uniform FloatTexels matrixB;

const uint TILE_M = 16u;
const uint TILE_N = 4u * SUBGROUP_SIZE;
const uint A_FETCHES_PER_LANE = (16u + SUBGROUP_SIZE - 1u) / SUBGROUP_SIZE;

// Every index into these arrays is a constant after specialization (the row loops are unrolled by
// macro), so the driver keeps them in registers.
vec4 acc[16];        // acc[r] = C(m0 + r, n .. n + 3), before alpha/beta
vec4 aFetched[16];   // this lane's share of the 16 x 4 block of op(A); A_FETCHES_PER_LANE used
vec4 bBlock[4];      // bBlock[i] = op(B)(k0 + i, n .. n + 3)

#define UNROLL4(X) X(0) X(1) X(2) X(3)
#define UNROLL16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

uint indexA(uint base, uint m, uint k) { return TRANS_A != 0u ? base + k * p.lda + m : base + m * p.lda + k; }
uint indexB(uint base, uint k, uint n) { return TRANS_B != 0u ? base + n * p.ldb + k : base + k * p.ldb + n; }

// !TRANS_A: fetch f is row f of the tile, k0..k0+3. Rows past M are clamped to row M - 1 (read, then
// never stored), which keeps bottom-edge tiles on the fast path.
// TRANS_A: fetch f = 4 * kk + g is A stored (k0 + kk, m0 + 4g .. m0 + 4g + 3), i.e. op(A) rows
// m0 + 4g .. m0 + 4g + 3 at column k0 + kk (the tile must be inside M for this path).
void fetchBlock(uint baseA, uint baseB, uint m0, uint n, uint k0, uint fetchLane) {
    for (uint s = 0u; s < A_FETCHES_PER_LANE; ++s) {
        uint f = (fetchLane + s * SUBGROUP_SIZE) & 15u;
        if (TRANS_A != 0u) {
            aFetched[s] = loadVec4(matrixA, baseA + (k0 + (f >> 2)) * p.lda + m0 + 4u * (f & 3u));
        } else {
            aFetched[s] = loadVec4(matrixA, baseA + min(m0 + f, p.M - 1u) * p.lda + k0);
        }
    }
    // Lanes whose columns lie past N (right-edge tiles, N a multiple of 4) read the last four
    // columns instead and never store: the tile stays on this path. Lanes inside N have n <= N - 4.
    n = min(n, p.N - 4u);
    if (TRANS_B != 0u) {
        vec4 c0 = loadVec4(matrixB, baseB + n * p.ldb + k0);
        vec4 c1 = loadVec4(matrixB, baseB + (n + 1u) * p.ldb + k0);
        vec4 c2 = loadVec4(matrixB, baseB + (n + 2u) * p.ldb + k0);
        vec4 c3 = loadVec4(matrixB, baseB + (n + 3u) * p.ldb + k0);
        bBlock[0] = vec4(c0.x, c1.x, c2.x, c3.x);
        bBlock[1] = vec4(c0.y, c1.y, c2.y, c3.y);
        bBlock[2] = vec4(c0.z, c1.z, c2.z, c3.z);
        bBlock[3] = vec4(c0.w, c1.w, c2.w, c3.w);
    } else {
        bBlock[0] = loadVec4(matrixB, baseB + k0 * p.ldb + n);
        bBlock[1] = loadVec4(matrixB, baseB + (k0 + 1u) * p.ldb + n);
        bBlock[2] = loadVec4(matrixB, baseB + (k0 + 2u) * p.ldb + n);
        bBlock[3] = loadVec4(matrixB, baseB + (k0 + 3u) * p.ldb + n);
    }
}

// The value fetched as number f, from the lane that fetched it.
#define SHARED_FETCH(f) subgroupShuffle(aFetched[(f) / SUBGROUP_SIZE], (f) % SUBGROUP_SIZE)

#define MULTIPLY_ROW(r) {                                     \
    vec4 a = SHARED_FETCH(r);                                 \
    acc[r] = fma(vec4(a.x), bBlock[0], acc[r]);               \
    acc[r] = fma(vec4(a.y), bBlock[1], acc[r]);               \
    acc[r] = fma(vec4(a.z), bBlock[2], acc[r]);               \
    acc[r] = fma(vec4(a.w), bBlock[3], acc[r]); }

#define MULTIPLY_COLUMN_PIECE(f) {                            \
    vec4 a = SHARED_FETCH(f);                                 \
    const uint r = 4u * ((f) & 3u), kk = (f) >> 2;            \
    acc[r]      = fma(vec4(a.x), bBlock[kk], acc[r]);         \
    acc[r + 1u] = fma(vec4(a.y), bBlock[kk], acc[r + 1u]);    \
    acc[r + 2u] = fma(vec4(a.z), bBlock[kk], acc[r + 2u]);    \
    acc[r + 3u] = fma(vec4(a.w), bBlock[kk], acc[r + 3u]); }

void multiplyBlock() {
    if (TRANS_A != 0u) {
        UNROLL16(MULTIPLY_COLUMN_PIECE)
    } else {
        UNROLL16(MULTIPLY_ROW)
    }
}

// One k of the per-element path: every lane loads what it needs itself, with bounds checks.
#define MULTIPLY_ROW_CHECKED(r)                                                   \
    if (m0 + (r) < p.M) acc[r] = fma(vec4(loadElement(matrixA, indexA(baseA, m0 + (r), k))), bk, acc[r]);

#define STORE_ROW(r)                                                              \
    if (m0 + (r) < p.M && n < p.N)                                                \
        gemmStoreRow4(gemmOutputRow(batch, m0 + (r)) + n, min(4u, p.N - n), acc[r], aligned);

void main() {
    const uint batch = gl_WorkGroupID.z;
    const uint m0 = gl_WorkGroupID.y * TILE_M;
    const uint n0 = gl_WorkGroupID.x * TILE_N;
    const uint n = n0 + 4u * gl_LocalInvocationID.x;
    const uint baseA = p.offsetA + batch * p.strideA;
    const uint baseB = p.offsetB + batch * p.strideB;

#define CLEAR(r) acc[r] = vec4(0.0);
    UNROLL16(CLEAR)

    // Uniform across the workgroup, so the shuffles below run in uniform control flow.
    const bool lanesMatch = gl_SubgroupSize == SUBGROUP_SIZE && gl_NumSubgroups == 1u;
    // A right-edge tile stays on the fast path when N is a multiple of 4 (see fetchBlock).
    const bool columnsFit = n0 + TILE_N <= p.N || (p.N & 3u) == 0u;
    const bool interior = columnsFit && (TRANS_A == 0u || m0 + TILE_M <= p.M);
    const uint kFast = (lanesMatch && interior) ? (p.K & ~3u) : 0u;

    uint k0 = 0u;
    for (; k0 + 8u <= kFast; k0 += 8u) {
        fetchBlock(baseA, baseB, m0, n, k0, gl_SubgroupInvocationID);
        multiplyBlock();
        fetchBlock(baseA, baseB, m0, n, k0 + 4u, gl_SubgroupInvocationID);
        multiplyBlock();
    }
    if (k0 < kFast) {
        fetchBlock(baseA, baseB, m0, n, k0, gl_SubgroupInvocationID);
        multiplyBlock();
    }

    for (uint k = kFast; k < p.K; ++k) {
        vec4 bk = vec4(0.0);
        for (uint j = 0u; j < 4u; ++j) {
            if (n + j < p.N) bk[j] = loadElement(matrixB, indexB(baseB, k, n + j));
        }
        UNROLL16(MULTIPLY_ROW_CHECKED)
    }

    const bool aligned = gemmOutputAligned();
    UNROLL16(STORE_ROW)
}
