// fp16 -> fp32 widening and bf16 <-> fp32 conversions for the CPU paths (AVX-512, or AVX2/F16C, where
// the CPU has them, chosen at run time with the other kernels' path, cpu_features.h; bit-exact scalar
// conversions otherwise). AVX512-FP16 adds nothing here: fp16 widening is AVX512F's vcvtph2ps. bf16
// narrowing uses AVX512-BF16's vcvtneps2bf16 on the AVX-512 path where the CPU has it; every path gives
// the same bits.
#ifndef VKK_CONVERSIONS_H
#define VKK_CONVERSIONS_H
#include <stdint.h>

// dst[i] = the IEEE binary16 value with bits src[i], as fp32 (exact: every fp16 value, subnormals,
// infinities and NaNs included, is representable), for i < count.
void vkk_widen_half(const uint16_t *src, float *dst, int64_t count);

// dst[i] = the bfloat16 value with bits src[i], as fp32 (exact: the bits shifted into the upper half).
void vkk_widen_bf16(const uint16_t *src, float *dst, int64_t count);

// dst[i] = src[i] rounded to bfloat16, to nearest with ties to even (subnormals kept, overflow to
// infinity); a NaN stays NaN with its sign, made quiet, keeping the top 6 bits of its payload.
void vkk_narrow_bf16(const float *src, uint16_t *dst, int64_t count);

#endif
