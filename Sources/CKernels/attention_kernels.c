// See include/attention_kernels.h. The score and P·V products are small GEMMs with register tiles of
// 4 rows x 16 columns (8 AVX accumulators) on the AVX2 path and up to 6 rows x 64 columns (24 AVX-512
// accumulators) on the AVX-512 path; the softmax uses an AVX2 exp (x = n ln2 + f with ln2 split in
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

static void transpose_block_scalar(const float *k, int64_t k_stride, int64_t keys, int64_t dk, float *kt) {
    for (int64_t j = 0; j < keys; ++j) {
        const float *row = k + j * k_stride;
        for (int64_t d = 0; d < dk; ++d) kt[d * KB + j] = row[d];
    }
    for (int64_t d = 0; d < dk; ++d) {
        for (int64_t j = keys; j < KB; ++j) kt[d * KB + j] = 0.0f;
    }
}

#if defined(__x86_64__)
// Decode streams K and V from memory with a few multiply-adds per byte. The hardware prefetchers alone
// kept it at 1.5-2x the time of a plain read of the same bytes (Intel Xeon model 207: GQA decode, 4 rows
// per K/V head, one thread 26.6 ms against a 16 ms read): each K row the score loop and each V row the
// P.V loop touches requests its row DECODE_PREFETCH_KEYS keys ahead into L1. Measured, one thread:
// 16 keys ahead 1.21-1.25x the read, 32 ahead 1.27x, 64 ahead 1.30-1.37x; two threads: 8 ahead
// 1.21-1.25x, 16 ahead 1.04-1.09x, 24 ahead 1.34-1.57x. (On Zen 4 earlier, prefetches a whole 64-key
// block ahead into L2 gave nothing: a burst of a thousand prefetches at a block's start only queues.)
// Prefetches never fault, so the ones past the last key are harmless. The AVX2 path does the same (its
// decode with a K/V group of 4+ rows transposes each key block, and reads V 16 keys at a time): GQA decode
// at 32K keys, forced onto AVX2 here, went from 1.8x the read to the figure in Benchmarks/RESULTS.md.
enum { DECODE_PREFETCH_KEYS = 16 };

