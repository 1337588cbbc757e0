// CPU inner loops of NeRF training: see include/nerf_training.h. The formulas are documented on the Swift
// side (HashGridNetwork.swift, TrainingDensityGrid.swift, VolumeCompositing.swift, AdamOptimizer.swift).
#include "nerf_training.h"
#include <math.h>
#include <string.h>
#include "cpu_features.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static inline uint32_t grid_entry(uint32_t x, uint32_t y, uint32_t z, const vkk_grid_level *level) {
    if (level->dense) {
        const uint32_t r = level->resolution;
        return (x + y * r + z * r * r) % level->table_size;
    }
    return (x ^ (y * 2654435761u) ^ (z * 805459861u)) % level->table_size;
}

static inline float clamp01(float v) { return v < 0 ? 0 : (v > 1 ? 1 : v); }

// The 8 corners of a level: entries and trilinear weights (corner c = dx + 2 dy + 4 dz).
static inline void corners(const float *p, const vkk_grid_level *level, uint32_t entry[8], float weight[8]) {
    float t[3];
    uint32_t base[3];
    for (int a = 0; a < 3; ++a) {
        const float position = clamp01(p[a]) * level->scale + 0.5f;
        const float cell = floorf(position);
        t[a] = position - cell;
        base[a] = (uint32_t)(cell < 0 ? 0 : cell);
    }
    for (int c = 0; c < 8; ++c) {
        const uint32_t dx = c & 1, dy = (c >> 1) & 1, dz = c >> 2;
        weight[c] = (dx ? t[0] : 1 - t[0]) * (dy ? t[1] : 1 - t[1]) * (dz ? t[2] : 1 - t[2]);
        entry[c] = level->table_offset + grid_entry(base[0] + dx, base[1] + dy, base[2] + dz, level);
    }
}

// Rows of sample i + ENCODE_AHEAD: corners computed and their table entries prefetched while sample i
// is interpolated (the hashed levels miss the cache on nearly every entry). Levels are at most 32
// (HashGridConfiguration.validate); the arithmetic and its order are unchanged.
enum { ENCODE_AHEAD = 4, ENCODE_MAX_LEVELS = 32 };

// The levels in structure-of-arrays form, padded to 32 lanes, for the vectorised corners.
typedef struct {
    float scale[ENCODE_MAX_LEVELS];
    uint32_t resolution[ENCODE_MAX_LEVELS], offset[ENCODE_MAX_LEVELS], size[ENCODE_MAX_LEVELS], dense[ENCODE_MAX_LEVELS];
    int32_t count;
} level_lanes;

// 1 when every hashed level's table is a power of two (HashGridConfiguration's always are: a level is
// hashed only where 2^log2TableSize < resolution³), so that the hash's modulo is a mask; and every dense
// level's index stays below twice its table (x, y, z ≤ resolution, table ≥ resolution³ ≥ 8), so that the
// modulo is at most a few subtractions.
static int prepare_lanes(const vkk_grid_level *levels, int32_t count, level_lanes *lanes) {
    memset(lanes, 0, sizeof *lanes);
    lanes->count = count;
    int ok = 1;
    for (int32_t l = 0; l < count; ++l) {
        const vkk_grid_level *level = levels + l;
        lanes->scale[l] = level->scale;
        lanes->resolution[l] = level->resolution;
        lanes->offset[l] = level->table_offset;
        lanes->size[l] = level->table_size;
        lanes->dense[l] = level->dense;
        if (level->table_size == 0) ok = 0;
        if (!level->dense && (level->table_size & (level->table_size - 1)) != 0) ok = 0;
        if (level->dense && ((uint64_t)level->resolution * level->resolution * level->resolution >= (1ull << 31)
                             || level->table_size >= (1u << 30))) ok = 0;
    }
    return ok;
}

