// softmax_rows: in-place row softmax of a materialised score matrix, the middle pass of the naive
// three-pass attention baseline (GEMM → softmax → GEMM) that benchmarks compare the fused kernel with.
//     x[r, c] = exp(scale·x[r, c] − m_r) / Σ_c' exp(scale·x[r, c'] − m_r)
// over rows of `columns` elements; with causal = 1, element c of row r (r counted inside its matrix of
// `rowsPerMatrix` rows) is masked when c > r + columns − rowsPerMatrix (bottom-right alignment). A fully
// masked row becomes zeros.
//
// Bindings (set 0)
//   0  x  storage buffer, read-write, vec4[] (f16vec4[] in the "_f16" variant); columns % 4 == 0
// Push constants: rows, columns, rowsPerMatrix, causal, scale (float bits) — 20 bytes.
// Specialization constants: 0 SUBGROUP_SIZE (the workgroup is one subgroup).
// Each workgroup handles rows gl_WorkGroupID.x, + gl_NumWorkGroups.x, …; lane l handles texels l, l+S, …
// of the row in three sweeps (max, sum, write). Dispatch: x = min(rows, 4096).
#version 450
#extension GL_KHR_shader_subgroup_arithmetic : require
// @variant f16: -DSTORAGE_F16=1
#ifndef STORAGE_F16
#define STORAGE_F16 0
#endif
#if STORAGE_F16
#extension GL_EXT_shader_16bit_storage : require
#endif

layout(constant_id = 0) const uint SUBGROUP_SIZE = 8;
layout(local_size_x_id = 0) in;

layout(push_constant) uniform SoftmaxParams { uint rows, columns, rowsPerMatrix, causal; float scale; } p;
#if STORAGE_F16
layout(set = 0, binding = 0, std430) buffer Scores { f16vec4 x[]; } scores;
#else
layout(set = 0, binding = 0, std430) buffer Scores { vec4 x[]; } scores;
#endif

void main() {
    const uint lane = gl_SubgroupInvocationID;
    const uint texels = p.columns / 4u;
    const float negInf = uintBitsToFloat(0xff800000u);
    for (uint row = gl_WorkGroupID.x; row < p.rows; row += gl_NumWorkGroups.x) {
        const uint base = row * texels;
        const int limit = p.causal != 0u ? int(row % p.rowsPerMatrix) + int(p.columns) - int(p.rowsPerMatrix) : int(p.columns) - 1;
        float localMax = negInf;
        for (uint t = lane; t < texels; t += SUBGROUP_SIZE) {
            vec4 s = vec4(scores.x[base + t]) * p.scale;
            for (uint c = 0u; c < 4u; ++c) if (int(4u * t + c) <= limit) localMax = max(localMax, s[c]);
        }
        const float rowMax = subgroupMax(localMax);
        float localSum = 0.0;
        for (uint t = lane; t < texels; t += SUBGROUP_SIZE) {
            vec4 s = vec4(scores.x[base + t]) * p.scale;
            for (uint c = 0u; c < 4u; ++c) if (int(4u * t + c) <= limit) localSum += exp(s[c] - rowMax);
        }
        const float total = subgroupAdd(localSum);
        const float inverse = total > 0.0 ? 1.0 / total : 0.0;
        for (uint t = lane; t < texels; t += SUBGROUP_SIZE) {
            vec4 s = vec4(scores.x[base + t]) * p.scale;
            vec4 probability;
            for (uint c = 0u; c < 4u; ++c) probability[c] = int(4u * t + c) <= limit ? exp(s[c] - rowMax) * inverse : 0.0;
#if STORAGE_F16
            scores.x[base + t] = f16vec4(probability);
#else
            scores.x[base + t] = probability;
#endif
        }
    }
}
