// The training network's fused, tile-by-tile forward and backward passes: see include/nerf_mlp.h. The
// formulas (activations, density head, SH encoding) are documented in HashGridNetwork.swift.
#include "nerf_mlp.h"
#include "cpu_features.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// MARK: the GEMM every layer is

// What the microkernels do with a block's sums.
enum { STORE = 0, STORE_RELU = 1, STORE_MASKED = 2, ACCUMULATE = 3 };

// C[r, 0:p] = Σ_{k < depth} A[r · a_row + k · a_depth] · B[k · ldb + 0:p] for rows r < m, then by `mode`:
// stored, stored through ReLU, stored where mask[r · ldm + column] > 0 (ReLU's derivative, read from the
// layer's output) and 0 elsewhere, or added to C. The sum over k runs in increasing k on every path
// (each path rounds each product and sum once, or fuses them in an FMA). a_row = 1, a_depth = lda reads A
// transposed: that is the weight gradient dW = dYᵀ · X, the sum over a tile's samples.
typedef struct {
    int64_t m, p, depth;
    const float *a;
    int64_t a_row, a_depth;
    const float *b;
    int64_t ldb;
    float *c;
    int64_t ldc;
    int mode;
    const float *mask;
    int64_t ldm;
} gemm_args;

static void gemm_scalar(const gemm_args *g) {
    float sums[128];
    for (int64_t c0 = 0; c0 < g->p; c0 += 128) {
        const int64_t width = g->p - c0 < 128 ? g->p - c0 : 128;
        for (int64_t r = 0; r < g->m; ++r) {
            for (int64_t j = 0; j < width; ++j) sums[j] = 0;
            for (int64_t k = 0; k < g->depth; ++k) {
                const float a = g->a[r * g->a_row + k * g->a_depth];
                const float *b = g->b + k * g->ldb + c0;
                for (int64_t j = 0; j < width; ++j) sums[j] += a * b[j];
            }
            float *c = g->c + r * g->ldc + c0;
            const float *mask = g->mask ? g->mask + r * g->ldm + c0 : NULL;
            for (int64_t j = 0; j < width; ++j) {
                const float s = sums[j];
                switch (g->mode) {
                case STORE: c[j] = s; break;
                case STORE_RELU: c[j] = s > 0 ? s : 0; break;
                case STORE_MASKED: c[j] = mask[j] > 0 ? s : 0; break;
                default: c[j] += s; break;
                }
            }
        }
    }
}

#if defined(__x86_64__)
#define AVX512_TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))
#define AVX2_TARGET __attribute__((target("avx2,fma")))

// One block of MR rows × NV vectors of 16 columns: MR · NV accumulators in registers (at most 6 × 4 = 24
// of the 32 zmm registers), each B row's NV vectors loaded once per k and each A value broadcast once.
// MR and NV are constants at every call, so the loops unroll and the arrays live in registers.
static inline __attribute__((always_inline)) AVX512_TARGET void block_avx512(const gemm_args *g, int64_t r0, int64_t c0,
                                                                              const int MR, const int NV) {
    __m512 acc[6][4];
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
    const float *a = g->a + r0 * g->a_row;
    for (int64_t k = 0; k < g->depth; ++k) {
        const float *brow = g->b + k * g->ldb + c0;
        __m512 b[4];
        for (int v = 0; v < NV; ++v) b[v] = _mm512_loadu_ps(brow + 16 * v);
        const float *ak = a + k * g->a_depth;
        for (int r = 0; r < MR; ++r) {
            const __m512 x = _mm512_set1_ps(ak[r * g->a_row]);
            for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(x, b[v], acc[r][v]);
        }
    }
    const __m512 zero = _mm512_setzero_ps();
    for (int r = 0; r < MR; ++r) {
        float *c = g->c + (r0 + r) * g->ldc + c0;
        for (int v = 0; v < NV; ++v) {
            __m512 s = acc[r][v];
            switch (g->mode) {
            case STORE_RELU: s = _mm512_max_ps(s, zero); break;
            case STORE_MASKED: {
                const __m512 m = _mm512_loadu_ps(g->mask + (r0 + r) * g->ldm + c0 + 16 * v);
                s = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(m, zero, _CMP_GT_OQ), s);
                break;
            }
            case ACCUMULATE: s = _mm512_add_ps(_mm512_loadu_ps(c + 16 * v), s); break;
            default: break;
            }
            _mm512_storeu_ps(c + 16 * v, s);
        }
    }
}