// The corners of every level of one sample: entry[c][l], weight[c][l] (layout shared by both versions).
static void sample_corners_scalar(const float *p, const vkk_grid_level *levels, int32_t count, uint32_t entry[8][ENCODE_MAX_LEVELS],
                                  float weight[8][ENCODE_MAX_LEVELS]) {
    uint32_t e[8];
    float w[8];
    for (int32_t l = 0; l < count; ++l) {
        corners(p, levels + l, e, w);
        for (int c = 0; c < 8; ++c) { entry[c][l] = e[c]; weight[c][l] = w[c]; }
    }
}

#if defined(__x86_64__)
// The same arithmetic as `corners`, 16 levels per vector: the same products in the same order (multiply,
// then add 0.5; floor; the weight's three factors left to right), so the results are bit-for-bit those
// of the scalar version.
__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))
static void sample_corners_avx512(const float *p, const level_lanes *lanes, uint32_t entry[8][ENCODE_MAX_LEVELS],
                                  float weight[8][ENCODE_MAX_LEVELS]) {
    for (int32_t l0 = 0; l0 < lanes->count; l0 += 16) {
        const int32_t left = lanes->count - l0;
        const __mmask16 live = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        const __m512 scale = _mm512_loadu_ps(lanes->scale + l0);
        __m512 t[3], u[3];
        __m512i base[3];
        for (int a = 0; a < 3; ++a) {
            const __m512 position = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(clamp01(p[a])), scale), _mm512_set1_ps(0.5f));
            const __m512 cell = _mm512_roundscale_ps(position, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
            t[a] = _mm512_sub_ps(position, cell);
            u[a] = _mm512_sub_ps(_mm512_set1_ps(1.0f), t[a]);
            base[a] = _mm512_cvttps_epu32(_mm512_max_ps(cell, _mm512_setzero_ps()));
        }
        const __m512i resolution = _mm512_loadu_si512(lanes->resolution + l0);
        const __m512i size = _mm512_loadu_si512(lanes->size + l0), offset = _mm512_loadu_si512(lanes->offset + l0);
        const __m512i mask = _mm512_sub_epi32(size, _mm512_set1_epi32(1));
        const __mmask16 dense = _mm512_test_epi32_mask(_mm512_loadu_si512(lanes->dense + l0), _mm512_set1_epi32(-1));
        const __m512i one = _mm512_set1_epi32(1);
        for (int c = 0; c < 8; ++c) {
            const int dx = c & 1, dy = (c >> 1) & 1, dz = c >> 2;
            const __m512 w = _mm512_mul_ps(_mm512_mul_ps(dx ? t[0] : u[0], dy ? t[1] : u[1]), dz ? t[2] : u[2]);
            const __m512i x = dx ? _mm512_add_epi32(base[0], one) : base[0];
            const __m512i y = dy ? _mm512_add_epi32(base[1], one) : base[1];
            const __m512i z = dz ? _mm512_add_epi32(base[2], one) : base[2];
            __m512i linear = _mm512_add_epi32(
                _mm512_add_epi32(x, _mm512_mullo_epi32(y, resolution)),
                _mm512_mullo_epi32(_mm512_mullo_epi32(z, resolution), resolution));
            for (__mmask16 over = _mm512_mask_cmpge_epu32_mask(dense, linear, size); over;
                 over = _mm512_mask_cmpge_epu32_mask(dense, linear, size)) {
                linear = _mm512_mask_sub_epi32(linear, over, linear, size);
            }
            const __m512i hashed = _mm512_and_si512(
                _mm512_xor_si512(_mm512_xor_si512(x, _mm512_mullo_epi32(y, _mm512_set1_epi32((int)2654435761u))),
                                 _mm512_mullo_epi32(z, _mm512_set1_epi32(805459861))),
                mask);
            const __m512i index = _mm512_add_epi32(offset, _mm512_mask_blend_epi32(dense, hashed, linear));
            _mm512_mask_storeu_epi32(entry[c] + l0, live, index);
            _mm512_mask_storeu_ps(weight[c] + l0, live, w);
        }
    }
}

