// CPU inner kernels of the sparse family (Sources/VulkanKernels/Sparse): one thread's share of SpMM
// rows. Swift splits the work across threads and converts fp16 to fp32 first; these loops are written
// in C so that they can use AVX-512 or AVX2/FMA where the CPU has them (chosen at run time,
// cpu_features.h) while the package builds for the baseline x86-64 target.
#ifndef VKK_SPARSE_KERNELS_H
#define VKK_SPARSE_KERNELS_H
#include <stddef.h>
#include <stdint.h>

// The sparse operand: CSR (kind 0), BSR (kind 1) or N:M (kind 2), fp32 values.
typedef struct {
    int kind;
    const int32_t *pointers;  // CSR row pointers / BSR block-row pointers
    const int32_t *indices;   // CSR column indices / BSR block-column indices
    const uint8_t *positions; // N:M in-group positions
    const float *values;
    int64_t block;            // BSR block size
    int64_t n, m, groups;     // N:M
} vkk_sparse_rows;

// Column tiles of B (K x N row-major, row stride ldb) packed for vkk_spmm_rows: tile t holds columns
// [32t, 32t + 32) as a contiguous K x 32 block at packed + t * K * 32, the last tile zero-padded; packs
// tiles [tile_begin, tile_end). packed needs ceil(N / 32) * K * 32 floats.
void vkk_pack_b(const float *b, int64_t ldb, int64_t k, int64_t n, float *packed, int64_t tile_begin, int64_t tile_end);

// The same tiles for B = X^T, X N x K row-major (row stride ldx): tile t row k column j holds X(32t + j, k).
// One pass that both transposes and packs (the linear form Y = X * W^T reads X this way).
void vkk_pack_bt(const float *x, int64_t ldx, int64_t k, int64_t n, float *packed, int64_t tile_begin, int64_t tile_end);

// C(r, :) = alpha * (A(r, :) * B) + beta * C(r, :) for rows [row_begin, row_end) of A; C(r, j) lives at
// c[r * c_row_stride + j * c_column_stride] (row-major: ldc and 1; stored transposed: 1 and M); beta == 0
// never reads C. B (K x N) is read in 32-column tiles: tile t at b + t * tile_stride, its
// row k at + k * row_stride. Packed by vkk_pack_b: row_stride 32, tile_stride K * 32, padded = 1. In
// place: row_stride ldb, tile_stride 32, padded = 0 (the last tile then reads only its own columns).
void vkk_spmm_rows(const vkk_sparse_rows *a, const float *b, int64_t row_stride, int64_t tile_stride, int padded, int64_t n,
                   float *c, int64_t c_row_stride, int64_t c_column_stride, int64_t row_begin, int64_t row_end, float alpha, float beta);

// y[r] = alpha * (sum over the stored entries of row r of value * x[column]) + beta * y[r], for rows
// [row_begin, row_end); beta == 0 never reads y.
void vkk_spmv_rows(const vkk_sparse_rows *a, const float *x, float *y, int64_t row_begin, int64_t row_end, float alpha, float beta);

// sum over i < count of x[i] * y[i], in fp32 (several accumulators).
float vkk_dot(const float *x, const float *y, int64_t count);

#endif
