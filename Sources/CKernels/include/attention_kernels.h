// CPU inner kernels of the fused-attention family (Sources/VulkanKernels/Attention/Attention+CPU.swift):
// one tile of query rows against one block of at most VKK_ATTENTION_KEY_BLOCK keys. Swift walks the tiles
// and blocks, applies masks, and splits the work across threads; these loops use AVX-512 or AVX2/FMA
// where the CPU has them (chosen at run time, cpu_features.h) while the package builds for the
// baseline x86-64 target.
#ifndef VKK_ATTENTION_KERNELS_H
#define VKK_ATTENTION_KERNELS_H
#include <stdint.h>

#define VKK_ATTENTION_KEY_BLOCK 64

// s[r * VKK_ATTENTION_KEY_BLOCK + j] = scale * dot(q[r], k row j) for r < rows, j < keys (keys <=
// VKK_ATTENTION_KEY_BLOCK; entries j >= keys of each s row are scratch). q[r] points at query row r (rows
// of a tile may come from different heads: grouped-query attention packs the heads that share a K/V
// head into one tile); rows of k are at stride k_stride; both have dk contiguous floats. kt is scratch of
// dk * VKK_ATTENTION_KEY_BLOCK floats (the block transposed).
void vkk_attention_scores(const float *const *q, int64_t rows, const float *k, int64_t k_stride, int64_t keys,
                          int64_t dk, float scale, float *kt, float *s);

// The online-softmax step of one row: s holds the row's scores for this block (-inf where masked). Updates
// the running max and sum, replaces s[j] by exp(s[j] - new max) (0 where masked), and rescales the row's
// output accumulator acc (dv floats) when the max grew. A row whose max stays -inf is left as it was and
// its s is zeroed.
void vkk_attention_softmax_row(float *s, int64_t keys, float *row_max, float *row_sum, float *acc, int64_t dv);

// acc[r * acc_stride + e] += sum over j < keys of p[r * VKK_ATTENTION_KEY_BLOCK + j] * v[j * v_stride + e],
// for r < rows and e < dv.
void vkk_attention_pv(const float *p, int64_t rows, int64_t keys, const float *v, int64_t v_stride, int64_t dv,
                      float *acc, int64_t acc_stride);

#endif