// kt[d * KB + j] = k[j * k_stride + d] by 8 x 8 blocks in AVX registers (unpack, shuffle, lane swap:
// 24 shuffles per 64 values, against 64 scalar stores); the ragged edges (keys or dk not a multiple of
// 8) and the zero padding of keys..KB are scalar. A tile of query rows transposes each key block once.
__attribute__((target("avx2,fma")))
static void transpose_block_avx(const float *k, int64_t k_stride, int64_t keys, int64_t dk, float *kt) {
    const int64_t keys8 = keys & ~(int64_t)7, dk8 = dk & ~(int64_t)7;
    for (int64_t j = 0; j < keys8; j += 8) {
        // The rows DECODE_PREFETCH_KEYS ahead (into the next block at its end: K rows are contiguous
        // blocks, and a prefetch past the end of K never faults), as the AVX-512 decode's score loop.
        for (int64_t jj = j + DECODE_PREFETCH_KEYS; jj < j + DECODE_PREFETCH_KEYS + 8; ++jj) {
            const char *ahead = (const char *)(k + jj * k_stride);
            for (int64_t o = 0; o < dk * 4; o += 64) _mm_prefetch(ahead + o, _MM_HINT_T0);
        }
        for (int64_t d = 0; d < dk8; d += 8) {
            const float *src = k + j * k_stride + d;
            __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + k_stride), r2 = _mm256_loadu_ps(src + 2 * k_stride),
                   r3 = _mm256_loadu_ps(src + 3 * k_stride), r4 = _mm256_loadu_ps(src + 4 * k_stride), r5 = _mm256_loadu_ps(src + 5 * k_stride),
                   r6 = _mm256_loadu_ps(src + 6 * k_stride), r7 = _mm256_loadu_ps(src + 7 * k_stride);
            const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
                         t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
                         t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee), u2 = _mm256_shuffle_ps(t1, t3, 0x44),
                         u3 = _mm256_shuffle_ps(t1, t3, 0xee), u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee),
                         u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
            float *dst = kt + d * KB + j;
            _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(dst + KB, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(dst + 2 * KB, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(dst + 3 * KB, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(dst + 4 * KB, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(dst + 5 * KB, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(dst + 6 * KB, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(dst + 7 * KB, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
        for (int64_t jj = j; jj < j + 8; ++jj) {
            for (int64_t d = dk8; d < dk; ++d) kt[d * KB + jj] = k[jj * k_stride + d];
        }
    }
    for (int64_t j = keys8; j < keys; ++j) {
        for (int64_t d = 0; d < dk; ++d) kt[d * KB + j] = k[j * k_stride + d];
    }
    for (int64_t d = 0; d < dk; ++d) {
        for (int64_t j = keys; j < KB; ++j) kt[d * KB + j] = 0.0f;
    }
}
#endif

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
        for (int64_t j = 0; j < keys; ++j) {
            if (r == 0) {
                const char *ahead = (const char *)(k + (j + DECODE_PREFETCH_KEYS) * k_stride);
                for (int64_t o = 0; o < dk * 4; o += 64) _mm_prefetch(ahead + o, _MM_HINT_T0);
            }
            s[r * KB + j] = scale * vkk_dot_avx2(q[r], k + j * k_stride, dk);
        }
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
static void pv_keys_avx2(const float *p, int64_t rows, int64_t keys, const float *v, int64_t v_stride, int64_t dv,
                         float *acc, int64_t acc_stride);

// Few rows (decode): 16 keys at a time, requesting the value rows DECODE_PREFETCH_KEYS ahead, so that each
// row comes from memory once and is reused from L1 by every column chunk.
__attribute__((target("avx2,fma")))
static void pv_avx2(const float *p, int64_t rows, int64_t keys, const float *v, int64_t v_stride, int64_t dv,
                    float *acc, int64_t acc_stride) {
    if (rows > 4) { pv_keys_avx2(p, rows, keys, v, v_stride, dv, acc, acc_stride); return; }
    for (int64_t j0 = 0; j0 < keys; j0 += 16) {
        const int64_t count = keys - j0 < 16 ? keys - j0 : 16;
        for (int64_t j = 0; j < count; ++j) {
            const char *ahead = (const char *)(v + (j0 + j + DECODE_PREFETCH_KEYS) * v_stride);
            for (int64_t o = 0; o < dv * 4; o += 64) _mm_prefetch(ahead + o, _MM_HINT_T0);
        }
        pv_keys_avx2(p + j0, rows, count, v + j0 * v_stride, v_stride, dv, acc, acc_stride);
    }
}

__attribute__((target("avx2,fma")))
static void pv_keys_avx2(const float *p, int64_t rows, int64_t keys, const float *v, int64_t v_stride, int64_t dv,
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

// ---- AVX-512 (F, DQ, BW, VL) ----

#define AVX512_TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))

// The register tile of both products on the AVX-512 path: c[i][j] = sum over t < count of a[i][t] *
// b[t * b_stride + 16 j + (0..15)] for R rows and C vectors of 16 columns (the last one masked by
// `last`): up to 6 x 4 = 24 accumulators, with C loads and R broadcasts per R * C FMAs. The tile reads
// and writes its rows of `out` (rows out_stride apart) directly: with `accumulate` it adds to them (P.V
// into the output accumulators), else it stores scale * c (the scores). R and C are constants in each
// instance, so the compiler keeps the tile in registers. (Passing the accumulators through an array on
// the stack instead cost 6% of prefill attention in the copies in and out.)
#define DEFINE_TILE(R, C)                                                                                          \
    AVX512_TARGET static void tile_##R##x##C(const float *const *a, const float *b, int64_t b_stride, int64_t count, \
                                             __mmask16 last, float *out, int64_t out_stride, int accumulate,      \
                                             float scale) {                                                       \
        __m512 c[R][C];                                                                                            \
        for (int i = 0; i < R; ++i)                                                                                \
            for (int j = 0; j < C; ++j)                                                                            \
                c[i][j] = accumulate ? _mm512_maskz_loadu_ps(j == C - 1 ? last : 0xffff, out + i * out_stride + 16 * j) \
                                     : _mm512_setzero_ps();                                                        \
        const float *ar[R];                                                                                        \
        for (int i = 0; i < R; ++i) ar[i] = a[i];                                                                  \
        for (int64_t t = 0; t < count; ++t) {                                                                      \
            const float *bt = b + t * b_stride;                                                                    \
            __m512 bv[C];                                                                                          \
            for (int j = 0; j < C - 1; ++j) bv[j] = _mm512_loadu_ps(bt + 16 * j);                                 \
            bv[C - 1] = _mm512_maskz_loadu_ps(last, bt + 16 * (C - 1));                                            \
            for (int i = 0; i < R; ++i) {                                                                          \
                const __m512 x = _mm512_set1_ps(ar[i][t]);                                                         \
                for (int j = 0; j < C; ++j) c[i][j] = _mm512_fmadd_ps(x, bv[j], c[i][j]);                          \
            }                                                                                                      \
        }                                                                                                          \
        const __m512 vs = _mm512_set1_ps(scale);                                                                   \
        for (int i = 0; i < R; ++i)                                                                                \
            for (int j = 0; j < C; ++j)                                                                            \
                _mm512_mask_storeu_ps(out + i * out_stride + 16 * j, j == C - 1 ? last : 0xffff,                   \
                                      accumulate ? c[i][j] : _mm512_mul_ps(vs, c[i][j]));                          \
    }
#define DEFINE_TILES(R) DEFINE_TILE(R, 1) DEFINE_TILE(R, 2) DEFINE_TILE(R, 3) DEFINE_TILE(R, 4)
DEFINE_TILES(1) DEFINE_TILES(2) DEFINE_TILES(3) DEFINE_TILES(4) DEFINE_TILES(5) DEFINE_TILES(6)

typedef void (*tile_fn)(const float *const *, const float *, int64_t, int64_t, __mmask16, float *, int64_t, int, float);
static const tile_fn tiles[6][4] = {
    {tile_1x1, tile_1x2, tile_1x3, tile_1x4}, {tile_2x1, tile_2x2, tile_2x3, tile_2x4}, {tile_3x1, tile_3x2, tile_3x3, tile_3x4},
    {tile_4x1, tile_4x2, tile_4x3, tile_4x4}, {tile_5x1, tile_5x2, tile_5x3, tile_5x4}, {tile_6x1, tile_6x2, tile_6x3, tile_6x4},
};
enum { TILE_ROWS = 6 };

AVX512_TARGET
static void pv_keys_avx512(const float *p, int64_t rows, int64_t keys, const float *v, int64_t v_stride, int64_t dv,
                           float *acc, int64_t acc_stride);

AVX512_TARGET
static void scores_avx512(const float *const *q, int64_t rows, int64_t dk, float scale, const float *kt, float *s) {
    for (int64_t r0 = 0; r0 < rows; r0 += TILE_ROWS) {
        const int R = rows - r0 < TILE_ROWS ? (int)(rows - r0) : TILE_ROWS;
        tiles[R - 1][3](q + r0, kt, KB, dk, 0xffff, s + r0 * KB, KB, 0, scale);
    }
}


// Few rows (decode: one query row per head of a K/V group): each key row is loaded once for all the
// rows (N of them, a constant in each instance so that the sums stay in registers), products summed
// across lanes at the end; no transposed block.
#define DEFINE_ROW_DOTS(N)                                                                                        \
    AVX512_TARGET static void row_dots_##N(const float *const *q, const float *k, int64_t k_stride, int64_t keys,  \
                                           int64_t dk, float scale, float *s) {                                   \
        const int64_t full = dk & ~(int64_t)15;                                                                    \
        const __mmask16 tail = (__mmask16)((1u << (dk & 15)) - 1);                                                 \
        for (int64_t j = 0; j < keys; ++j) {                                                                       \
            const float *kj = k + j * k_stride;                                                                    \
            { const char *ahead = (const char *)(kj + DECODE_PREFETCH_KEYS * k_stride);                            \
              for (int64_t o = 0; o < dk * 4; o += 64) _mm_prefetch(ahead + o, _MM_HINT_T0); }                     \
            __m512 acc[N];                                                                                         \
            for (int i = 0; i < N; ++i) acc[i] = _mm512_setzero_ps();                                              \
            int64_t d = 0;                                                                                         \
            for (; d < full; d += 16) {                                                                            \
                const __m512 kv = _mm512_loadu_ps(kj + d);                                                         \
                for (int i = 0; i < N; ++i) acc[i] = _mm512_fmadd_ps(_mm512_loadu_ps(q[i] + d), kv, acc[i]);       \
            }                                                                                                      \
            if (tail) {                                                                                            \
                const __m512 kv = _mm512_maskz_loadu_ps(tail, kj + d);                                             \
                for (int i = 0; i < N; ++i) acc[i] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, q[i] + d), kv, acc[i]); \
            }                                                                                                      \
            for (int i = 0; i < N; ++i) s[i * KB + j] = scale * _mm512_reduce_add_ps(acc[i]);                      \
        }                                                                                                          \
    }
DEFINE_ROW_DOTS(1) DEFINE_ROW_DOTS(2) DEFINE_ROW_DOTS(3) DEFINE_ROW_DOTS(4)

AVX512_TARGET
static void scores_rows_avx512(const float *const *q, int64_t rows, const float *k, int64_t k_stride, int64_t keys,
                               int64_t dk, float scale, float *s) {
    typedef void (*row_dots_fn)(const float *const *, const float *, int64_t, int64_t, int64_t, float, float *);
    static const row_dots_fn dots[4] = {row_dots_1, row_dots_2, row_dots_3, row_dots_4};
    for (int64_t r0 = 0; r0 < rows; r0 += 4) {
        const int64_t n = rows - r0 < 4 ? rows - r0 : 4;
        dots[n - 1](q + r0, k, k_stride, keys, dk, scale, s + r0 * KB);
    }
}

// e^x for 16 lanes, as exp_avx2 (same reduction and polynomial; 2^n applied by scalef); exactly 0 for
// x < -87.3 and for -inf.
AVX512_TARGET
static __m512 exp_avx512(__m512 x) {
    const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_GE_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x);
    f = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), f);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps(keep, p, n);
}

