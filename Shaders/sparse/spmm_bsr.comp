// spmm_bsr: C = alpha * A * B + beta * C with A block-sparse (BSR, square BLOCK x BLOCK dense blocks),
// or the linear-layer form Y = alpha * X * W^T + beta * Y when LINEAR = 1 (B is X stored N x K, C is Y
// stored N x M). fp32 accumulation; fp16 storage in the "_f16" variant (-DSTORAGE_F16=1), bf16 in "_bf16".
//
// Each stored block is a dense micro-GEMM: the register tiling of the dense subgroup GEMM
// (Shaders/dense/gemm_subgroup.comp) applied to the blocks of one block row, so B is read once per
// 4 x TILE_ROWS multiply-adds instead of once per stored value as in the CSR kernel.
//
// Bindings (set 0)
//   0  blockRowPointers  usamplerBuffer R32UI (M / BLOCK + 1)
//   1  blockColumns      usamplerBuffer R32UI
//   2  values            samplerBuffer RGBA32F / RGBA16F (RGBA16UI bf16 bits in "_bf16"): block j row r is texels (j * BLOCK + r) * BLOCK / 4 ...
//   3  B                 samplerBuffer RGBA32F/RGBA16F/RGBA16UI when VEC4_LOADS = 1, else R32F/R16F/R16UI
//   4  C                 storage buffer, read-write, float[] (float16_t[] for "_f16")
//
// Push constants (20 bytes): M N K alpha beta. beta == 0 never reads C.
//
// Specialization constants
//   0  SUBGROUP_SIZE  8   local_size_x; the host requests it. Mismatched subgroups skip the shuffles.
//   1  BLOCK          16  block size: 4, 8, 16 or 32
//   2  VEC4_LOADS     1   B rows read 4 values per fetch (needs N % 4 == 0 and LINEAR != 1)
//   3  LINEAR         0   1: B stored N x K, C stored N x M; 2: X already transposed to K x N by
//                         transpose_tokens.comp (B read as for 0), C stored N x M
//   4  TILE_ROWS      16  rows of C per workgroup: a divisor of BLOCK, at most 32 (the host uses min(BLOCK, 16))
//
// Tile: a workgroup (one subgroup of S lanes) computes TILE_ROWS rows x 4S columns of C; lane l owns
// columns n0 + 4l .. n0 + 4l + 3 and keeps TILE_ROWS vec4 accumulators. Per 4 values of k inside a block:
// each lane fetches its 4 x 4 piece of B (4 fetches); the TILE_ROWS x 4 piece of the block is TILE_ROWS
// vec4 fetches spread over the lanes and shared by subgroupShuffle. When B is read as vec4 rows and the
// subgroup matches, the block loop runs without bounds checks or branches (lanes past N read the last
// four columns and never store, so right-edge tiles stay on it too); otherwise each B piece is loaded
// with checks and, for a mismatched subgroup, every lane fetches the block rows itself.
//
// Dispatch: x = ceil(N / (4 * SUBGROUP_SIZE)), y = M / TILE_ROWS.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require

// @variant f16: -DSTORAGE_F16=1
// @variant bf16: -DSTORAGE_BF16=1

layout(constant_id = 0) const uint SUBGROUP_SIZE = 8;
layout(constant_id = 1) const uint BLOCK = 16;
layout(constant_id = 2) const uint VEC4_LOADS = 1;
layout(constant_id = 3) const uint LINEAR = 0;
layout(local_size_x_id = 0) in;

layout(push_constant, std430) uniform Params { uint M; uint N; uint K; float alpha; float beta; } p;

#include "bfloat16.glsl"   // FloatTexels, fetchFloats: fp32 / fp16 views, or bf16 bits (-DSTORAGE_BF16=1)
layout(set = 0, binding = 0) uniform usamplerBuffer blockRowPointers;
layout(set = 0, binding = 1) uniform usamplerBuffer blockColumns;
layout(set = 0, binding = 2) uniform FloatTexels values;
layout(set = 0, binding = 3) uniform FloatTexels matrixB;
#define SPARSE_OUTPUT_BINDING 4
#include "sparse_output.glsl"

layout(constant_id = 4) const uint TILE_ROWS = 16;
const uint A_FETCHES_PER_LANE = (TILE_ROWS + SUBGROUP_SIZE - 1u) / SUBGROUP_SIZE;

vec4 acc[32];
// Row loops are unrolled by macro (up to 32 rows) and checked against TILE_ROWS (folded after specialization), so every
// index into acc / aFetched is a constant and they stay in registers.
#define UNROLL32(X) X(0u) X(1u) X(2u) X(3u) X(4u) X(5u) X(6u) X(7u) X(8u) X(9u) X(10u) X(11u) X(12u) X(13u) X(14u) X(15u) X(16u) X(17u) X(18u) X(19u) X(20u) X(21u) X(22u) X(23u) X(24u) X(25u) X(26u) X(27u) X(28u) X(29u) X(30u) X(31u)
vec4 aFetched[32];
vec4 bBlock[4];

