// See include/attention_kernels.h. The score and P·V products are small GEMMs with register tiles of
// 4 rows x 16 columns (8 AVX accumulators); the softmax uses an AVX2 exp (x = n ln2 + f with ln2 split in
// two so that n ln2 is exact, e^f by its Taylor series to f^7, 2^n built in the exponent bits): within 1 ulp of e^x on
// [-87, 0] (0.87 ulp worst, checked against double exp in steps of 1e-4), exactly 0 below -87.3 so masked
// keys add nothing.
#include "attention_kernels.h"
#include "kernel_common.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define KB VKK_ATTENTION_KEY_BLOCK

static void transpose_block(const float *k, int64_t k_stride, int64_t keys, int64_t dk, float *kt) {
    for (int64_t j = 0; j < keys; ++j) {
        const float *row = k + j * k_stride;
        for (int64_t d = 0; d < dk; ++d) kt[d * KB + j] = row[d];
    }
    for (int64_t d = 0; d < dk; ++d) {
        for (int64_t j = keys; j < KB; ++j) kt[d * KB + j] = 0.0f;
    }
}

static void scores_generic(const float *const *q, int64_t rows, int64_t dk, float scale, const float *kt, float *s) {
    for (int64_t r = 0; r < rows; ++r) {
        float acc[KB] = {0};
        const float *qr = q[r];
        for (int64_t d = 0; d < dk; ++d) {
            const float a = qr[d];
            for (int j = 0; j < KB; ++j) acc[j] += a * kt[d * KB + j];
        }
        for (int j = 0; j < KB; ++j) s[r * KB + j] = scale * acc[j];
    }
}

static void pv_generic(const float *p, int64_t rows, int64_t keys, const float *v, int64_t v_stride, int64_t dv,
                       float *acc, int64_t acc_stride) {
    for (int64_t r = 0; r < rows; ++r) {
        float *out = acc + r * acc_stride;
        for (int64_t j = 0; j < keys; ++j) {
            const float pj = p[r * KB + j];
            if (pj == 0.0f) continue;
            const float *vj = v + j * v_stride;
            for (int64_t e = 0; e < dv; ++e) out[e] += pj * vj[e];
        }
    }
}

#if defined(__x86_64__)

// The register tile of both products: acc[2i], acc[2i + 1] += sum over t < count of a_i[t] *
// b[t * b_stride + (0..15)], for the four rows a_0..a_3 (8 accumulators, 2 B loads and 4 broadcasts
// per 8 FMAs).
__attribute__((target("avx2,fma"), always_inline))
static inline void fma_4x16(const float *a0, const float *a1, const float *a2, const float *a3,
                            const float *b, int64_t b_stride, int64_t count, __m256 acc[8]) {
    __m256 c00 = acc[0], c01 = acc[1], c10 = acc[2], c11 = acc[3], c20 = acc[4], c21 = acc[5], c30 = acc[6], c31 = acc[7];
    for (int64_t t = 0; t < count; ++t) {
        const __m256 b0 = _mm256_loadu_ps(b + t * b_stride), b1 = _mm256_loadu_ps(b + t * b_stride + 8);
        __m256 x = _mm256_broadcast_ss(a0 + t);
        c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(a1 + t);
        c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(a2 + t);
        c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(a3 + t);
        c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
    }
    acc[0] = c00; acc[1] = c01; acc[2] = c10; acc[3] = c11; acc[4] = c20; acc[5] = c21; acc[6] = c30; acc[7] = c31;
}