// The whole online-softmax step of one row (see vkk_attention_softmax_row), 16 keys per vector with a
// masked tail.
AVX512_TARGET
static void softmax_row_avx512(float *s, int64_t keys, float *row_max, float *row_sum, float *acc, int64_t dv) {
    // Once a row's running max has settled (most blocks of a long row), one pass: exponentials against
    // the old max, checking that no score exceeds it. Scores are only overwritten when none does, so a
    // block that raises the max falls through to the two passes below with its scores intact.
    if (*row_max != -INFINITY && keys == KB) {
        const __m512 vm = _mm512_set1_ps(*row_max);
        __m512 x[KB / 16];
        __mmask16 above = 0;
        for (int j = 0; j < KB / 16; ++j) {
            x[j] = _mm512_loadu_ps(s + 16 * j);
            above |= _mm512_cmp_ps_mask(x[j], vm, _CMP_GT_OQ);
        }
        if (above == 0) {
            __m512 sum = _mm512_setzero_ps();
            for (int j = 0; j < KB / 16; ++j) {
                const __m512 p = exp_avx512(_mm512_sub_ps(x[j], vm));
                _mm512_storeu_ps(s + 16 * j, p);
                sum = _mm512_add_ps(sum, p);
            }
            *row_sum += _mm512_reduce_add_ps(sum);
            return;
        }
    }
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int64_t j = 0; j < keys; j += 16) {
        const __mmask16 m = keys - j >= 16 ? 0xffff : (__mmask16)((1u << (keys - j)) - 1);
        vmax = _mm512_mask_max_ps(vmax, m, vmax, _mm512_maskz_loadu_ps(m, s + j));
    }
    const float block_max = _mm512_reduce_max_ps(vmax);
    const float new_max = block_max > *row_max ? block_max : *row_max;
    if (new_max == -INFINITY) {
        memset(s, 0, (size_t)keys * sizeof(float));
        return;
    }
    // Once the running max settles (most blocks of a long row), nothing needs rescaling.
    const float correction = *row_max == -INFINITY ? 0.0f : *row_max == new_max ? 1.0f : expf(*row_max - new_max);
    *row_max = new_max;
    const __m512 vm = _mm512_set1_ps(new_max);
    __m512 sum = _mm512_setzero_ps();
    for (int64_t j = 0; j < keys; j += 16) {
        const __mmask16 m = keys - j >= 16 ? 0xffff : (__mmask16)((1u << (keys - j)) - 1);
        const __m512 p = _mm512_maskz_mov_ps(m, exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + j), vm)));
        _mm512_mask_storeu_ps(s + j, m, p);
        sum = _mm512_add_ps(sum, p);
    }
    *row_sum = *row_sum * correction + _mm512_reduce_add_ps(sum);
    if (correction != 1.0f) {
        const __m512 vc = _mm512_set1_ps(correction);
        for (int64_t e = 0; e < dv; e += 16) {
            const __mmask16 m = dv - e >= 16 ? 0xffff : (__mmask16)((1u << (dv - e)) - 1);
            _mm512_mask_storeu_ps(acc + e, m, _mm512_mul_ps(vc, _mm512_maskz_loadu_ps(m, acc + e)));
        }
    }
}