// The AVX2 version: 8 levels per vector, the same operations in the same order. Signed compares suffice:
// prepare_lanes admits dense levels only with resolution³ ≤ table < 2^30, so indices stay below 2^31.
__attribute__((target("avx2,fma")))
static void sample_corners_avx2(const float *p, const level_lanes *lanes, uint32_t entry[8][ENCODE_MAX_LEVELS],
                                float weight[8][ENCODE_MAX_LEVELS]) {
    for (int32_t l0 = 0; l0 < lanes->count; l0 += 8) {
        const __m256 scale = _mm256_loadu_ps(lanes->scale + l0);
        __m256 t[3], u[3];
        __m256i base[3];
        for (int a = 0; a < 3; ++a) {
            const __m256 position = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(clamp01(p[a])), scale), _mm256_set1_ps(0.5f));
            const __m256 cell = _mm256_round_ps(position, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
            t[a] = _mm256_sub_ps(position, cell);
            u[a] = _mm256_sub_ps(_mm256_set1_ps(1.0f), t[a]);
            base[a] = _mm256_cvttps_epi32(_mm256_max_ps(cell, _mm256_setzero_ps()));
        }
        const __m256i resolution = _mm256_loadu_si256((const __m256i *)(lanes->resolution + l0));
        const __m256i size = _mm256_loadu_si256((const __m256i *)(lanes->size + l0));
        const __m256i offset = _mm256_loadu_si256((const __m256i *)(lanes->offset + l0));
        const __m256i one = _mm256_set1_epi32(1), mask = _mm256_sub_epi32(size, one);
        const __m256i dense = _mm256_cmpgt_epi32(_mm256_loadu_si256((const __m256i *)(lanes->dense + l0)), _mm256_setzero_si256());
        for (int c = 0; c < 8; ++c) {
            const int dx = c & 1, dy = (c >> 1) & 1, dz = c >> 2;
            const __m256 w = _mm256_mul_ps(_mm256_mul_ps(dx ? t[0] : u[0], dy ? t[1] : u[1]), dz ? t[2] : u[2]);
            const __m256i x = dx ? _mm256_add_epi32(base[0], one) : base[0];
            const __m256i y = dy ? _mm256_add_epi32(base[1], one) : base[1];
            const __m256i z = dz ? _mm256_add_epi32(base[2], one) : base[2];
            __m256i linear = _mm256_add_epi32(_mm256_add_epi32(x, _mm256_mullo_epi32(y, resolution)),
                                              _mm256_mullo_epi32(_mm256_mullo_epi32(z, resolution), resolution));
            for (__m256i over = _mm256_and_si256(dense, _mm256_cmpgt_epi32(linear, mask)); !_mm256_testz_si256(over, over);
                 over = _mm256_and_si256(dense, _mm256_cmpgt_epi32(linear, mask))) {
                linear = _mm256_sub_epi32(linear, _mm256_and_si256(over, size));
            }
            const __m256i hashed = _mm256_and_si256(
                _mm256_xor_si256(_mm256_xor_si256(x, _mm256_mullo_epi32(y, _mm256_set1_epi32((int)2654435761u))),
                                 _mm256_mullo_epi32(z, _mm256_set1_epi32(805459861))),
                mask);
            const __m256i index = _mm256_add_epi32(offset, _mm256_blendv_epi8(hashed, linear, dense));
            // Lanes past the last level hold zeros' corners: written into the padding, never read.
            _mm256_storeu_si256((__m256i *)(entry[c] + l0), index);
            _mm256_storeu_ps(weight[c] + l0, w);
        }
    }
}
#endif