#define ROWS_AVX512(NV)                                                                                          \
    do {                                                                                                         \
        int64_t r = 0;                                                                                           \
        for (; r + 6 <= g->m; r += 6) block_avx512(g, r, c0, 6, NV);                                             \
        switch (g->m - r) {                                                                                      \
        case 5: block_avx512(g, r, c0, 5, NV); break;                                                            \
        case 4: block_avx512(g, r, c0, 4, NV); break;                                                            \
        case 3: block_avx512(g, r, c0, 3, NV); break;                                                            \
        case 2: block_avx512(g, r, c0, 2, NV); break;                                                            \
        case 1: block_avx512(g, r, c0, 1, NV); break;                                                            \
        default: break;                                                                                          \
        }                                                                                                        \
    } while (0)

// p a multiple of 16: column blocks of 64, the last of 16, 32 or 48.
static AVX512_TARGET void gemm_avx512(const gemm_args *g) {
    for (int64_t c0 = 0; c0 < g->p; c0 += 64) {
        switch ((g->p - c0) >= 64 ? 4 : (g->p - c0) / 16) {
        case 4: ROWS_AVX512(4); break;
        case 3: ROWS_AVX512(3); break;
        case 2: ROWS_AVX512(2); break;
        default: ROWS_AVX512(1); break;
        }
    }
}

// The AVX2 block: MR rows × 2 vectors of 8 columns (at most 12 accumulators of the 16 ymm registers).
static inline __attribute__((always_inline)) AVX2_TARGET void block_avx2(const gemm_args *g, int64_t r0, int64_t c0, const int MR) {
    __m256 acc[6][2];
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    const float *a = g->a + r0 * g->a_row;
    for (int64_t k = 0; k < g->depth; ++k) {
        const float *brow = g->b + k * g->ldb + c0;
        const __m256 b0 = _mm256_loadu_ps(brow), b1 = _mm256_loadu_ps(brow + 8);
        const float *ak = a + k * g->a_depth;
        for (int r = 0; r < MR; ++r) {
            const __m256 x = _mm256_broadcast_ss(ak + r * g->a_row);
            acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
        }
    }
    const __m256 zero = _mm256_setzero_ps();
    for (int r = 0; r < MR; ++r) {
        float *c = g->c + (r0 + r) * g->ldc + c0;
        for (int v = 0; v < 2; ++v) {
            __m256 s = acc[r][v];
            switch (g->mode) {
            case STORE_RELU: s = _mm256_max_ps(s, zero); break;
            case STORE_MASKED: {
                const __m256 m = _mm256_loadu_ps(g->mask + (r0 + r) * g->ldm + c0 + 8 * v);
                s = _mm256_and_ps(s, _mm256_cmp_ps(m, zero, _CMP_GT_OQ));
                break;
            }
            case ACCUMULATE: s = _mm256_add_ps(_mm256_loadu_ps(c + 8 * v), s); break;
            default: break;
            }
            _mm256_storeu_ps(c + 8 * v, s);
        }
    }
}

// p a multiple of 16.
static AVX2_TARGET void gemm_avx2(const gemm_args *g) {
    for (int64_t c0 = 0; c0 < g->p; c0 += 16) {
        int64_t r = 0;
        for (; r + 6 <= g->m; r += 6) block_avx2(g, r, c0, 6);
        switch (g->m - r) {
        case 5: block_avx2(g, r, c0, 5); break;
        case 4: block_avx2(g, r, c0, 4); break;
        case 3: block_avx2(g, r, c0, 3); break;
        case 2: block_avx2(g, r, c0, 2); break;
        case 1: block_avx2(g, r, c0, 1); break;
        default: break;
        }
    }
}
#endif

static int resolve_path(int path) {
    const int best = vkk_cpu_best_path_for(vkk_cpu_features());
    return path < 0 || path > best ? best : path;
}

static void gemm(const gemm_args *g, int path) {
    if (g->m <= 0 || g->p <= 0) return;
#if defined(__x86_64__)
    if (g->p % 16 == 0) {
        if (path == VKK_PATH_AVX512) { gemm_avx512(g); return; }
        if (path == VKK_PATH_AVX2) { gemm_avx2(g); return; }
    }
#endif
    gemm_scalar(g);
}

// C (m × p, ldc) = A (m × depth, lda) · B (depth × p, ldb), by mode.
static void layer(int64_t m, int64_t p, int64_t depth, const float *a, int64_t lda, const float *b, int64_t ldb, float *c,
                  int64_t ldc, int mode, const float *mask, int64_t ldm, int path) {
    const gemm_args g = {m, p, depth, a, lda, 1, b, ldb, c, ldc, mode, mask, ldm};
    gemm(&g, path);
}

// dW (outputs × inputs, += ) = Σ over the tile's rows of dY[row, n] · X[row, :].
static void weight_gradient(int64_t rows, int64_t outputs, int64_t inputs, const float *dy, int64_t ldy, const float *x,
                            float *dw, int path) {
    const gemm_args g = {outputs, inputs, rows, dy, 1, ldy, x, inputs, dw, inputs, ACCUMULATE, NULL, 0};
    gemm(&g, path);
}