__attribute__((target("avx2,fma")))
static void scores_avx2(const float *const *q, int64_t rows, int64_t dk, float scale, const float *kt, float *s) {
    const __m256 vs = _mm256_set1_ps(scale);
    for (int64_t r0 = 0; r0 < rows; r0 += 4) {
        // Rows past the end repeat the last row (computed, never stored).
        const float *q0 = q[r0];
        const float *q1 = q[r0 + 1 < rows ? r0 + 1 : rows - 1];
        const float *q2 = q[r0 + 2 < rows ? r0 + 2 : rows - 1];
        const float *q3 = q[r0 + 3 < rows ? r0 + 3 : rows - 1];
        for (int j0 = 0; j0 < KB; j0 += 16) {
            __m256 a[8];
            for (int i = 0; i < 8; ++i) a[i] = _mm256_setzero_ps();
            fma_4x16(q0, q1, q2, q3, kt + j0, KB, dk, a);
            for (int64_t i = 0; i < 4 && r0 + i < rows; ++i) {
                float *out = s + (r0 + i) * KB + j0;
                _mm256_storeu_ps(out, _mm256_mul_ps(vs, a[2 * i]));
                _mm256_storeu_ps(out + 8, _mm256_mul_ps(vs, a[2 * i + 1]));
            }
        }
    }
}

// Fewer than 4 rows (decode): one dot product per score, straight from K's rows (a transposed block and
// a 4-row tile would cost a pass over K and 4x the multiply-adds).
__attribute__((target("avx2,fma")))
static void scores_rows_avx2(const float *const *q, int64_t rows, const float *k, int64_t k_stride, int64_t keys,
                             int64_t dk, float scale, float *s) {
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < keys; ++j) s[r * KB + j] = scale * vkk_dot_avx2(q[r], k + j * k_stride, dk);
    }
}

// e^x for 8 lanes; exactly 0 for x < -87.3 (and for -inf).
__attribute__((target("avx2,fma")))
static __m256 exp_avx2(__m256 x) {
    const __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    // x = n ln2 + f, |f| <= ln2 / 2, with ln2 split in two parts so n ln2 is exact.
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), x);
    f = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-6f), f);
    // e^f by its Taylor series to f^7 (truncation error below 1e-8 relative for |f| <= 0.347).
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    // 2^n in the exponent bits (n in [-126, 127] after the clamp).
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    const __m256 result = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
    return _mm256_andnot_ps(underflow, result);
}

__attribute__((target("avx2,fma")))
static float softmax_exp_avx2(float *s, int64_t keys, float max) {
    const __m256 vm = _mm256_set1_ps(max);
    __m256 sum = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= keys; j += 8) {
        const __m256 p = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
        _mm256_storeu_ps(s + j, p);
        sum = _mm256_add_ps(sum, p);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, sum);
    float total = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    for (; j < keys; ++j) {
        const float p = s[j] == -INFINITY ? 0.0f : expf(s[j] - max);
        s[j] = p;
        total += p;
    }
    return total;
}