void vkk_hashgrid_encode(const float *positions, int64_t begin, int64_t end, const vkk_grid_level *levels, int32_t level_count,
                         int32_t features, const float *table, float *encoded, int32_t stride) {
    if (level_count > ENCODE_MAX_LEVELS) return;
    uint32_t entry[ENCODE_AHEAD][8][ENCODE_MAX_LEVELS];
    float weight[ENCODE_AHEAD][8][ENCODE_MAX_LEVELS];
    level_lanes lanes;
    int vector = prepare_lanes(levels, level_count, &lanes);
#if defined(__x86_64__)
    vector = vector ? vkk_cpu_path() : 0;   // 0: scalar
#else
    vector = 0;
#endif
#if defined(__x86_64__)
#define SAMPLE_CORNERS(i, slot)                                                                                  \
    (vector == VKK_PATH_AVX512 ? sample_corners_avx512(positions + 3 * (i), &lanes, entry[slot], weight[slot])  \
     : vector == VKK_PATH_AVX2 ? sample_corners_avx2(positions + 3 * (i), &lanes, entry[slot], weight[slot])    \
                               : sample_corners_scalar(positions + 3 * (i), levels, level_count, entry[slot], weight[slot]))
#else
#define SAMPLE_CORNERS(i, slot) sample_corners_scalar(positions + 3 * (i), levels, level_count, entry[slot], weight[slot])
#endif
    for (int64_t i = begin; i < end && i < begin + ENCODE_AHEAD; ++i) SAMPLE_CORNERS(i, i - begin);
    for (int64_t i = begin; i < end; ++i) {
        const int slot = (int)((i - begin) % ENCODE_AHEAD);
        float *row = encoded + i * stride;
        memset(row, 0, sizeof(float) * (size_t)stride);
        for (int32_t l = 0; l < level_count; ++l) {
            float *out = row + l * features;
            if (features == 4) {
                float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                for (int c = 0; c < 8; ++c) {
                    const float *v = table + (int64_t)entry[slot][c][l] * 4;
                    const float w = weight[slot][c][l];
                    s0 += w * v[0]; s1 += w * v[1]; s2 += w * v[2]; s3 += w * v[3];
                }
                out[0] = s0; out[1] = s1; out[2] = s2; out[3] = s3;
            } else {
                for (int c = 0; c < 8; ++c) {
                    const float *v = table + (int64_t)entry[slot][c][l] * features;
                    for (int32_t f = 0; f < features; ++f) out[f] += weight[slot][c][l] * v[f];
                }
            }
        }
        if (i + ENCODE_AHEAD < end) {
            SAMPLE_CORNERS(i + ENCODE_AHEAD, slot);
            for (int c = 0; c < 8; ++c)
                for (int32_t l = 0; l < level_count; ++l) __builtin_prefetch(table + (int64_t)entry[slot][c][l] * features, 0, 1);
        }
    }
#undef SAMPLE_CORNERS
}

#if defined(__x86_64__)
// The corners of one level for up to 16 samples (lanes = samples), the same operations in the same order
// as `corners`, so bit-for-bit its results: entry[c][j], weight[c][j] for sample i0 + j, j < m.
__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))
static void level_corners_avx512(const float *positions, int64_t i0, int m, const vkk_grid_level *level, uint32_t entry[8][16],
                                 float weight[8][16]) {
    const __mmask16 live = m >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << m) - 1);
    const __m512i lane3 = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(3));
    __m512 t[3], u[3];
    __m512i base[3];
    for (int a = 0; a < 3; ++a) {
        __m512 p = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, lane3, positions + 3 * i0 + a, 4);
        // clamp01: v < 0 ? 0 : (v > 1 ? 1 : v).
        p = _mm512_mask_mov_ps(p, _mm512_cmp_ps_mask(p, _mm512_setzero_ps(), _CMP_LT_OQ), _mm512_setzero_ps());
        p = _mm512_mask_mov_ps(p, _mm512_cmp_ps_mask(p, _mm512_set1_ps(1.0f), _CMP_GT_OQ), _mm512_set1_ps(1.0f));
        const __m512 position = _mm512_add_ps(_mm512_mul_ps(p, _mm512_set1_ps(level->scale)), _mm512_set1_ps(0.5f));
        const __m512 cell = _mm512_roundscale_ps(position, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        t[a] = _mm512_sub_ps(position, cell);
        u[a] = _mm512_sub_ps(_mm512_set1_ps(1.0f), t[a]);
        base[a] = _mm512_cvttps_epu32(_mm512_max_ps(cell, _mm512_setzero_ps()));
    }
    const __m512i one = _mm512_set1_epi32(1), resolution = _mm512_set1_epi32((int)level->resolution);
    const __m512i size = _mm512_set1_epi32((int)level->table_size), offset = _mm512_set1_epi32((int)level->table_offset);
    for (int c = 0; c < 8; ++c) {
        const int dx = c & 1, dy = (c >> 1) & 1, dz = c >> 2;
        const __m512 w = _mm512_mul_ps(_mm512_mul_ps(dx ? t[0] : u[0], dy ? t[1] : u[1]), dz ? t[2] : u[2]);
        const __m512i x = dx ? _mm512_add_epi32(base[0], one) : base[0];
        const __m512i y = dy ? _mm512_add_epi32(base[1], one) : base[1];
        const __m512i z = dz ? _mm512_add_epi32(base[2], one) : base[2];
        __m512i index;
        if (level->dense) {
            index = _mm512_add_epi32(_mm512_add_epi32(x, _mm512_mullo_epi32(y, resolution)),
                                     _mm512_mullo_epi32(_mm512_mullo_epi32(z, resolution), resolution));
            for (__mmask16 over = _mm512_cmpge_epu32_mask(index, size); over; over = _mm512_cmpge_epu32_mask(index, size))
                index = _mm512_mask_sub_epi32(index, over, index, size);
        } else {
            index = _mm512_and_si512(_mm512_xor_si512(_mm512_xor_si512(x, _mm512_mullo_epi32(y, _mm512_set1_epi32((int)2654435761u))),
                                                      _mm512_mullo_epi32(z, _mm512_set1_epi32(805459861))),
                                     _mm512_sub_epi32(size, one));
        }
        _mm512_storeu_si512(entry[c], _mm512_add_epi32(offset, index));
        _mm512_storeu_ps(weight[c], w);
    }
}
#endif

