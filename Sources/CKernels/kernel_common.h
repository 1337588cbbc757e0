// Shared by the C kernels (internal: not part of the module's headers): the run-time path checks and
// the AVX2 dot product.
#ifndef VKK_KERNEL_COMMON_H
#define VKK_KERNEL_COMMON_H
#include <stdint.h>
#if defined(__x86_64__)
#include <immintrin.h>

#include "cpu_features.h"

// The path in force (see cpu_features.h): AVX2 implies FMA and F16C.
static inline int vkk_has_avx2_fma(void) { return vkk_cpu_path() >= VKK_PATH_AVX2; }
static inline int vkk_has_f16c(void) { return vkk_cpu_path() >= VKK_PATH_AVX2; }
static inline int vkk_has_avx512(void) { return vkk_cpu_path() >= VKK_PATH_AVX512; }
// AVX512-BF16 (vcvtneps2bf16) is used on the AVX-512 path only, where the CPU has it.
static inline int vkk_has_avx512_bf16(void) {
    return vkk_has_avx512() && (vkk_cpu_features() & VKK_FEATURE_AVX512BF16) != 0;
}

// sum over i < count of x[i] * y[i]: 16 per step in two accumulators, then 8, then the scalar tail.
__attribute__((target("avx2,fma")))
static inline float vkk_dot_avx2(const float *x, const float *y, int64_t count) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= count; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), s1);
    }
    if (i + 8 <= count) { s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0); i += 8; }
    const __m256 s = _mm256_add_ps(s0, s1);
    const __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
    float sum = _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)));
    for (; i < count; ++i) sum += x[i] * y[i];
    return sum;
}
#endif
#endif
