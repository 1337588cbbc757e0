// gemm_tiled: dense GEMM for GPUs. Shared-memory tiles, a register block per invocation.
//
//   C_b = alpha * op(A_b) * op(B_b) + beta * C_b,   b = gl_WorkGroupID.z, all matrices row-major.
//   op(A) is M x K: A is stored M x K, or K x M when TRANS_A.  op(B) is K x N: B is stored K x N, or
//   N x K when TRANS_B.  C is M x N.  Accumulation is fp32.
//
// Bindings (set 0)
//   0  A  storage buffer, read-only   float[], or float16_t[] in the "_f16" variant (-DSTORAGE_F16=1), uint16_t[] (bf16) in "_bf16"
//   1  B  storage buffer, read-only   same dtype as A
//   2  C  storage buffer, read-write  same dtype as A
// Push constants: GemmParams (Shaders/common/gemm_params.glsl, 56 bytes). beta == 0 never reads C;
//   K == 0 gives C = beta * C. No alignment requirements: a matrix whose offset, batch stride and row
//   stride are all multiples of 4 is loaded as vec4s (checked at run time), any other element by element.
//
// Specialization constants (the host picks the tile from maxComputeSharedMemorySize and
// maxComputeWorkGroupInvocations; shared memory used = 4 * BK * (BM + BN) bytes)
//   0  TRANS_A  0    1: A is stored K x M
//   1  TRANS_B  0    1: B is stored N x K
//   2  BM       64   rows of C per workgroup           multiple of TM and of 4
//   3  BN       64   columns of C per workgroup        multiple of TN and of 4
//   4  BK       16   k per shared-memory stage         multiple of 4
//   5  TM       4    rows of C per invocation
//   6  TN       4    columns of C per invocation
//   7  WG_SIZE  256  local_size_x; must equal (BM / TM) * (BN / TN)
// Suggested: BM = BN = 64, BK = 16, TM = TN = 4 (256 invocations, 8 KiB) for 16-32 KiB devices;
// BM = BN = 128, BK = 16, TM = TN = 8 (256 invocations, 16 KiB) for 48+ KiB GPUs.
//
// Tile: a workgroup computes the BM x BN block of C at (gl_WorkGroupID.y * BM, gl_WorkGroupID.x * BN).
// Per BK step every invocation helps copy the BM x BK block of op(A) and the BK x BN block of op(B)
// into shared memory (k-major, zero-filled outside the matrices), then invocation t, with
// tx = t % (BN / TN) and ty = t / (BN / TN), accumulates rows ty + i * (BM / TM) (i < TM) and columns
// tx + j * (BN / TN) (j < TN) of the block in TM x TN registers. Interleaved rows and columns keep
// neighbouring invocations on neighbouring shared-memory words and neighbouring addresses of C.
//
// Dispatch: x = ceil(N / BN), y = ceil(M / BM), z = batch count.
#version 450
#extension GL_GOOGLE_include_directive : require

// @variant f16: -DSTORAGE_F16=1
// @variant bf16: -DSTORAGE_BF16=1

layout(constant_id = 0) const uint TRANS_A = 0;
layout(constant_id = 1) const uint TRANS_B = 0;
layout(constant_id = 2) const uint BM = 64;
layout(constant_id = 3) const uint BN = 64;
layout(constant_id = 4) const uint BK = 16;
layout(constant_id = 5) const uint TM = 4;
layout(constant_id = 6) const uint TN = 4;
layout(constant_id = 7) const uint WG_SIZE = 256;
layout(local_size_x_id = 7) in;

#include "gemm_params.glsl"
#include "gemm_inputs.glsl"
#include "gemm_output.glsl"

const uint THREADS_N = BN / TN;
const uint ROW_STEP = BM / TM;

shared float tileA[BK * BM];   // tileA[k * BM + m] = op(A)(m0 + m, k0 + k)
shared float tileB[BK * BN];   // tileB[k * BN + n] = op(B)(k0 + k, n0 + n)