void vkk_hashgrid_scatter(const float *positions, int64_t n, const vkk_grid_level *level, int32_t level_index, int32_t features,
                          const float *encoded_gradient, int32_t stride, float *table_gradient) {
#if defined(__x86_64__)
    // AVX-512: the corners of the next 16 samples are computed (and their gradient entries prefetched
    // for writing) before the current 16 are added: on the hashed levels nearly every entry is a cache
    // miss, and the prefetches let many be in flight. Same sums in the same order as the scalar loop.
    level_lanes lanes;
    if (vkk_cpu_path() >= VKK_PATH_AVX512 && prepare_lanes(level, 1, &lanes) && n > 0) {
        uint32_t entry[2][8][16];
        float weight[2][8][16];
        level_corners_avx512(positions, 0, n < 16 ? (int)n : 16, level, entry[0], weight[0]);
        for (int64_t i0 = 0, block = 0; i0 < n; i0 += 16, block ^= 1) {
            const int m = n - i0 < 16 ? (int)(n - i0) : 16;
            if (i0 + 16 < n) {
                const int next = n - i0 - 16 < 16 ? (int)(n - i0 - 16) : 16;
                level_corners_avx512(positions, i0 + 16, next, level, entry[block ^ 1], weight[block ^ 1]);
                for (int c = 0; c < 8; ++c)
                    for (int j = 0; j < next; ++j) __builtin_prefetch(table_gradient + (int64_t)entry[block ^ 1][c][j] * features, 1, 1);
            }
            for (int j = 0; j < m; ++j) {
                const float *g = encoded_gradient + (i0 + j) * stride + level_index * features;
                if (features == 4) {
                    // One 4-wide multiply and add per corner: the scalar loop's operations, lane by lane.
                    const __m128 g4 = _mm_loadu_ps(g);
                    for (int c = 0; c < 8; ++c) {
                        float *out = table_gradient + (int64_t)entry[block][c][j] * 4;
                        const __m128 product = _mm_mul_ps(_mm_set1_ps(weight[block][c][j]), g4);
                        _mm_storeu_ps(out, _mm_add_ps(_mm_loadu_ps(out), product));
                    }
                    continue;
                }
                for (int c = 0; c < 8; ++c) {
                    float *out = table_gradient + (int64_t)entry[block][c][j] * features;
                    const float w = weight[block][c][j];
                    for (int32_t f = 0; f < features; ++f) out[f] += w * g[f];
                }
            }
        }
        return;
    }
#endif
    // The corners of sample i + SCATTER_AHEAD are computed (and their gradient entries prefetched for
    // writing) while sample i is added: on the hashed levels nearly every entry is a cache miss, and
    // the prefetches let several be in flight. The sums are added in the same sample order as without
    // the look-ahead, so the result is bit-for-bit the same.
    enum { SCATTER_AHEAD = 8 };
    uint32_t entry[SCATTER_AHEAD][8];
    float weight[SCATTER_AHEAD][8];
    const int64_t primed = n < SCATTER_AHEAD ? n : SCATTER_AHEAD;
    for (int64_t i = 0; i < primed; ++i) corners(positions + 3 * i, level, entry[i], weight[i]);
    for (int64_t i = 0; i < n; ++i) {
        const int slot = (int)(i % SCATTER_AHEAD);
        const float *g = encoded_gradient + i * stride + level_index * features;
        for (int c = 0; c < 8; ++c) {
            float *out = table_gradient + (int64_t)entry[slot][c] * features;
            const float w = weight[slot][c];
            for (int32_t f = 0; f < features; ++f) out[f] += w * g[f];
        }
        if (i + SCATTER_AHEAD < n) {
            corners(positions + 3 * (i + SCATTER_AHEAD), level, entry[slot], weight[slot]);
            for (int c = 0; c < 8; ++c) __builtin_prefetch(table_gradient + (int64_t)entry[slot][c] * features, 1, 1);
        }
    }
}

