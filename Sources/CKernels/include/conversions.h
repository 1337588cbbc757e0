// fp16 -> fp32 widening for the CPU paths (AVX-512 or F16C where the CPU has them, chosen at run time
// with the other kernels' path, cpu_features.h; a bit-exact scalar conversion otherwise). AVX512-FP16
// and AVX512-BF16 add nothing here: the widening is AVX512F's vcvtph2ps, and no kernel stores bf16.
#ifndef VKK_CONVERSIONS_H
#define VKK_CONVERSIONS_H
#include <stdint.h>

// dst[i] = the IEEE binary16 value with bits src[i], as fp32 (exact: every fp16 value, subnormals,
// infinities and NaNs included, is representable), for i < count.
void vkk_widen_half(const uint16_t *src, float *dst, int64_t count);

#endif
