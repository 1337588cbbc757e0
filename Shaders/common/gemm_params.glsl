// Push constants shared by every dense GEMM/GEMV shader (std430, 56 bytes).
// The host writes exactly this block; see Shaders/dense/gemm_*.comp for how each shader reads it.
//   C_b = alpha * op(A_b) * op(B_b) + beta * C_b for batch b = gl_WorkGroupID.z, row-major,
//   op(A) is M x K (A stored M x K, or K x M when TRANS_A), op(B) is K x N (stored K x N, or N x K
//   when TRANS_B), C is M x N. Element (i, j) of a stored matrix X of batch b lives at
//   offsetX + b * strideX + i * ldX + j.
#ifndef GEMM_PARAMS_GLSL
#define GEMM_PARAMS_GLSL

layout(push_constant, std430) uniform GemmParams {
    uint M; uint N; uint K;
    uint lda; uint ldb; uint ldc;             // row strides of A, B, C as stored, in elements
    uint strideA; uint strideB; uint strideC; // batch strides in elements (0 = the same matrix for every batch)
    uint offsetA; uint offsetB; uint offsetC; // element offset of batch 0 inside the bound buffer/view
    float alpha; float beta;
} p;

#endif