void vkk_relu(float *values, int64_t count) {
    for (int64_t i = 0; i < count; ++i) values[i] = values[i] > 0 ? values[i] : 0;
}

void vkk_relu_backward(float *gradient, const float *activation, int64_t count) {
    for (int64_t i = 0; i < count; ++i) gradient[i] = activation[i] > 0 ? gradient[i] : 0;
}

void vkk_logistic(const float *x, float *y, int64_t count) {
    for (int64_t i = 0; i < count; ++i) y[i] = 1 / (1 + expf(-x[i]));
}

void vkk_logistic_backward(const float *gradient, const float *y, float *out, int64_t count) {
    for (int64_t i = 0; i < count; ++i) out[i] = gradient[i] * y[i] * (1 - y[i]);
}

void vkk_density_head(float *rows, int32_t stride, int64_t begin, int64_t end, float *sigma, const float *directions) {
    for (int64_t i = begin; i < end; ++i) {
        float *row = rows + i * stride;
        sigma[i] = expf(row[0]);
        if (!directions) continue;
        const float x = directions[3 * i], y = directions[3 * i + 1], z = directions[3 * i + 2];
        const float xx = x * x, yy = y * y, zz = z * z;
        float *sh = row + 16;
        sh[0] = 0.28209479177387814f;
        sh[1] = -0.48860251190291987f * y;
        sh[2] = 0.48860251190291987f * z;
        sh[3] = -0.48860251190291987f * x;
        sh[4] = 1.0925484305920792f * x * y;
        sh[5] = -1.0925484305920792f * y * z;
        sh[6] = 0.94617469575755997f * zz - 0.31539156525251999f;
        sh[7] = -1.0925484305920792f * x * z;
        sh[8] = 0.54627421529603959f * (xx - yy);
        sh[9] = 0.59004358992664352f * y * (yy - 3 * xx);
        sh[10] = 2.8906114426405538f * x * y * z;
        sh[11] = 0.45704579946446572f * y * (1 - 5 * zz);
        sh[12] = 0.3731763325901154f * z * (5 * zz - 3);
        sh[13] = 0.45704579946446572f * x * (1 - 5 * zz);
        sh[14] = 1.4453057213202769f * z * (xx - yy);
        sh[15] = 0.59004358992664352f * x * (3 * yy - xx);
    }
}

