// train_weight_average: tiny-cuda-nn's ema_step_half_precision after Adam's k-th update, on the device
// (NeRFTrainer.updateAverage is the host's): the fp16 moving average e of the fp16 weights,
//   e ← fp16((e·d·debiasOld + fp16(θ)·(1 − d)) · debiasNew), debiasOld = 1 − d^(k−1), debiasNew = 1/(1 − d^k),
// evaluated in fp32 in that order (`precise`: no fused multiply-adds), the host computing d, 1 − d and the
// debias factors as its own loop does. The fp16 conversions are done here with integer operations (fp32 →
// fp16 rounds to nearest, ties to even, as Swift's Float16(Float) does; fp16 → fp32 is exact, subnormals
// included) rather than by float16_t casts, whose rounding and subnormal handling Vulkan leaves to the
// device: so the average equals the host's bit for bit on any device.
//
// Bindings (set 0), all storage buffers:
//   0  parameters  float[count], read: the fp32 weights Adam just updated
//   1  average     uint[⌈count/2⌉], read-write: the fp16 average, weights 2w (low half) and 2w + 1 (high half) in word w
// Push constants: uint count; float decay, oneMinusDecay, debiasOld, debiasNew.
// Specialization constants: 0 LOCAL_SIZE = 64.
// One invocation per word (two weights).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "nerf_training.glsl"

layout(set = 0, binding = 0) readonly buffer Parameters { float parameters[]; };
layout(set = 0, binding = 1) buffer Average { uint average[]; };
layout(push_constant) uniform Params { uint count; float decay; float oneMinusDecay; float debiasOld; float debiasNew; };

float halfToFloat(uint h) {
    uint sign = (h & 0x8000u) << 16, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    if (exponent == 0u) {
        // Zero or subnormal: mantissa · 2^-24, exact in fp32 (a normal number there).
        float magnitude = float(mantissa) * (1.0 / 16777216.0);
        return sign != 0u ? -magnitude : magnitude;
    }
    if (exponent == 31u) return uintBitsToFloat(sign | 0x7f800000u | (mantissa << 13));
    return uintBitsToFloat(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

uint floatToHalf(float f) {
    uint x = floatBitsToUint(f);
    uint sign = (x >> 16) & 0x8000u, e = (x >> 23) & 0xffu, m = x & 0x7fffffu;
    if (e == 255u) return sign | 0x7c00u | (m != 0u ? 0x200u : 0u);
    int exponent = int(e) - 112;
    if (exponent >= 31) return sign | 0x7c00u;
    uint h, remainder, halfway;
    if (exponent <= 0) {
        if (exponent < -10) return sign;
        uint shift = uint(14 - exponent);
        m |= 0x800000u;
        h = m >> shift;
        remainder = m & ((1u << shift) - 1u);
        halfway = 1u << (shift - 1u);
    } else {
        h = (uint(exponent) << 10) | (m >> 13);
        remainder = m & 0x1fffu;
        halfway = 0x1000u;
    }
    // Round to nearest, ties to even; a carry out of the mantissa steps the exponent (up to ∞).
    if (remainder > halfway || (remainder == halfway && (h & 1u) != 0u)) h += 1u;
    return sign | h;
}

uint averageStep(uint e, float theta) {
    precise float mixed = halfToFloat(e) * decay * debiasOld + halfToFloat(floatToHalf(theta)) * oneMinusDecay;
    precise float scaled = mixed * debiasNew;
    return floatToHalf(scaled);
}

void main() {
    uint w = trainingInvocation();
    if (2u * w >= count) return;
    uint word = average[w];
    uint low = averageStep(word & 0xffffu, parameters[2u * w]);
    uint high = 2u * w + 1u < count ? averageStep(word >> 16, parameters[2u * w + 1u]) : word >> 16;
    average[w] = low | (high << 16);
}