vec4 loadB(uint k, uint n) {
    if (n >= p.N) return vec4(0.0);
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

void storeRow(uint row, uint n, vec4 value) {
    if (LINEAR != 0u) {
        for (uint i = 0u; i < 4u && n + i < p.N; ++i) storeOutput((n + i) * p.M + row, value[i]);
    } else {
        storeOutputRow4(row * p.N + n, min(4u, p.N - n), value, (p.N & 3u) == 0u);
    }
}

#define FETCH_A(s) if ((s) < A_FETCHES_PER_LANE) { uint f = min(lane + (s) * SUBGROUP_SIZE, TILE_ROWS - 1u); \
    aFetched[s] = fetchFloats(values, int(texel0 + f * (BLOCK >> 2) + (kk >> 2))); }
#define MULTIPLY_ROW(r) if ((r) < TILE_ROWS) { vec4 a = subgroupShuffle(aFetched[(r) / SUBGROUP_SIZE], (r) % SUBGROUP_SIZE); \
    acc[r] = fma(vec4(a.x), bBlock[0], acc[r]); acc[r] = fma(vec4(a.y), bBlock[1], acc[r]);             \
    acc[r] = fma(vec4(a.z), bBlock[2], acc[r]); acc[r] = fma(vec4(a.w), bBlock[3], acc[r]); }

void main() {
    const uint lane = gl_LocalInvocationID.x;
    const uint n = gl_WorkGroupID.x * 4u * SUBGROUP_SIZE + 4u * lane;
    const uint r0 = gl_WorkGroupID.y * TILE_ROWS;
    const uint blockRow = r0 / BLOCK, rowInBlock = r0 % BLOCK;
    const bool lanesMatch = gl_SubgroupSize == SUBGROUP_SIZE && gl_NumSubgroups == 1u;
    // Uniform: B read as vec4 rows (N % 4 == 0), so every tile, right-edge ones included, takes the fast path.
    const bool interior = VEC4_LOADS != 0u && LINEAR != 1u;
#define CLEAR_ROW(r) acc[r] = vec4(0.0);
    UNROLL32(CLEAR_ROW)

    // Lanes whose columns lie past N read the last four columns (when B is read as vec4 rows) and never store.
    const uint nRead = min(n, p.N - 4u);
    const uint first = texelFetch(blockRowPointers, int(blockRow)).x;
    const uint last = texelFetch(blockRowPointers, int(blockRow + 1u)).x;
    if (interior && lanesMatch) {
        // The fast path: no bounds checks and no branches inside a block.
        const uint rowTexels = p.N >> 2;
        for (uint j = first; j < last; ++j) {
            const uint kBase = texelFetch(blockColumns, int(j)).x * BLOCK;
            const uint texel0 = ((j * BLOCK + rowInBlock) * BLOCK) >> 2;
            uint texel = (kBase * p.N + nRead) >> 2;
            for (uint kk = 0u; kk < BLOCK; kk += 4u) {
                bBlock[0] = fetchFloats(matrixB, int(texel));
                bBlock[1] = fetchFloats(matrixB, int(texel + rowTexels));
                bBlock[2] = fetchFloats(matrixB, int(texel + 2u * rowTexels));
                bBlock[3] = fetchFloats(matrixB, int(texel + 3u * rowTexels));
                texel += 4u * rowTexels;
                UNROLL32(FETCH_A)
                UNROLL32(MULTIPLY_ROW)
            }
        }
    } else for (uint j = first; j < last; ++j) {
        const uint kBase = texelFetch(blockColumns, int(j)).x * BLOCK;
        const uint texel0 = ((j * BLOCK + rowInBlock) * BLOCK) >> 2;   // row rowInBlock of block j
        for (uint kk = 0u; kk < BLOCK; kk += 4u) {
            if (interior) {
                const uint texel = ((kBase + kk) * p.N + nRead) >> 2, rowTexels = p.N >> 2;
                bBlock[0] = fetchFloats(matrixB, int(texel));
                bBlock[1] = fetchFloats(matrixB, int(texel + rowTexels));
                bBlock[2] = fetchFloats(matrixB, int(texel + 2u * rowTexels));
                bBlock[3] = fetchFloats(matrixB, int(texel + 3u * rowTexels));
            } else {
                bBlock[0] = loadB(kBase + kk, n);
                bBlock[1] = loadB(kBase + kk + 1u, n);
                bBlock[2] = loadB(kBase + kk + 2u, n);
                bBlock[3] = loadB(kBase + kk + 3u, n);
            }
            if (lanesMatch) {
                UNROLL32(FETCH_A)
                UNROLL32(MULTIPLY_ROW)
            } else {
#define MULTIPLY_ROW_DIRECT(r) if ((r) < TILE_ROWS) { vec4 a = fetchFloats(values, int(texel0 + (r) * (BLOCK >> 2) + (kk >> 2))); \
                    acc[r] = fma(vec4(a.x), bBlock[0], acc[r]); acc[r] = fma(vec4(a.y), bBlock[1], acc[r]);                     \
                    acc[r] = fma(vec4(a.z), bBlock[2], acc[r]); acc[r] = fma(vec4(a.w), bBlock[3], acc[r]); }
                UNROLL32(MULTIPLY_ROW_DIRECT)
            }
        }
    }
    if (n >= p.N) return;
#define STORE_ROW(r) if ((r) < TILE_ROWS) storeRow(r0 + (r), n, acc[r]);
    UNROLL32(STORE_ROW)
}