void vkk_density_head_backward(const float *full, const float *rows, int32_t stride, int64_t begin, int64_t end,
                               const float *sigma_gradient, float *out) {
    for (int64_t i = begin; i < end; ++i) {
        const float *source = full + i * stride;
        float *target = out + i * 16;
        for (int k = 0; k < 16; ++k) target[k] = source[k];
        float raw = rows[i * stride];
        raw = raw < -15 ? -15 : (raw > 15 ? 15 : raw);
        target[0] += sigma_gradient[i] * expf(raw);
    }
}

// MARK: marching

static inline uint32_t spread_bits(uint32_t v) {
    v &= 0x3ff;
    v = (v | v << 16) & 0x030000ff;
    v = (v | v << 8) & 0x0300f00f;
    v = (v | v << 4) & 0x030c30c3;
    v = (v | v << 2) & 0x09249249;
    return v;
}

static inline int occupied_at(const vkk_march_params *m, const float *p, int cascade) {
    const float scale = ldexpf(1.0f, -cascade), r = (float)m->resolution;
    int32_t i[3];
    for (int a = 0; a < 3; ++a) {
        const float q = ((p[a] - 0.5f) * scale + 0.5f) * r;
        if (!(q >= 0 && q < r)) return 0;
        i[a] = (int32_t)q;
    }
    const int64_t cells = (int64_t)m->resolution * m->resolution * m->resolution;
    return m->occupied[cascade * cells + (spread_bits((uint32_t)i[0]) | spread_bits((uint32_t)i[1]) << 1 | spread_bits((uint32_t)i[2]) << 2)];
}

static inline int cascade_for(const vkk_march_params *m, const float *p, float dt) {
    float extent = fabsf(p[0] - 0.5f);
    if (fabsf(p[1] - 0.5f) > extent) extent = fabsf(p[1] - 0.5f);
    if (fabsf(p[2] - 0.5f) > extent) extent = fabsf(p[2] - 0.5f);
    int exponent;
    frexpf(extent, &exponent);
    int mip = exponent + 1;
    mip = mip < 0 ? 0 : (mip > m->cascades - 1 ? m->cascades - 1 : mip);
    const float cells = dt * 2 * (float)m->resolution;
    if (cells >= 1) {
        frexpf(cells, &exponent);
        if (exponent > mip) mip = exponent;
        if (mip > m->cascades - 1) mip = m->cascades - 1;
    }
    return mip;
}

static inline float distance_to_next_cell(const float *p, const float *d, const float *inverse, int cascade, int32_t resolution) {
    const float res = ldexpf((float)resolution, -cascade);
    float best = INFINITY;
    for (int a = 0; a < 3; ++a) {
        if (d[a] == 0) continue;
        const float q = res * (p[a] - 0.5f);
        const float t = (floorf(q + 0.5f + 0.5f * (d[a] > 0 ? 1.0f : -1.0f)) - q) * inverse[a];
        if (t < best) best = t;
    }
    best /= res;
    return best > 0 ? best : 0;
}

int32_t vkk_march_ray(const vkk_march_params *m, const float *origin, const float *direction, float jitter,
                      float *positions, float *dt_out, int32_t capacity) {
    float inverse[3], near = 0, far = INFINITY;
    for (int a = 0; a < 3; ++a) {
        inverse[a] = 1 / direction[a];
        float t0 = (m->box_lower - origin[a]) * inverse[a], t1 = (m->box_upper - origin[a]) * inverse[a];
        if (t0 > t1) { const float s = t0; t0 = t1; t1 = s; }
        if (t0 > near) near = t0;
        if (t1 < far) far = t1;
    }
    if (!(near < far)) return 0;
    float step0 = near * m->cone;
    step0 = step0 < m->min_step ? m->min_step : (step0 > m->max_step ? m->max_step : step0);
    float t = near + step0 * jitter;
    const float box = m->box_upper - m->box_lower;
    int32_t count = 0;
    while (t < far && count < m->max_samples) {
        const float p[3] = {origin[0] + t * direction[0], origin[1] + t * direction[1], origin[2] + t * direction[2]};
        float dt = t * m->cone;
        dt = dt < m->min_step ? m->min_step : (dt > m->max_step ? m->max_step : dt);
        int cascade = cascade_for(m, p, dt);
        if (occupied_at(m, p, cascade)) {
            if (positions && count < capacity) {
                for (int a = 0; a < 3; ++a) positions[3 * count + a] = (p[a] - m->box_lower) / box;
                dt_out[count] = dt;
            }
            ++count;
            t += dt;
        } else {
            while (cascade < m->cascades - 1 && !occupied_at(m, p, cascade + 1)) ++cascade;
            const float target = distance_to_next_cell(p, direction, inverse, cascade, m->resolution);
            float steps = ceilf(target / dt);
            t += (steps > 1 ? steps : 1) * dt;
        }
    }
    return count;
}