__attribute__((target("avx2,fma")))
static void pv_avx2(const float *p, int64_t rows, int64_t keys, const float *v, int64_t v_stride, int64_t dv,
                    float *acc, int64_t acc_stride) {
    int64_t r0 = 0;
    for (; r0 + 4 <= rows; r0 += 4) {
        const float *p0 = p + r0 * KB, *p1 = p0 + KB, *p2 = p1 + KB, *p3 = p2 + KB;
        float *o0 = acc + r0 * acc_stride, *o1 = o0 + acc_stride, *o2 = o1 + acc_stride, *o3 = o2 + acc_stride;
        int64_t e0 = 0;
        for (; e0 + 16 <= dv; e0 += 16) {
            __m256 a[8] = {_mm256_loadu_ps(o0 + e0), _mm256_loadu_ps(o0 + e0 + 8), _mm256_loadu_ps(o1 + e0), _mm256_loadu_ps(o1 + e0 + 8),
                           _mm256_loadu_ps(o2 + e0), _mm256_loadu_ps(o2 + e0 + 8), _mm256_loadu_ps(o3 + e0), _mm256_loadu_ps(o3 + e0 + 8)};
            fma_4x16(p0, p1, p2, p3, v + e0, v_stride, keys, a);
            _mm256_storeu_ps(o0 + e0, a[0]); _mm256_storeu_ps(o0 + e0 + 8, a[1]);
            _mm256_storeu_ps(o1 + e0, a[2]); _mm256_storeu_ps(o1 + e0 + 8, a[3]);
            _mm256_storeu_ps(o2 + e0, a[4]); _mm256_storeu_ps(o2 + e0 + 8, a[5]);
            _mm256_storeu_ps(o3 + e0, a[6]); _mm256_storeu_ps(o3 + e0 + 8, a[7]);
        }
        if (e0 < dv) {
            // The last dv % 16 columns.
            for (int64_t r = r0; r < r0 + 4; ++r) {
                float *out = acc + r * acc_stride;
                for (int64_t j = 0; j < keys; ++j) {
                    const float pj = p[r * KB + j];
                    const float *vj = v + j * v_stride;
                    for (int64_t e = e0; e < dv; ++e) out[e] += pj * vj[e];
                }
            }
        }
    }
    // The last rows % 4 rows (all of them in decode), one at a time.
    for (int64_t r = r0; r < rows; ++r) {
        const float *pr = p + r * KB;
        float *out = acc + r * acc_stride;
        int64_t e0 = 0;
        for (; e0 + 16 <= dv; e0 += 16) {
            __m256 a0 = _mm256_loadu_ps(out + e0), a1 = _mm256_loadu_ps(out + e0 + 8);
            for (int64_t j = 0; j < keys; ++j) {
                const __m256 x = _mm256_broadcast_ss(pr + j);
                a0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(v + j * v_stride + e0), a0);
                a1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(v + j * v_stride + e0 + 8), a1);
            }
            _mm256_storeu_ps(out + e0, a0); _mm256_storeu_ps(out + e0 + 8, a1);
        }
        for (int64_t j = 0; j < keys && e0 < dv; ++j) {
            const float *vj = v + j * v_stride;
            for (int64_t e = e0; e < dv; ++e) out[e] += pr[j] * vj[e];
        }
    }
}
#endif

void vkk_attention_scores(const float *const *q, int64_t rows, const float *k, int64_t k_stride, int64_t keys,
                          int64_t dk, float scale, float *kt, float *s) {
    if (rows <= 0) return;
#if defined(__x86_64__)
    if (vkk_has_avx2_fma() && rows < 4) { scores_rows_avx2(q, rows, k, k_stride, keys, dk, scale, s); return; }
#endif
    transpose_block(k, k_stride, keys, dk, kt);
#if defined(__x86_64__)
    if (vkk_has_avx2_fma()) { scores_avx2(q, rows, dk, scale, kt, s); return; }
#endif
    scores_generic(q, rows, dk, scale, kt, s);
}

void vkk_attention_softmax_row(float *s, int64_t keys, float *row_max, float *row_sum, float *acc, int64_t dv) {
    float block_max = -INFINITY;
    for (int64_t j = 0; j < keys; ++j) block_max = s[j] > block_max ? s[j] : block_max;
    const float new_max = block_max > *row_max ? block_max : *row_max;
    if (new_max == -INFINITY) {
        memset(s, 0, (size_t)keys * sizeof(float));
        return;
    }
    const float correction = *row_max == -INFINITY ? 0.0f : expf(*row_max - new_max);
    *row_max = new_max;
    float sum;
#if defined(__x86_64__)
    if (vkk_has_avx2_fma()) {
        sum = softmax_exp_avx2(s, keys, new_max);
    } else
#endif
    {
        sum = 0.0f;
        for (int64_t j = 0; j < keys; ++j) {
            const float p = s[j] == -INFINITY ? 0.0f : expf(s[j] - new_max);
            s[j] = p;
            sum += p;
        }
    }
    *row_sum = *row_sum * correction + sum;
    if (correction != 1.0f) {
        for (int64_t e = 0; e < dv; ++e) acc[e] *= correction;
    }
}

void vkk_attention_pv(const float *p, int64_t rows, int64_t keys, const float *v, int64_t v_stride, int64_t dv,
                      float *acc, int64_t acc_stride) {
#if defined(__x86_64__)
    if (vkk_has_avx2_fma()) { pv_avx2(p, rows, keys, v, v_stride, dv, acc, acc_stride); return; }
#endif
    pv_generic(p, rows, keys, v, v_stride, dv, acc, acc_stride);
}
