// See include/blas_loader.h.
#define _GNU_SOURCE
#include "blas_loader.h"
#include "cpu_features.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// CBLAS's enumerations, by value (the header is not needed: the library is not linked).
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
typedef void (*sbgemm_fn)(int, int, int, int, int, int, float, const uint16_t *, int, const uint16_t *, int, float, float *, int);
typedef void (*sgemv_fn)(int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
typedef char *(*text_fn)(void);
typedef int (*int_fn)(void);

static vkk_blas_info info;
static sgemm_fn sgemm;
static sgemv_fn sgemv;
static sbgemm_fn sbgemm; // optional: NULL when the library lacks it
static pthread_once_t once = PTHREAD_ONCE_INIT;

// OpenBLAS's x86-64 core names (driver/others/dynamic.c) by the widest vector extension their kernels use.
static const struct { const char *name; int level; } cores[] = {
    {"SapphireRapids", 3}, {"Cooperlake", 3}, {"SkylakeX", 3},
    {"Haswell", 2}, {"Zen", 2}, {"Excavator", 2},
    {"Sandybridge", 1}, {"Bulldozer", 1}, {"Piledriver", 1}, {"Steamroller", 1},
    {"Prescott", 0}, {"Core2", 0}, {"Penryn", 0}, {"Dunnington", 0}, {"Nehalem", 0}, {"Atom", 0},
    {"Nano", 0}, {"Opteron", 0}, {"Opteron(SSE3)", 0}, {"Barcelona", 0}, {"Bobcat", 0}, {"Katmai", 0},
    {"Coppermine", 0}, {"Northwood", 0}, {"Banias", 0}, {"Athlon", 0}, {"Generic", 0},
};

int vkk_blas_core_level(const char *core) {
    if (core == NULL) return -1;
    for (size_t i = 0; i < sizeof cores / sizeof cores[0]; ++i) {
        if (strcasecmp(core, cores[i].name) == 0) return cores[i].level;
    }
    return -1;
}

int vkk_blas_cpu_level(uint32_t f) {
    // OpenBLAS's SkylakeX kernels use AVX-512 F, DQ, BW, VL and CD instructions; Haswell's AVX2 and FMA.
    const uint32_t avx512 = VKK_FEATURE_AVX2 | VKK_FEATURE_FMA | VKK_FEATURE_AVX512F | VKK_FEATURE_AVX512DQ |
                            VKK_FEATURE_AVX512CD | VKK_FEATURE_AVX512BW | VKK_FEATURE_AVX512VL;
    if ((f & avx512) == avx512) return 3;
    if ((f & (VKK_FEATURE_AVX2 | VKK_FEATURE_FMA)) == (VKK_FEATURE_AVX2 | VKK_FEATURE_FMA)) return 2;
    if (f & VKK_FEATURE_AVX) return 1;
    return 0;
}

int vkk_blas_core_candidates(uint32_t features, const char *library_core, const char **out, int capacity) {
    const int have = vkk_blas_core_level(library_core), can = vkk_blas_cpu_level(features);
    if (have < 0 || have >= can) return 0;
    // Best first; each later name is a fallback for a library that does not know the earlier one.
    // Cooperlake is SkylakeX plus AVX512-BF16 kernels for the bf16 GEMM; its sgemm is SkylakeX's.
    const char *list[4];
    int count = 0;
    if (can >= 3) {
        if (features & VKK_FEATURE_AVX512BF16) list[count++] = "Cooperlake";
        list[count++] = "SkylakeX";
    }
    if (can >= 2) list[count++] = "Haswell";
    if (can >= 1) list[count++] = "Sandybridge";
    int written = 0;
    for (int i = 0; i < count && written < capacity; ++i) {
        if (vkk_blas_core_level(list[i]) > have) out[written++] = list[i];
    }
    return written;
}

static void copy_text(char *destination, size_t size, const char *text) {
    snprintf(destination, size, "%s", text ? text : "");
}

// Opens `name` and fills info from it; 0 when it is not a usable CBLAS.
static void *open_library(const char *name) {
    void *handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) return NULL;
    sgemm_fn g = (sgemm_fn)dlsym(handle, "cblas_sgemm");
    sgemv_fn v = (sgemv_fn)dlsym(handle, "cblas_sgemv");
    if (g == NULL || v == NULL) { dlclose(handle); return NULL; }
    sgemm = g;
    sgemv = v;
    sbgemm = (sbgemm_fn)dlsym(handle, "cblas_sbgemm");
    Dl_info where;
    copy_text(info.library, sizeof info.library, dladdr((void *)g, &where) && where.dli_fname ? where.dli_fname : name);
    text_fn config = (text_fn)dlsym(handle, "openblas_get_config"), core = (text_fn)dlsym(handle, "openblas_get_corename");
    int_fn threads = (int_fn)dlsym(handle, "openblas_get_num_threads");
    copy_text(info.config, sizeof info.config, config ? config() : "(not OpenBLAS: no openblas_get_config)");
    copy_text(info.core, sizeof info.core, core ? core() : "unknown");
    info.threads = threads ? threads() : 0;
    return handle;
}

