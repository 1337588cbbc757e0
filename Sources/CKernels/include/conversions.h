// fp16 -> fp32 widening for the CPU paths (F16C where the CPU has it, chosen at run time; a bit-exact
// scalar conversion otherwise).
#ifndef VKK_CONVERSIONS_H
#define VKK_CONVERSIONS_H
#include <stdint.h>

// dst[i] = the IEEE binary16 value with bits src[i], as fp32 (exact: every fp16 value, subnormals,
// infinities and NaNs included, is representable), for i < count.
void vkk_widen_half(const uint16_t *src, float *dst, int64_t count);

#endif
