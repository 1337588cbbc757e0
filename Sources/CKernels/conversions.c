// See include/conversions.h.
#include "conversions.h"
#include "kernel_common.h"
#include <string.h>

static float half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu, bits;
    if (exponent == 0x1fu) {
        // Infinity, or NaN with its payload and the quiet bit set (as the F16C instruction does).
        bits = sign | 0x7f800000u | (mantissa << 13) | (mantissa != 0 ? 0x00400000u : 0u);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13); // normal: rebias 15 -> 127
    } else if (mantissa == 0) {
        bits = sign;                                                // signed zero
    } else {
        // Subnormal m * 2^-24: shift the leading 1 up to bit 10, lowering the exponent per shift.
        exponent = 113u;
        while ((mantissa & 0x400u) == 0) { mantissa <<= 1; --exponent; }
        bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

#if defined(__x86_64__)
__attribute__((target("avx,f16c")))
static void widen_f16c(const uint16_t *src, float *dst, int64_t count) {
    int64_t i = 0;
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < count; ++i) dst[i] = half_to_float(src[i]);
}

// 16 values per instruction (AVX512F's vcvtph2ps on zmm), the tail through a masked load.
__attribute__((target("avx512f,avx512bw,avx512vl,avx2,f16c")))
static void widen_avx512(const uint16_t *src, float *dst, int64_t count) {
    int64_t i = 0;
    for (; i + 32 <= count; i += 32) {
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
        _mm512_storeu_ps(dst + i + 16, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i + 16))));
    }
    for (; i < count; i += 16) {
        const __mmask16 m = count - i >= 16 ? 0xffff : (__mmask16)((1u << (count - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + i)));
    }
}
#endif

void vkk_widen_half(const uint16_t *src, float *dst, int64_t count) {
#if defined(__x86_64__)
    if (vkk_has_avx512()) { widen_avx512(src, dst, count); return; }
    if (vkk_has_f16c()) { widen_f16c(src, dst, count); return; }
#endif
    for (int64_t i = 0; i < count; ++i) dst[i] = half_to_float(src[i]);
}