// MARK: the network

enum { MAX_LAYERS = 20 };   // 8 + 1 density and 8 + 1 colour layers (HashGridConfiguration.validate)

// Each layer's (outputs, inputs) and offset in the flat matrices; returns the number of layers.
// Density layers first (density_hidden + 1), then colour layers (color_hidden + 1).
static int layer_shapes(const vkk_mlp_network *n, int64_t outputs[MAX_LAYERS], int64_t inputs[MAX_LAYERS], int64_t offsets[MAX_LAYERS]) {
    int count = 0;
    int64_t offset = 0;
    for (int l = 0; l <= n->density_hidden; ++l, ++count) {
        outputs[count] = l == n->density_hidden ? 16 : n->density_width;
        inputs[count] = l == 0 ? n->encoding_width : n->density_width;
        offsets[count] = offset;
        offset += outputs[count] * inputs[count];
    }
    for (int l = 0; l <= n->color_hidden; ++l, ++count) {
        outputs[count] = l == n->color_hidden ? 16 : n->color_width;
        inputs[count] = l == 0 ? 32 : n->color_width;
        offsets[count] = offset;
        offset += outputs[count] * inputs[count];
    }
    return count;
}

static int valid(const vkk_mlp_network *n) {
    return n->density_hidden >= 1 && n->color_hidden >= 1 && n->density_hidden + n->color_hidden + 2 <= MAX_LAYERS
        && n->density_width <= 128 && n->color_width <= 128 && n->encoding_width <= 128 && n->levels <= 32;
}

int64_t vkk_mlp_matrix_count(const vkk_mlp_network *n) {
    int64_t outputs[MAX_LAYERS], inputs[MAX_LAYERS], offsets[MAX_LAYERS];
    if (!valid(n)) return 0;
    const int count = layer_shapes(n, outputs, inputs, offsets);
    return offsets[count - 1] + outputs[count - 1] * inputs[count - 1];
}

void vkk_mlp_pack(const vkk_mlp_network *n, const float *weights, float *packed) {
    int64_t outputs[MAX_LAYERS], inputs[MAX_LAYERS], offsets[MAX_LAYERS];
    if (!valid(n)) return;
    const int count = layer_shapes(n, outputs, inputs, offsets);
    for (int l = 0; l < count; ++l) {
        const float *w = weights + offsets[l];
        float *t = packed + offsets[l];
        for (int64_t o = 0; o < outputs[l]; ++o)
            for (int64_t i = 0; i < inputs[l]; ++i) t[i * outputs[l] + o] = w[o * inputs[l] + i];
    }
}

void vkk_mlp_forward(const vkk_mlp_network *n, const vkk_mlp_activations *a, int64_t begin, int64_t end, int density_only,
                     int path) {
    int64_t outputs[MAX_LAYERS], inputs[MAX_LAYERS], offsets[MAX_LAYERS];
    if (!valid(n)) return;
    layer_shapes(n, outputs, inputs, offsets);
    path = resolve_path(path);
    const int64_t ew = n->encoding_width, dw = n->density_width, cw = n->color_width;
    float logits[VKK_MLP_TILE * 16];
    for (int64_t i0 = begin; i0 < end; i0 += VKK_MLP_TILE) {
        const int64_t i1 = end - i0 < VKK_MLP_TILE ? end : i0 + VKK_MLP_TILE, m = i1 - i0;
        vkk_hashgrid_encode(a->positions, i0, i1, n->grid, n->levels, n->features, n->table, a->encoded, (int32_t)ew);
        const float *x = a->encoded + i0 * ew;
        int64_t width = ew;
        int l = 0;
        for (; l < n->density_hidden; ++l) {
            float *y = a->density_hidden[l] + i0 * dw;
            layer(m, dw, width, x, width, n->packed + offsets[l], dw, y, dw, STORE_RELU, NULL, 0, path);
            x = y;
            width = dw;
        }
        // The 16 density outputs go into the first 16 columns of the colour input.
        float *color_input = a->color_input + i0 * 32;
        layer(m, 16, width, x, width, n->packed + offsets[l], 16, color_input, 32, STORE, NULL, 0, path);
        ++l;
        vkk_density_head(a->color_input, 32, i0, i1, a->sigma, density_only ? NULL : a->directions);
        if (density_only) continue;
        x = color_input;
        width = 32;
        for (int h = 0; h < n->color_hidden; ++h, ++l) {
            float *y = a->color_hidden[h] + i0 * cw;
            layer(m, cw, width, x, width, n->packed + offsets[l], cw, y, cw, STORE_RELU, NULL, 0, path);
            x = y;
            width = cw;
        }
        // All 16 rows of the last layer (one vector per row of the tile); the first 3 are the logits.
        layer(m, 16, width, x, width, n->packed + offsets[l], 16, logits, 16, STORE, NULL, 0, path);
        for (int64_t r = 0; r < m; ++r)
            for (int c = 0; c < 3; ++c) a->logits[(i0 + r) * 3 + c] = logits[r * 16 + c];
        vkk_logistic(a->logits + 3 * i0, a->rgb + 3 * i0, 3 * m);
    }
}

