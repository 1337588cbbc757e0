// The CPU path's BLAS (OpenBLAS), opened at run time rather than linked, so that its kernel can be
// chosen from this CPU's features. OpenBLAS built with DYNAMIC_ARCH picks a kernel ("core") by CPU
// model when it is loaded; a release that does not know the CPU falls back to an old generic one
// (Debian 12's 0.3.21 runs "Prescott", SSE3, on a Sapphire Rapids-class Xeon with AVX-512: about a
// fifth of the machine's GEMM speed). The loader asks the library which core it chose, and when that
// core uses less of the instruction set than the CPU has, loads it again with OPENBLAS_CORETYPE set
// to the best core the CPU runs. VKK_BLAS_CORETYPE forces a core; OPENBLAS_CORETYPE is kept unless it
// names a core below what the CPU runs (it is also set machine-wide to protect other programs).
#ifndef VKK_BLAS_LOADER_H
#define VKK_BLAS_LOADER_H
#include <stdint.h>

typedef struct {
    int loaded;              // 1 when a BLAS library is in use; 0: the built-in C GEMM runs instead
    char library[512];       // the shared object's path
    char config[256];        // openblas_get_config(): version and build options
    char core[64];           // the core in use (openblas_get_corename())
    char library_core[64];   // the core the library chose by itself ("" when it was not asked)
    char selection[320];     // how the core was chosen, or why no library was loaded
    int threads;             // openblas_get_num_threads()
} vkk_blas_info;

/// Loads the BLAS once (thread-safe; later calls return the same record). The library is the file named
/// by VKK_BLAS_LIBRARY, else libopenblas.so.0, else libopenblas.so, found the way dlopen finds them.
const vkk_blas_info *vkk_blas_load(void);

/// The instruction-set level an OpenBLAS x86-64 core's kernels use: 3 AVX-512, 2 AVX2/FMA, 1 AVX,
/// 0 SSE-era; -1 for a name this table does not know.
int vkk_blas_core_level(const char *core);

/// The same level for a CPU with these VKK_FEATURE_* bits (cpu_features.h).
int vkk_blas_cpu_level(uint32_t features);

/// The decision: the cores to ask for, best first, when `library_core` (the library's own choice) uses
/// less than a CPU with `features` runs; writes at most `capacity` names to `cores` and returns how many
/// (0: keep the library's choice, also for a core name this table does not know).
int vkk_blas_core_candidates(uint32_t features, const char *library_core, const char **cores, int capacity);

/// Row-major C = alpha * op(A) * op(B) + beta * C (op: transpose when trans_* is nonzero), as
/// cblas_sgemm; beta == 0 never reads C. Without a BLAS library, a blocked C loop computes the same.
void vkk_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
               const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/// 1 when the loaded BLAS exports OpenBLAS's cblas_sbgemm (built with BUILD_BFLOAT16; Debian 12's 0.3.21
/// is not), else 0.
int vkk_sbgemm_available(void);

/// Row-major C = alpha * op(A) * op(B) + beta * C with bf16 A and B (bits as uint16_t) and fp32 C, as
/// cblas_sbgemm; call only when vkk_sbgemm_available().
void vkk_sbgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const uint16_t *a, int64_t lda,
                const uint16_t *b, int64_t ldb, float beta, float *c, int64_t ldc);

/// Row-major y = alpha * op(A) * x + beta * y, A rows x cols (op(A) cols x rows when transposed), as
/// cblas_sgemv.
void vkk_sgemv(int trans_a, int64_t rows, int64_t cols, float alpha, const float *a, int64_t lda, const float *x,
               int64_t incx, float beta, float *y, int64_t incy);

#endif
