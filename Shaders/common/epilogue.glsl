// The alpha/beta epilogue every product shares (dense GEMM/GEMV, SpMM, SpMV, SDDMM):
//     result = alpha·accumulated + beta·old
// where `old` (an expression reading the output) is evaluated only when beta != 0, so an output may hold
// NaN or garbage when beta == 0. Expects push constants `p.alpha` and `p.beta`; works on float and vec4.
#ifndef EPILOGUE_GLSL
#define EPILOGUE_GLSL

#define APPLY_EPILOGUE(result, accumulated, old) \
    result = p.alpha * (accumulated);            \
    if (p.beta != 0.0) result += p.beta * (old)

#endif
