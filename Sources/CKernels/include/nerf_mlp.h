// The training network's MLPs (HashGridNetwork.swift) fused tile by tile: for VKK_MLP_TILE samples at a
// time, the hash encoding, every layer of the density MLP, the density head, every layer of the colour MLP
// and the logistic run back to back while the tile's activations are still in L1/L2; the backward pass
// likewise. Each layer is a register-tiled GEMM microkernel (AVX-512, AVX2/FMA or scalar, as
// vkk_cpu_path chooses) with ReLU, or ReLU's derivative, fused into its store. The activations the
// backward pass needs are still written to the caller's whole-batch arrays (row-major, one row per
// sample), so that the trainer can compact them.
#ifndef VKK_NERF_MLP_H
#define VKK_NERF_MLP_H
#include <stdint.h>
#include "nerf_training.h"

enum { VKK_MLP_TILE = 64 };

// The network's shape (HashGridConfiguration) and parameters. Every layer is a row-major outputs × inputs
// matrix in the flat parameter array, density layers then colour layers; inputs and outputs are multiples
// of 16 (the colour MLP's last layer has 16 rows, of which the first 3 are RGB).
typedef struct {
    int32_t levels, features, encoding_width;
    int32_t density_width, density_hidden;   // hidden width, hidden layers (≥ 1)
    int32_t color_width, color_hidden;
    const vkk_grid_level *grid;              // levels entries
    const float *table;                      // the grid tables (entries of `features` floats)
    const float *weights;                    // the MLP matrices, outputs × inputs each
    const float *packed;                     // the same matrices transposed (inputs × outputs), vkk_mlp_pack
} vkk_mlp_network;

// The forward pass's inputs and kept activations, whole-batch arrays with one row per sample:
// positions, directions (3), encoded (encoding_width), density_hidden[l] (density_width),
// color_input (32: the 16 density outputs, then SH(direction)), color_hidden[l] (color_width),
// logits (3), rgb (3), sigma (1).
typedef struct {
    const float *positions, *directions;
    float *encoded;
    float *const *density_hidden;
    float *color_input;
    float *const *color_hidden;
    float *logits, *rgb, *sigma;
} vkk_mlp_activations;

// Number of floats of the matrices (and of vkk_mlp_pack's output).
int64_t vkk_mlp_matrix_count(const vkk_mlp_network *network);

// packed = every matrix of `weights` transposed, in the same order.
void vkk_mlp_pack(const vkk_mlp_network *network, const float *weights, float *packed);

// Forward pass of samples [begin, end) on `path` (VKK_PATH_*; a path this CPU cannot run falls back to the
// best one it can): fills every array of `a` for those rows. density_only stops after σ (colour input,
// colour layers, logits and RGB untouched).
void vkk_mlp_forward(const vkk_mlp_network *network, const vkk_mlp_activations *a, int64_t begin, int64_t end,
                     int density_only, int path);

// Floats of scratch vkk_mlp_backward needs.
int64_t vkk_mlp_backward_scratch(const vkk_mlp_network *network);

// Backward pass of samples [begin, end), from dL/dRGB (3 per sample) and dL/dσ (1 per sample):
// writes dL/d(encoding) rows into encoding_gradient (encoding_width per sample) and ADDS the samples'
// contributions to every matrix's gradient into matrix_gradient (vkk_mlp_matrix_count floats, the
// weights' layout; rows 3…15 of the last colour layer get nothing added). The samples are taken in tiles
// of VKK_MLP_TILE from `begin`, each tile's sum added in order, so the result depends only on begin, end
// and the path. scratch: vkk_mlp_backward_scratch floats.
void vkk_mlp_backward(const vkk_mlp_network *network, const vkk_mlp_activations *a, int64_t begin, int64_t end,
                      const float *rgb_gradient, const float *sigma_gradient, float *encoding_gradient,
                      float *matrix_gradient, float *scratch, int path);

// out[i] = Σ_{g < groups} partials[g · count + i] for i in [begin, end), added in increasing g (the fixed
// order that keeps the backward pass's result independent of the threads).
void vkk_mlp_sum_partials(const float *partials, int64_t groups, int64_t count, int64_t begin, int64_t end, float *out);
#endif