AVX512_TARGET
static void pv_avx512(const float *p, int64_t rows, int64_t keys, const float *v, int64_t v_stride, int64_t dv,
                      float *acc, int64_t acc_stride) {
    // Few rows (decode) and wide rows of V: 16 keys at a time through every column chunk, so that each
    // value row is fetched from memory once and reused from L1 by the next chunk.
    const int64_t key_step = rows <= TILE_ROWS && dv > 64 ? 16 : keys;
    for (int64_t j0 = 0; j0 < keys; j0 += key_step) {
        const int64_t count = keys - j0 < key_step ? keys - j0 : key_step;
        if (rows <= TILE_ROWS) {
            for (int64_t j = 0; j < count; ++j) {
                const char *ahead = (const char *)(v + (j0 + j + DECODE_PREFETCH_KEYS) * v_stride);
                for (int64_t o = 0; o < dv * 4; o += 64) _mm_prefetch(ahead + o, _MM_HINT_T0);
            }
        }
        pv_keys_avx512(p + j0, rows, count, v + j0 * v_stride, v_stride, dv, acc, acc_stride);
    }
}

AVX512_TARGET
static void pv_keys_avx512(const float *p, int64_t rows, int64_t keys, const float *v, int64_t v_stride, int64_t dv,
                           float *acc, int64_t acc_stride) {
    for (int64_t e0 = 0; e0 < dv; e0 += 64) {
        const int64_t width = dv - e0 < 64 ? dv - e0 : 64;
        const int C = (int)((width + 15) / 16);
        const __mmask16 last = (width & 15) ? (__mmask16)((1u << (width & 15)) - 1) : 0xffff;
        for (int64_t r0 = 0; r0 < rows; r0 += TILE_ROWS) {
            const int R = rows - r0 < TILE_ROWS ? (int)(rows - r0) : TILE_ROWS;
            const float *pr[TILE_ROWS];
            for (int i = 0; i < R; ++i) pr[i] = p + (r0 + i) * KB;
            tiles[R - 1][C - 1](pr, v + e0, v_stride, keys, last, acc + r0 * acc_stride + e0, acc_stride, 1, 1.0f);
        }
    }
}

