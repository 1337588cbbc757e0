// Shared by the C kernels (internal: not part of the module's headers): the run-time CPU feature checks
// and the AVX2 dot product.
#ifndef VKK_KERNEL_COMMON_H
#define VKK_KERNEL_COMMON_H
#include <stdint.h>
#if defined(__x86_64__)
#include <immintrin.h>

// The instruction-set extensions the kernels pick paths by, checked once.
enum { VKK_CPU_AVX2_FMA = 1, VKK_CPU_F16C = 2 };
static inline int vkk_cpu_features(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? VKK_CPU_AVX2_FMA : 0)
               | (__builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c") ? VKK_CPU_F16C : 0);
    }
    return cached;
}
static inline int vkk_has_avx2_fma(void) { return vkk_cpu_features() & VKK_CPU_AVX2_FMA; }
static inline int vkk_has_f16c(void) { return vkk_cpu_features() & VKK_CPU_F16C; }

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
