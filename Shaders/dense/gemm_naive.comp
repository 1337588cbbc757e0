// gemm_naive: the dense GEMM baseline, one invocation per element of C, no tiling, no reuse.
// Benchmarks report the other GEMM shaders as a multiple of this one; it is also the simplest
// correct reference on the GPU side.
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
//   K == 0 gives C = beta * C. No alignment requirements.
//
// Specialization constants
//   0  TRANS_A  0   1: A is stored K x M
//   1  TRANS_B  0   1: B is stored N x K
//   2  LOCAL_X  16  local_size_x, along the columns of C (CPU drivers vectorise along x: keep it a
//                   multiple of 8)
//   3  LOCAL_Y  8   local_size_y, along the rows of C
//
// Invocation (x, y) of the grid computes C(y, x). Dispatch: x = ceil(N / LOCAL_X),
// y = ceil(M / LOCAL_Y), z = batch count.
#version 450
#extension GL_GOOGLE_include_directive : require

// @variant f16: -DSTORAGE_F16=1
// @variant bf16: -DSTORAGE_BF16=1

layout(constant_id = 0) const uint TRANS_A = 0;
layout(constant_id = 1) const uint TRANS_B = 0;
layout(constant_id = 2) const uint LOCAL_X = 16;
layout(constant_id = 3) const uint LOCAL_Y = 8;
layout(local_size_x_id = 2, local_size_y_id = 3) in;

#include "gemm_params.glsl"
#include "gemm_inputs.glsl"
#include "gemm_output.glsl"

void main() {
    const uint n = gl_GlobalInvocationID.x;
    const uint m = gl_GlobalInvocationID.y;
    const uint batch = gl_WorkGroupID.z;
    if (m >= p.M || n >= p.N) return;

    const uint baseA = p.offsetA + batch * p.strideA;
    const uint baseB = p.offsetB + batch * p.strideB;
    // Element k of row m of op(A) and of column n of op(B): start and step.
    const uint aStart = baseA + (TRANS_A != 0u ? m : m * p.lda);
    const uint aStep = TRANS_A != 0u ? p.lda : 1u;
    const uint bStart = baseB + (TRANS_B != 0u ? n * p.ldb : n);
    const uint bStep = TRANS_B != 0u ? 1u : p.ldb;

    float sum = 0.0;
    for (uint k = 0u; k < p.K; ++k) sum = fma(loadA(aStart + k * aStep), loadB(bStart + k * bStep), sum);

    const uint index = gemmOutputRow(batch, m) + n;
    storeC(index, gemmEpilogue(sum, index));
}
