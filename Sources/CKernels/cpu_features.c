// See include/cpu_features.h.
#include "cpu_features.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

static uint32_t detect(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    uint32_t f = 0;
    if (c & (1u << 0)) f |= VKK_FEATURE_SSE3;
    if (c & (1u << 9)) f |= VKK_FEATURE_SSSE3;
    if (c & (1u << 19)) f |= VKK_FEATURE_SSE41;
    if (c & (1u << 20)) f |= VKK_FEATURE_SSE42;
    // The AVX registers are usable only when the OS saves them (OSXSAVE, then XCR0 bits 1-2; bits 5-7
    // for the AVX-512 mask and upper registers, 17-18 for the AMX tiles).
    uint64_t xcr0 = 0;
    if (c & (1u << 27)) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = ((uint64_t)hi << 32) | lo;
    }
    const int avx_state = (xcr0 & 0x6) == 0x6, avx512_state = avx_state && (xcr0 & 0xe0) == 0xe0;
    const int amx_state = (xcr0 & 0x60000) == 0x60000;
    if (avx_state) {
        if (c & (1u << 28)) f |= VKK_FEATURE_AVX;
        if (c & (1u << 12)) f |= VKK_FEATURE_FMA;
        if (c & (1u << 29)) f |= VKK_FEATURE_F16C;
    }
    unsigned max_leaf = __get_cpuid_max(0, 0);
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        const unsigned subleaves = a;
        if (avx_state && (b & (1u << 5))) f |= VKK_FEATURE_AVX2;
        if (avx512_state) {
            if (b & (1u << 16)) f |= VKK_FEATURE_AVX512F;
            if (b & (1u << 17)) f |= VKK_FEATURE_AVX512DQ;
            if (b & (1u << 28)) f |= VKK_FEATURE_AVX512CD;
            if (b & (1u << 30)) f |= VKK_FEATURE_AVX512BW;
            if (b & (1u << 31)) f |= VKK_FEATURE_AVX512VL;
            if (c & (1u << 11)) f |= VKK_FEATURE_AVX512VNNI;
            if (d & (1u << 23)) f |= VKK_FEATURE_AVX512FP16;
        }
        if (amx_state && (d & (1u << 24))) f |= VKK_FEATURE_AMX;
        if (subleaves >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            if (avx512_state && (a & (1u << 5))) f |= VKK_FEATURE_AVX512BF16;
        }
    }
    return f;
#else
    return 0;
#endif
}

uint32_t vkk_cpu_features(void) {
    static _Atomic int64_t cached = -1;
    int64_t value = atomic_load_explicit(&cached, memory_order_relaxed);
    if (value < 0) {
        value = detect();
        atomic_store_explicit(&cached, value, memory_order_relaxed);
    }
    return (uint32_t)value;
}

int vkk_cpu_best_path_for(uint32_t f) {
    const uint32_t avx2 = VKK_FEATURE_AVX | VKK_FEATURE_AVX2 | VKK_FEATURE_FMA | VKK_FEATURE_F16C;
    const uint32_t avx512 = avx2 | VKK_FEATURE_AVX512F | VKK_FEATURE_AVX512DQ | VKK_FEATURE_AVX512BW | VKK_FEATURE_AVX512VL;
    if ((f & avx512) == avx512) return VKK_PATH_AVX512;
    if ((f & avx2) == avx2) return VKK_PATH_AVX2;
    return VKK_PATH_SCALAR;
}

const char *vkk_cpu_path_name(int path) {
    switch (path) {
    case VKK_PATH_AVX512: return "avx512";
    case VKK_PATH_AVX2: return "avx2";
    default: return "scalar";
    }
}

// -2: not computed yet; -1: no override.
static _Atomic int forced = -2;

static int environment_path(void) {
    const char *value = getenv("VKK_CPU_PATH");
    if (value == NULL) return -1;
    if (strcmp(value, "scalar") == 0) return VKK_PATH_SCALAR;
    if (strcmp(value, "avx2") == 0) return VKK_PATH_AVX2;
    if (strcmp(value, "avx512") == 0) return VKK_PATH_AVX512;
    return -1;
}

int vkk_cpu_path(void) {
    int path = atomic_load_explicit(&forced, memory_order_relaxed);
    if (path == -2) {
        path = environment_path();
        int expected = -2;
        // A setter call that raced ahead wins.
        if (!atomic_compare_exchange_strong(&forced, &expected, path)) path = expected;
    }
    const int best = vkk_cpu_best_path_for(vkk_cpu_features());
    return path < 0 || path > best ? best : path;
}

void vkk_cpu_set_path(int path) {
    atomic_store(&forced, path < 0 ? environment_path() : path);
}