// Copies a rows x cols block of a stored matrix (top-left element at `start`, row stride ld, valid
// extent validRows x validCols, zeros outside) into shared memory. The stored row is the contiguous
// dimension, read four at a time (one vec4 load when vectorOK and the four are inside the row).
// `storedRowIsK` says whether the stored rows are k (then element (r, c) goes to tile[r * cols + c]) or
// m/n (then to tile[c * rows + r]); the tile in shared memory is always k-major.
#define COPY_TILE(tile, load1, load4, start, ld, validRows, validCols, rows, cols, storedRowIsK, vectorOK) \
    for (uint g = gl_LocalInvocationID.x; g < (rows) * (cols) / 4u; g += WG_SIZE) {                     \
        const uint r = g / ((cols) / 4u), c = 4u * (g % ((cols) / 4u));                                 \
        vec4 v = vec4(0.0);                                                                              \
        if (r < (validRows)) {                                                                           \
            const uint e = (start) + r * (ld) + c;                                                        \
            if ((vectorOK) && c + 3u < (validCols)) {                                                     \
                v = load4(e >> 2);                                                                        \
            } else {                                                                                      \
                for (uint j = 0u; j < 4u; ++j) if (c + j < (validCols)) v[j] = load1(e + j);              \
            }                                                                                             \
        }                                                                                                 \
        for (uint j = 0u; j < 4u; ++j) {                                                                  \
            if (storedRowIsK) tile[r * (cols) + c + j] = v[j]; else tile[(c + j) * (rows) + r] = v[j];    \
        }                                                                                                 \
    }

void main() {
    const uint batch = gl_WorkGroupID.z;
    const uint m0 = gl_WorkGroupID.y * BM;
    const uint n0 = gl_WorkGroupID.x * BN;
    const uint t = gl_LocalInvocationID.x;
    const uint tx = t % THREADS_N, ty = t / THREADS_N;
    const bool computes = t < (BM / TM) * (BN / TN);   // extra invocations (WG_SIZE too large) only copy

    const uint baseA = p.offsetA + batch * p.strideA;
    const uint baseB = p.offsetB + batch * p.strideB;
    const bool vectorA = ((p.offsetA | p.strideA | p.lda) & 3u) == 0u;
    const bool vectorB = ((p.offsetB | p.strideB | p.ldb) & 3u) == 0u;

    float acc[TM * TN];
    for (uint i = 0u; i < TM * TN; ++i) acc[i] = 0.0;

    for (uint k0 = 0u; k0 < p.K; k0 += BK) {
        const uint kLeft = p.K - k0;
        if (TRANS_A != 0u) {   // stored K x M: rows are k
            COPY_TILE(tileA, loadA, loadA4, baseA + k0 * p.lda + m0, p.lda, kLeft, p.M - m0, BK, BM, true, vectorA)
        } else {               // stored M x K: rows are m
            COPY_TILE(tileA, loadA, loadA4, baseA + m0 * p.lda + k0, p.lda, p.M - m0, kLeft, BM, BK, false, vectorA)
        }
        if (TRANS_B != 0u) {   // stored N x K: rows are n
            COPY_TILE(tileB, loadB, loadB4, baseB + n0 * p.ldb + k0, p.ldb, p.N - n0, kLeft, BN, BK, false, vectorB)
        } else {               // stored K x N: rows are k
            COPY_TILE(tileB, loadB, loadB4, baseB + k0 * p.ldb + n0, p.ldb, kLeft, p.N - n0, BK, BN, true, vectorB)
        }
        barrier();

        if (computes) {
            for (uint k = 0u; k < BK; ++k) {
                float a[TM], b[TN];
                for (uint i = 0u; i < TM; ++i) a[i] = tileA[k * BM + ty + i * ROW_STEP];
                for (uint j = 0u; j < TN; ++j) b[j] = tileB[k * BN + tx + j * THREADS_N];
                for (uint i = 0u; i < TM; ++i)
                    for (uint j = 0u; j < TN; ++j) acc[i * TN + j] = fma(a[i], b[j], acc[i * TN + j]);
            }
        }
        barrier();
    }

    if (!computes) return;
    for (uint i = 0u; i < TM; ++i) {
        const uint m = m0 + ty + i * ROW_STEP;
        if (m >= p.M) break;
        const uint row = gemmOutputRow(batch, m);
        for (uint j = 0u; j < TN; ++j) {
            const uint n = n0 + tx + j * THREADS_N;
            if (n < p.N) storeC(row + n, gemmEpilogue(acc[i * TN + j], row + n));
        }
    }
}