int64_t vkk_mlp_backward_scratch(const vkk_mlp_network *n) {
    (void)n;
    return 2 * (int64_t)VKK_MLP_TILE * 128;
}

void vkk_mlp_backward(const vkk_mlp_network *n, const vkk_mlp_activations *a, int64_t begin, int64_t end,
                      const float *rgb_gradient, const float *sigma_gradient, float *encoding_gradient, float *matrix_gradient,
                      float *scratch, int path) {
    int64_t outputs[MAX_LAYERS], inputs[MAX_LAYERS], offsets[MAX_LAYERS];
    if (!valid(n)) return;
    layer_shapes(n, outputs, inputs, offsets);
    path = resolve_path(path);
    const int64_t ew = n->encoding_width, dw = n->density_width, cw = n->color_width;
    const int density_base = 0, color_base = n->density_hidden + 1;
    for (int64_t i0 = begin; i0 < end; i0 += VKK_MLP_TILE) {
        const int64_t i1 = end - i0 < VKK_MLP_TILE ? end : i0 + VKK_MLP_TILE, m = i1 - i0;
        // `upstream` holds dL/d(layer output) for the tile (width `upstream_width`), `other` receives
        // dL/d(layer input).
        float *upstream = scratch, *other = scratch + VKK_MLP_TILE * 128;
        vkk_logistic_backward(rgb_gradient + 3 * i0, a->rgb + 3 * i0, upstream, 3 * m);
        int64_t upstream_width = 3;
        for (int h = n->color_hidden; h >= 0; --h) {
            const int l = color_base + h;
            const float *x = h == 0 ? a->color_input + i0 * 32 : a->color_hidden[h - 1] + i0 * cw;
            weight_gradient(m, upstream_width, inputs[l], upstream, upstream_width, x, matrix_gradient + offsets[l], path);
            if (h > 0) {
                layer(m, cw, upstream_width, upstream, upstream_width, n->weights + offsets[l], inputs[l], other, cw, STORE_MASKED,
                      a->color_hidden[h - 1] + i0 * cw, cw, path);
                upstream_width = cw;
            } else {
                // Only the colour input's first 16 columns (the density outputs) need a gradient.
                layer(m, 16, upstream_width, upstream, upstream_width, n->weights + offsets[l], 32, other, 16, STORE, NULL, 0, path);
                upstream_width = 16;
            }
            float *t = upstream; upstream = other; other = t;
        }
        // σ = exp(density output 0): its gradient with instant-ngp's clamped derivative.
        for (int64_t r = 0; r < m; ++r) {
            float raw = a->color_input[(i0 + r) * 32];
            raw = raw < -15 ? -15 : (raw > 15 ? 15 : raw);
            upstream[r * 16] += sigma_gradient[i0 + r] * expf(raw);
        }
        for (int h = n->density_hidden; h >= 0; --h) {
            const int l = density_base + h;
            const float *x = h == 0 ? a->encoded + i0 * ew : a->density_hidden[h - 1] + i0 * dw;
            weight_gradient(m, upstream_width, inputs[l], upstream, upstream_width, x, matrix_gradient + offsets[l], path);
            if (h > 0) {
                layer(m, dw, upstream_width, upstream, upstream_width, n->weights + offsets[l], inputs[l], other, dw, STORE_MASKED,
                      a->density_hidden[h - 1] + i0 * dw, dw, path);
                upstream_width = dw;
                float *t = upstream; upstream = other; other = t;
            } else {
                layer(m, ew, upstream_width, upstream, upstream_width, n->weights + offsets[l], ew, encoding_gradient + i0 * ew, ew,
                      STORE, NULL, 0, path);
            }
        }
    }
}

void vkk_mlp_sum_partials(const float *partials, int64_t groups, int64_t count, int64_t begin, int64_t end, float *out) {
    for (int64_t i = begin; i < end; ++i) out[i] = 0;
    for (int64_t g = 0; g < groups; ++g) {
        const float *p = partials + g * count;
        for (int64_t i = begin; i < end; ++i) out[i] += p[i];
    }
}
