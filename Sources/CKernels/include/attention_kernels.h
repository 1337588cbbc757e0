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

// A tile of query rows against a whole key range of one K/V head in one call (decode, and prefill tiles
// whose masks are key ranges only): the block kernels above run in turn, VKK_ATTENTION_KEY_BLOCK keys at a
// time, without crossing back to the caller per block. Row r (r < rows) sees the keys first[r] <= j <
// end[r] (indices from k and v, rows at k_stride / v_stride; first[r] >= end[r]: none); q[r] points at its
// dk floats. row_max, row_sum and acc (rows of dv floats at acc_stride) carry the online-softmax state in
// and out exactly as for vkk_attention_softmax_row (start at -inf, 0 and 0). kt (dk *
// VKK_ATTENTION_KEY_BLOCK floats) and s (rows * VKK_ATTENTION_KEY_BLOCK floats) are scratch. kt_keys, when
// not NULL, holds every key the rows may see transposed by vkk_attention_transpose_keys (from the same k):
// tiles that transpose their blocks (vkk_attention_uses_transposed_keys) read it instead, so the tiles of a
// head share one transposed copy.
void vkk_attention_stream(const float *const *q, int64_t rows, const float *k, int64_t k_stride, const float *v,
                          int64_t v_stride, int64_t dk, int64_t dv, float scale, const int64_t *first,
                          const int64_t *end, float *row_max, float *row_sum, float *acc, int64_t acc_stride,
                          const float *kt_keys, float *kt, float *s);

// Whether vkk_attention_scores (and vkk_attention_stream) transposes each key block for a tile of `rows`
// query rows on this CPU's path (few rows read key rows directly instead).
int vkk_attention_uses_transposed_keys(int64_t rows);

// The first `keys` key rows (k_stride apart, dk floats each) transposed block by block: block b (keys
// b * VKK_ATTENTION_KEY_BLOCK onward) at kt + b * dk * VKK_ATTENTION_KEY_BLOCK, dk rows of
// VKK_ATTENTION_KEY_BLOCK keys each, the last block zero-padded. kt holds ceil(keys / block) * dk * block
// floats.
void vkk_attention_transpose_keys(const float *k, int64_t k_stride, int64_t keys, int64_t dk, float *kt);

// The sum of x[0..<count], read once front to back with the widest vectors the path has: the streaming
// read that `vkk bench attention` times as the memory-bandwidth bound of decode.
float vkk_read_sum(const float *x, int64_t count);

#endif