#endif

int vkk_attention_uses_transposed_keys(int64_t rows) {
    if (rows <= 0) return 0;
#if defined(__x86_64__)
    // Up to 8 rows (decode, a K/V group's heads) read each key row once for all rows; more rows share
    // one transposed copy of the block.
    if (vkk_has_avx512()) return rows > 8;
    if (vkk_has_avx2_fma()) return rows >= 4;
#endif
    return 1;
}

void vkk_attention_transpose_keys(const float *k, int64_t k_stride, int64_t keys, int64_t dk, float *kt) {
    for (int64_t b = 0; b < keys; b += KB) {
        const int64_t n = keys - b < KB ? keys - b : KB;
#if defined(__x86_64__)
        if (vkk_has_avx2_fma()) { transpose_block_avx(k + b * k_stride, k_stride, n, dk, kt + (b / KB) * dk * KB); continue; }
#endif
        transpose_block_scalar(k + b * k_stride, k_stride, n, dk, kt + (b / KB) * dk * KB);
    }
}

// Scores of a tile against a key block already transposed (kt: dk rows of KB keys).
static void scores_transposed(const float *const *q, int64_t rows, int64_t dk, float scale, const float *kt, float *s) {
#if defined(__x86_64__)
    if (vkk_has_avx512()) { scores_avx512(q, rows, dk, scale, kt, s); return; }
    if (vkk_has_avx2_fma()) { scores_avx2(q, rows, dk, scale, kt, s); return; }
#endif
    scores_generic(q, rows, dk, scale, kt, s);
}

void vkk_attention_scores(const float *const *q, int64_t rows, const float *k, int64_t k_stride, int64_t keys,
                          int64_t dk, float scale, float *kt, float *s) {
    if (rows <= 0) return;
#if defined(__x86_64__)
    if (!vkk_attention_uses_transposed_keys(rows)) {
        if (vkk_has_avx512()) scores_rows_avx512(q, rows, k, k_stride, keys, dk, scale, s); else scores_rows_avx2(q, rows, k, k_stride, keys, dk, scale, s);
        return;
    }
    if (vkk_has_avx2_fma()) {
        transpose_block_avx(k, k_stride, keys, dk, kt);
        scores_transposed(q, rows, dk, scale, kt, s);
        return;
    }
#endif
    transpose_block_scalar(k, k_stride, keys, dk, kt);
    scores_generic(q, rows, dk, scale, kt, s);
}