// Sets OPENBLAS_CORETYPE to `core` (NULL: unset) while `name` is opened, then puts back what was there,
// so that child processes make their own choice. This runs once per process, on the first GEMM on the CPU
// or the first look at `BLASLibrary.shared`; setenv is not safe against getenv on other threads, so a
// program that reads its environment from threads should load the BLAS early.
static void *open_with_core(const char *name, const char *core) {
    const char *previous = getenv("OPENBLAS_CORETYPE");
    char saved[64];
    copy_text(saved, sizeof saved, previous);
    if (core) setenv("OPENBLAS_CORETYPE", core, 1); else unsetenv("OPENBLAS_CORETYPE");
    void *handle = open_library(name);
    if (previous) setenv("OPENBLAS_CORETYPE", saved, 1); else unsetenv("OPENBLAS_CORETYPE");
    return handle;
}

static void load_library(void) {
    const char *requested = getenv("VKK_BLAS_LIBRARY"), *vkk_core = getenv("VKK_BLAS_CORETYPE");
    const char *user_core = getenv("OPENBLAS_CORETYPE");
    const char *names[] = {requested, "libopenblas.so.0", "libopenblas.so"};
    const char *name = NULL;
    void *handle = NULL;
    for (size_t i = requested ? 0 : 1; i < sizeof names / sizeof names[0] && handle == NULL; ++i) {
        name = names[i];
        handle = vkk_core ? open_with_core(name, vkk_core) : open_library(name);
    }
    if (handle == NULL) {
        snprintf(info.selection, sizeof info.selection,
                 "no BLAS library could be opened (%s%slibopenblas.so.0): a plain C GEMM runs, far slower; "
                 "apt-get install libopenblas0-pthread", requested ? requested : "", requested ? ", " : "");
        return;
    }
    info.loaded = 1;
    copy_text(info.library_core, sizeof info.library_core, info.core);
    if (vkk_core) {
        snprintf(info.selection, sizeof info.selection, "forced by VKK_BLAS_CORETYPE=%s", vkk_core);
        return;
    }
    const uint32_t features = vkk_cpu_features();
    const int cpu_level = vkk_blas_cpu_level(features);
    const char *candidates[4];
    const int count = vkk_blas_core_candidates(features, info.core, candidates, 4);
    // A core forced through OPENBLAS_CORETYPE is kept unless it is below what the CPU runs: that variable
    // is also set machine-wide to protect other programs' older OpenBLAS builds.
    char ignored[160] = "";
    if (user_core) {
        if (count == 0) {
            snprintf(info.selection, sizeof info.selection, "forced by OPENBLAS_CORETYPE=%s", user_core);
            return;
        }
        snprintf(ignored, sizeof ignored, "; OPENBLAS_CORETYPE=%s ignored, below this CPU (VKK_BLAS_CORETYPE forces a core)", user_core);
    } else if (count == 0) {
        snprintf(info.selection, sizeof info.selection, "the library's own choice, which fits this CPU");
        return;
    }
    // Reload with each candidate until the library runs it.
    for (int i = 0; i < count; ++i) {
        dlclose(handle);
        handle = open_with_core(name, candidates[i]);
        if (handle == NULL) break;
        if (strcasecmp(info.core, candidates[i]) == 0) {
            snprintf(info.selection, sizeof info.selection, "chosen from CPUID (level %d) over %s (level %d)%s",
                     cpu_level, info.library_core, vkk_blas_core_level(info.library_core), ignored);
            return;
        }
    }
    if (handle == NULL) handle = open_library(name);
    info.loaded = handle != NULL;
    snprintf(info.selection, sizeof info.selection, "the library ran none of the cores that fit this CPU better (level %d)%s",
             cpu_level, ignored);
}

