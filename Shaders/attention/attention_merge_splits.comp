// attention_merge_splits: combines the partial results of attention_fused in split mode ("flash
// decoding"). Split s saw a disjoint key range and wrote its normalised output O_s and log-sum-exp
// L_s per row; with M = max_s L_s and w_s = exp(L_s − M):
//     O = Σ_s w_s·O_s / Σ_s w_s,     L = M + log Σ_s w_s
// (a row no split saw, M = −∞, gets O = 0 and L = −∞).
//
// Bindings (set 0)
//   0  partial outputs  storage buffer, vec4[], [split][batch·heads][Lq][ceil(d/4)]
//   1  partial lse      storage buffer, float[], [split][batch·heads][Lq]
//   2  output           storage buffer, vec4[] (f16vec4[] in the "_f16" variant, u16vec4[] of bf16 bits
//                       in "_bf16"), strided as the output; also seen as float[] (float16_t[],
//                       uint16_t[]) when d is not a multiple of 4
//   3  lse              storage buffer, float[], [batch·heads][Lq] (written when writeLse = 1)
// Push constants: qLen, heads, dim4 (ceil(d/4)), splits, oStrideB, oStrideH, oStrideS (elements),
//   writeLse, rows (batch·heads·Lq), dim (d).
// No specialization constants. One invocation per output texel: x = ((z·Lq + i)·dim4 + t).
// Dispatch: x = ceil(rows·dim4 / 64).
#version 450
#extension GL_GOOGLE_include_directive : require
// @variant f16: -DSTORAGE_F16=1
// @variant bf16: -DSTORAGE_BF16=1
#ifndef STORAGE_F16
#define STORAGE_F16 0
#endif
#ifndef STORAGE_BF16
#define STORAGE_BF16 0
#endif
#if STORAGE_F16 || STORAGE_BF16
#extension GL_EXT_shader_16bit_storage : require
#endif
#include "bfloat16.glsl"
layout(local_size_x = 64) in;

layout(push_constant) uniform MergeParams {
    uint qLen, heads, dim4, splits;
    uint oStrideB, oStrideH, oStrideS;
    uint writeLse, rows, dim;
} p;

layout(set = 0, binding = 0, std430) readonly buffer PartialOutput { vec4 o[]; } partialOutput;
layout(set = 0, binding = 1, std430) readonly buffer PartialLse { float lse[]; } partialLse;
// Elements e0 .. e0+3 (dims 4·t ..): one vec4 store when d is a multiple of 4, else scalar stores below d.
#if STORAGE_F16
layout(set = 0, binding = 2, std430) writeonly buffer Output { f16vec4 o[]; } outputBuffer;
layout(set = 0, binding = 2, std430) writeonly buffer OutputScalar { float16_t o[]; } outputScalars;
void storeOutput(uint e0, uint t, vec4 v) {
    if (p.dim % 4u == 0u) { outputBuffer.o[e0 >> 2] = f16vec4(v); return; }
    for (uint c = 0u; c < 4u; ++c) if (4u * t + c < p.dim) outputScalars.o[e0 + c] = float16_t(v[c]);
}
#elif STORAGE_BF16
layout(set = 0, binding = 2, std430) writeonly buffer Output { u16vec4 o[]; } outputBuffer;
layout(set = 0, binding = 2, std430) writeonly buffer OutputScalar { uint16_t o[]; } outputScalars;
void storeOutput(uint e0, uint t, vec4 v) {
    if (p.dim % 4u == 0u) { outputBuffer.o[e0 >> 2] = u16vec4(floatToBF16(v)); return; }
    for (uint c = 0u; c < 4u; ++c) if (4u * t + c < p.dim) outputScalars.o[e0 + c] = uint16_t(floatToBF16(v[c]));
}
#else
layout(set = 0, binding = 2, std430) writeonly buffer Output { vec4 o[]; } outputBuffer;
layout(set = 0, binding = 2, std430) writeonly buffer OutputScalar { float o[]; } outputScalars;
void storeOutput(uint e0, uint t, vec4 v) {
    if (p.dim % 4u == 0u) { outputBuffer.o[e0 >> 2] = v; return; }
    for (uint c = 0u; c < 4u; ++c) if (4u * t + c < p.dim) outputScalars.o[e0 + c] = v[c];
}
#endif
layout(set = 0, binding = 3, std430) writeonly buffer Lse { float lse[]; } lseBuffer;

void main() {
    const uint index = gl_GlobalInvocationID.x;
    if (index >= p.rows * p.dim4) return;
    const uint row = index / p.dim4, t = index % p.dim4;   // row = z·Lq + i
    const uint z = row / p.qLen, i = row % p.qLen;
    const float negInf = uintBitsToFloat(0xff800000u);
    float maxLse = negInf;
    for (uint s = 0u; s < p.splits; ++s) maxLse = max(maxLse, partialLse.lse[s * p.rows + row]);
    vec4 sum = vec4(0.0);
    float weights = 0.0;
    if (maxLse != negInf) {
        for (uint s = 0u; s < p.splits; ++s) {
            const float l = partialLse.lse[s * p.rows + row];
            if (l == negInf) continue;
            const float w = exp(l - maxLse);
            weights += w;
            sum += w * partialOutput.o[(s * p.rows + row) * p.dim4 + t];
        }
    }
    const uint b = z / p.heads, h = z % p.heads;
    storeOutput(b * p.oStrideB + h * p.oStrideH + i * p.oStrideS + 4u * t, t, weights > 0.0 ? sum / weights : vec4(0.0));
    if (p.writeLse != 0u && t == 0u) lseBuffer.lse[row] = weights > 0.0 ? maxLse + log(weights) : negInf;
}