// MARK: compositing

int32_t vkk_composite_forward(const float *rgb, const float *sigma, const float *dt, int32_t n, const float *background,
                              float threshold, float *colour, float *transmittance) {
    float c0 = 0, c1 = 0, c2 = 0, t = 1;
    int32_t used = 0;
    for (int32_t i = 0; i < n; ++i) {
        if (t < threshold) break;
        const float alpha = 1 - expf(-sigma[i] * dt[i]);
        const float weight = t * alpha;
        c0 += weight * rgb[3 * i]; c1 += weight * rgb[3 * i + 1]; c2 += weight * rgb[3 * i + 2];
        t *= 1 - alpha;
        used = i + 1;
    }
    colour[0] = c0 + t * background[0]; colour[1] = c1 + t * background[1]; colour[2] = c2 + t * background[2];
    *transmittance = t;
    return used;
}

void vkk_composite_backward(const float *rgb, const float *sigma, const float *dt, int32_t n, int32_t used, const float *colour,
                            const float *colour_gradient, float *rgb_gradient, float *sigma_gradient) {
    float t = 1, g0 = 0, g1 = 0, g2 = 0;
    for (int32_t i = 0; i < used; ++i) {
        const float alpha = 1 - expf(-sigma[i] * dt[i]);
        const float weight = t * alpha;
        const float r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
        g0 += weight * r; g1 += weight * g; g2 += weight * b;
        t *= 1 - alpha;
        rgb_gradient[3 * i] = weight * colour_gradient[0];
        rgb_gradient[3 * i + 1] = weight * colour_gradient[1];
        rgb_gradient[3 * i + 2] = weight * colour_gradient[2];
        sigma_gradient[i] = dt[i] * ((t * r - (colour[0] - g0)) * colour_gradient[0] + (t * g - (colour[1] - g1)) * colour_gradient[1]
                                     + (t * b - (colour[2] - g2)) * colour_gradient[2]);
    }
    for (int32_t i = used; i < n; ++i) {
        rgb_gradient[3 * i] = rgb_gradient[3 * i + 1] = rgb_gradient[3 * i + 2] = 0;
        sigma_gradient[i] = 0;
    }
}

// MARK: compaction

void vkk_compact_rows(float *rows, int64_t width, const int64_t *source, const int64_t *target, const int64_t *keep, int64_t rays) {
    for (int64_t r = 0; r < rays; ++r) {
        if (keep[r] <= 0 || source[r] == target[r]) continue;
        memmove(rows + target[r] * width, rows + source[r] * width, sizeof(float) * (size_t)(keep[r] * width));
    }
}

// MARK: Adam

void vkk_adam(float *parameters, float *gradients, float *first, float *second, uint32_t *steps, const float *debias,
              int64_t begin, int64_t end, int64_t matrix_count, float learning_rate, float beta1, float beta2, float epsilon,
              float l2) {
    for (int64_t i = begin; i < end; ++i) {
        float g = gradients[i];
        if (i >= matrix_count) {
            if (g == 0) continue;
            gradients[i] = 0;
        } else {
            g += l2 * parameters[i];
        }
        first[i] = beta1 * first[i] + (1 - beta1) * g;
        second[i] = beta2 * second[i] + (1 - beta2) * g * g;
        const uint32_t k = ++steps[i];
        parameters[i] -= learning_rate * debias[k] * first[i] / (sqrtf(second[i]) + epsilon);
    }
}