// OpenBLAS's worker threads spin (sched_yield in a loop) for 2^OPENBLAS_THREAD_TIMEOUT cycles after each
// call before they sleep; the default, 2^28 cycles, is about 0.1 s. In a process that runs other threads
// between BLAS calls (this library's own CPU kernels, say) a spinning worker takes a core from them:
// `vkk bench sparse --backend cpu` timing OpenBLAS in turn with CSR SpMM (2 cores, Intel Xeon model 207)
// saw 4096² x 4096x256 at 50% take 48-52 ms instead of 26, with a quarter of all CPU samples in the
// worker's sched_yield. 2^20 cycles (~0.3 ms) still covers back-to-back calls. A value the user set wins;
// the variable is put back afterwards, so child processes make their own choice.
enum { BLAS_THREAD_TIMEOUT = 20 };

static void load(void) {
    const char *user = getenv("OPENBLAS_THREAD_TIMEOUT");
    char value[16];
    copy_text(value, sizeof value, user);
    if (!user) {
        snprintf(value, sizeof value, "%d", BLAS_THREAD_TIMEOUT);
        setenv("OPENBLAS_THREAD_TIMEOUT", value, 1);
    }
    load_library();
    if (!user) unsetenv("OPENBLAS_THREAD_TIMEOUT");
    if (info.loaded) {
        const size_t used = strlen(info.selection);
        snprintf(info.selection + used, sizeof info.selection - used, "; idle workers spin 2^%s cycles (OPENBLAS_THREAD_TIMEOUT%s)",
                 value, user ? ", yours" : "");
    }
}

const vkk_blas_info *vkk_blas_load(void) {
    pthread_once(&once, load);
    return &info;
}

// ---- Without a library: a blocked GEMM in plain C (correct, not fast). ----

static float element(const float *x, int64_t ld, int transposed, int64_t row, int64_t column) {
    return transposed ? x[column * ld + row] : x[row * ld + column];
}

static void sgemm_fallback(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                           const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    enum { KC = 256 };
    for (int64_t i = 0; i < m; ++i) {
        float *row = c + i * ldc;
        for (int64_t j = 0; j < n; ++j) row[j] = beta == 0.0f ? 0.0f : beta * row[j];
        for (int64_t p0 = 0; p0 < k; p0 += KC) {
            const int64_t p1 = p0 + KC < k ? p0 + KC : k;
            for (int64_t p = p0; p < p1; ++p) {
                const float x = alpha * element(a, lda, ta, i, p);
                if (tb) {
                    for (int64_t j = 0; j < n; ++j) row[j] += x * b[j * ldb + p];
                } else {
                    const float *brow = b + p * ldb;
                    for (int64_t j = 0; j < n; ++j) row[j] += x * brow[j];
                }
            }
        }
    }
}

void vkk_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
               const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (vkk_blas_load()->loaded) {
        sgemm(ROW_MAJOR, trans_a ? TRANS : NO_TRANS, trans_b ? TRANS : NO_TRANS, (int)m, (int)n, (int)k, alpha, a, (int)lda,
              b, (int)ldb, beta, c, (int)ldc);
        return;
    }
    sgemm_fallback(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void vkk_sgemv(int trans_a, int64_t rows, int64_t cols, float alpha, const float *a, int64_t lda, const float *x,
               int64_t incx, float beta, float *y, int64_t incy) {
    if (vkk_blas_load()->loaded) {
        sgemv(ROW_MAJOR, trans_a ? TRANS : NO_TRANS, (int)rows, (int)cols, alpha, a, (int)lda, x, (int)incx, beta, y, (int)incy);
        return;
    }
    const int64_t outputs = trans_a ? cols : rows, inputs = trans_a ? rows : cols;
    for (int64_t i = 0; i < outputs; ++i) {
        float sum = 0.0f;
        for (int64_t p = 0; p < inputs; ++p) sum += element(a, lda, trans_a, i, p) * x[p * incx];
        y[i * incy] = beta == 0.0f ? alpha * sum : alpha * sum + beta * y[i * incy];
    }
}

int vkk_sbgemm_available(void) { return vkk_blas_load()->loaded && sbgemm != NULL; }

void vkk_sbgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const uint16_t *a, int64_t lda,
                const uint16_t *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    sbgemm(ROW_MAJOR, trans_a ? TRANS : NO_TRANS, trans_b ? TRANS : NO_TRANS, (int)m, (int)n, (int)k, alpha, a, (int)lda,
           b, (int)ldb, beta, c, (int)ldc);
}