void vkk_attention_softmax_row(float *s, int64_t keys, float *row_max, float *row_sum, float *acc, int64_t dv) {
#if defined(__x86_64__)
    if (vkk_has_avx512()) { softmax_row_avx512(s, keys, row_max, row_sum, acc, dv); return; }
#endif
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
    if (vkk_has_avx512()) { pv_avx512(p, rows, keys, v, v_stride, dv, acc, acc_stride); return; }
    if (vkk_has_avx2_fma()) { pv_avx2(p, rows, keys, v, v_stride, dv, acc, acc_stride); return; }
#endif
    pv_generic(p, rows, keys, v, v_stride, dv, acc, acc_stride);
}

void vkk_attention_stream(const float *const *q, int64_t rows, const float *k, int64_t k_stride, const float *v,
                          int64_t v_stride, int64_t dk, int64_t dv, float scale, const int64_t *first,
                          const int64_t *end, float *row_max, float *row_sum, float *acc, int64_t acc_stride,
                          const float *kt_keys, float *kt, float *s) {
    // The keys any row sees.
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (int64_t r = 0; r < rows; ++r) {
        if (first[r] >= end[r]) continue;
        lo = first[r] < lo ? first[r] : lo;
        hi = end[r] > hi ? end[r] : hi;
    }
    if (rows <= 0 || lo >= hi) return;
    // The block kernels above in turn, 64 keys at a time, all in one call: the per-block work of decode
    // (and of prefill tiles without per-key masks) no longer crosses back into Swift. (A version fusing score, softmax and P·V per 16 keys was
    // measured slower on Zen 4: ~17 ms against ~13 ms of thread CPU time for 8 K/V heads x 32K keys x
    // d 128 x 4 rows; the row-at-a-time dot products of the 64-key block keep more loads in flight.)
    // With the keys transposed beforehand (kt_keys), the blocks are kt_keys' own (multiples of KB from key
    // 0): keys of the first block before lo are masked below like any key outside a row's range.
    const int pretransposed = kt_keys != NULL && vkk_attention_uses_transposed_keys(rows);
    for (int64_t b = pretransposed ? lo - lo % KB : lo; b < hi; b += KB) {
        const int64_t n = hi - b < KB ? hi - b : KB;
        if (pretransposed) scores_transposed(q, rows, dk, scale, kt_keys + (b / KB) * dk * KB, s);
        else vkk_attention_scores(q, rows, k + b * k_stride, k_stride, n, dk, scale, kt, s);
        for (int64_t r = 0; r < rows; ++r) {
            // Keys of the block outside the row's range (none for most rows of most blocks).
            float *sr = s + r * KB;
            const int64_t inside_lo = first[r] > b ? first[r] - b : 0, inside_hi = end[r] < b + n ? end[r] - b : n;
            if (inside_lo >= inside_hi) {
                for (int64_t j = 0; j < n; ++j) sr[j] = -INFINITY;
            } else {
                for (int64_t j = 0; j < inside_lo; ++j) sr[j] = -INFINITY;
                for (int64_t j = inside_hi; j < n; ++j) sr[j] = -INFINITY;
            }
            vkk_attention_softmax_row(sr, n, &row_max[r], &row_sum[r], acc + r * acc_stride, dv);
        }
        vkk_attention_pv(s, rows, n, v + b * v_stride, v_stride, dv, acc, acc_stride);
    }
}

#if defined(__x86_64__)
AVX512_TARGET
static float read_sum_avx512(const float *x, int64_t count) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= count; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i)); a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps(x + i + 32)); a3 = _mm512_add_ps(a3, _mm512_loadu_ps(x + i + 48));
    }
    for (; i < count; i += 16) {
        const __mmask16 m = count - i >= 16 ? 0xffff : (__mmask16)((1u << (count - i)) - 1);
        a0 = _mm512_add_ps(a0, _mm512_maskz_loadu_ps(m, x + i));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

__attribute__((target("avx2,fma")))
static float read_sum_avx2(const float *x, int64_t count) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= count; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i)); a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16)); a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    float sum = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    for (; i < count; ++i) sum += x[i];
    return sum;
}
#endif

float vkk_read_sum(const float *x, int64_t count) {
#if defined(__x86_64__)
    if (vkk_has_avx512()) return read_sum_avx512(x, count);
    if (vkk_has_avx2_fma()) return read_sum_avx2(x, count);
#endif
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= count; i += 4) { s0 += x[i]; s1 += x[i + 1]; s2 += x[i + 2]; s3 += x[i + 3]; }
    for (; i < count; ++i) s0 += x[i];
    return (s0 + s1) + (s2 + s3);
}
