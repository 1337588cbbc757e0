// The x86-64 instruction-set extensions this machine has (CPUID, with the operating system's consent to
// the wider registers read from XCR0), and which code path the C kernels take: scalar, AVX2/FMA or
// AVX-512. The best path the CPU runs is the default; `VKK_CPU_PATH=scalar|avx2|avx512` (read once) or
// vkk_cpu_set_path (tests) forces a lower one. A forced path the CPU cannot run falls back to the best
// one it can.
#ifndef VKK_CPU_FEATURES_H
#define VKK_CPU_FEATURES_H
#include <stdint.h>

enum {
    VKK_FEATURE_SSE3 = 1u << 0,
    VKK_FEATURE_SSSE3 = 1u << 1,
    VKK_FEATURE_SSE41 = 1u << 2,
    VKK_FEATURE_SSE42 = 1u << 3,
    VKK_FEATURE_AVX = 1u << 4,
    VKK_FEATURE_FMA = 1u << 5,
    VKK_FEATURE_F16C = 1u << 6,
    VKK_FEATURE_AVX2 = 1u << 7,
    VKK_FEATURE_AVX512F = 1u << 8,
    VKK_FEATURE_AVX512DQ = 1u << 9,
    VKK_FEATURE_AVX512CD = 1u << 10,
    VKK_FEATURE_AVX512BW = 1u << 11,
    VKK_FEATURE_AVX512VL = 1u << 12,
    VKK_FEATURE_AVX512VNNI = 1u << 13,
    VKK_FEATURE_AVX512BF16 = 1u << 14,
    VKK_FEATURE_AVX512FP16 = 1u << 15,
    VKK_FEATURE_AMX = 1u << 16,   // AMX-TILE with the OS's consent to the tile state
};

/// The VKK_FEATURE_* bits of this CPU (0 on other architectures). Computed once.
uint32_t vkk_cpu_features(void);

/// The kernels' code paths, in increasing order.
enum { VKK_PATH_SCALAR = 0, VKK_PATH_AVX2 = 1, VKK_PATH_AVX512 = 2 };

/// The best path a CPU with these features runs: AVX-512 needs F, DQ, BW and VL (with AVX2, FMA, F16C);
/// AVX2 needs AVX2, FMA and F16C.
int vkk_cpu_best_path_for(uint32_t features);

/// The path the kernels take now: the forced one (setter, else VKK_CPU_PATH), at most the best one.
int vkk_cpu_path(void);

/// Forces a path for the whole process (tests); -1 returns to VKK_CPU_PATH or the best path.
void vkk_cpu_set_path(int path);

/// "scalar", "avx2", "avx512".
const char *vkk_cpu_path_name(int path);

#endif
