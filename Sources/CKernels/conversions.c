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

// MARK: bfloat16

static inline float bf16_to_float(uint16_t b) {
    const uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint16_t float_to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40u); // quiet NaN, sign kept
    // Round to nearest, ties to even: add just under half an ulp, plus one when the kept lsb is odd.
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

#if defined(__x86_64__)
__attribute__((target("avx2")))
static void widen_bf16_avx2(const uint16_t *src, float *dst, int64_t count) {
    int64_t i = 0;
    for (; i + 8 <= count; i += 8) {
        const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_slli_epi32(wide, 16));
    }
    for (; i < count; ++i) dst[i] = bf16_to_float(src[i]);
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx2")))
static void widen_bf16_avx512(const uint16_t *src, float *dst, int64_t count) {
    for (int64_t i = 0; i < count; i += 16) {
        const __mmask16 m = count - i >= 16 ? 0xffff : (__mmask16)((1u << (count - i)) - 1);
        const __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, src + i));
        _mm512_mask_storeu_epi32(dst + i, m, _mm512_slli_epi32(wide, 16));
    }
}

// The scalar rounding in 8 lanes; packus keeps each 128-bit half's order, the permute joins the halves.
__attribute__((target("avx2")))
static inline __m128i narrow8_avx2(__m256i bits) {
    const __m256i abs = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
    const __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7fff)), odd), 16);
    const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40));
    const __m256i result = _mm256_blendv_epi8(rounded, quiet, nan);
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(result, result), 0x08);
    return _mm256_castsi256_si128(packed);
}

__attribute__((target("avx2")))
static void narrow_bf16_avx2(const float *src, uint16_t *dst, int64_t count) {
    int64_t i = 0;
    for (; i + 8 <= count; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), narrow8_avx2(_mm256_loadu_si256((const __m256i *)(src + i))));
    for (; i < count; ++i) dst[i] = float_to_bf16(src[i]);
}

// vcvtneps2bf16 rounds to nearest-even and quiets NaNs as above, but treats fp32 subnormal inputs as
// zero; lanes holding one (rare: |x| < 2^-126) are redone with the integer rounding.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2")))
static void narrow_bf16_avx512bf16(const float *src, uint16_t *dst, int64_t count) {
    for (int64_t i = 0; i < count; i += 16) {
        const __mmask16 m = count - i >= 16 ? 0xffff : (__mmask16)((1u << (count - i)) - 1);
        const __m512 x = _mm512_maskz_loadu_ps(m, src + i);
        __m256i result = (__m256i)_mm512_cvtneps_pbh(x);
        const __m512i bits = _mm512_castps_si512(x);
        const __mmask16 subnormal = _mm512_mask_cmpeq_epi32_mask(
            _mm512_test_epi32_mask(bits, _mm512_set1_epi32(0x007fffff)), _mm512_and_si512(bits, _mm512_set1_epi32(0x7f800000)),
            _mm512_setzero_si512());
        if (subnormal) {
            const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
            const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7fff)), odd), 16);
            result = _mm256_mask_blend_epi16(subnormal, result, _mm512_cvtepi32_epi16(rounded));
        }
        _mm256_mask_storeu_epi16(dst + i, m, result);
    }
}
#endif

void vkk_widen_bf16(const uint16_t *src, float *dst, int64_t count) {
#if defined(__x86_64__)
    if (vkk_has_avx512()) { widen_bf16_avx512(src, dst, count); return; }
    if (vkk_has_avx2_fma()) { widen_bf16_avx2(src, dst, count); return; }
#endif
    for (int64_t i = 0; i < count; ++i) dst[i] = bf16_to_float(src[i]);
}

void vkk_narrow_bf16(const float *src, uint16_t *dst, int64_t count) {
#if defined(__x86_64__)
    if (vkk_has_avx512_bf16()) { narrow_bf16_avx512bf16(src, dst, count); return; }
    // Without AVX512-BF16 the AVX-512 path takes the AVX2 rounding (8 lanes suffice for a stream).
    if (vkk_has_avx2_fma()) { narrow_bf16_avx2(src, dst, count); return; }
#endif
    for (int64_t i = 0; i < count; ++i) dst[i] = float_to_bf16(src[i]);
}
