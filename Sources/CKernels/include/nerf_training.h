// CPU inner loops of NeRF training (Sources/VulkanKernels/NeRF/Training): the hash encoding and its
// gradient scatter, the elementwise activations of the MLPs, occupancy-grid ray marching, compositing
// and Adam. Swift splits the work across threads (each call handles one thread's range) and runs the MLP
// layers as OpenBLAS GEMMs; these loops are in C so that they vectorise in release builds and stay fast
// enough in debug builds for the tests.
#ifndef VKK_NERF_TRAINING_H
#define VKK_NERF_TRAINING_H
#include <stdint.h>

// One level of the multiresolution hash grid (HashGridConfiguration.Level).
typedef struct {
    float scale;           // positions map to x * scale + 0.5
    uint32_t resolution;   // vertices per axis
    uint32_t table_offset; // in entries of `features` values
    uint32_t table_size;   // entries
    uint32_t dense;        // 1: x + y*R + z*R*R, 0: spatial hash; both modulo table_size
} vkk_grid_level;

// Encodes samples [begin, end) (level_count ≤ 32, as HashGridConfiguration.validate requires; nothing is
// written otherwise): positions (3 per sample, unit cube, clamped to [0, 1]) -> rows of
// `encoded` (stride floats each; levels * features values, the rest of the row zeroed).
void vkk_hashgrid_encode(const float *positions, int64_t begin, int64_t end, const vkk_grid_level *levels, int32_t level_count,
                         int32_t features, const float *table, float *encoded, int32_t stride);

// Adds, for samples [0, n) in order, weight * dL/d(encoding of `level_index`) into the level's entries of
// `table_gradient` (the whole grid's gradient, entries of `features` floats).
void vkk_hashgrid_scatter(const float *positions, int64_t n, const vkk_grid_level *level, int32_t level_index, int32_t features,
                          const float *encoded_gradient, int32_t stride, float *table_gradient);

void vkk_relu(float *values, int64_t count);
// gradient[i] = 0 where activation[i] <= 0.
void vkk_relu_backward(float *gradient, const float *activation, int64_t count);
void vkk_logistic(const float *x, float *y, int64_t count);
// out[i] = gradient[i] * y[i] * (1 - y[i]).
void vkk_logistic_backward(const float *gradient, const float *y, float *out, int64_t count);

// Samples [begin, end) of the colour-MLP input rows (stride floats): sigma[i] = exp(row[0]); unless
// directions is NULL, row[16..32) = the 16 degree-4 SH coefficients of direction i (tiny-cuda-nn's).
void vkk_density_head(float *rows, int32_t stride, int64_t begin, int64_t end, float *sigma, const float *directions);

// Samples [begin, end): out (16 per sample) = first 16 columns of full (stride per sample), plus
// sigma_gradient * exp(clamp(raw, -15, 15)) on column 0 where raw = rows[i * stride].
void vkk_density_head_backward(const float *full, const float *rows, int32_t stride, int64_t begin, int64_t end,
                               const float *sigma_gradient, float *out);

// instant-ngp's occupancy-grid marching in unit-cube coordinates.
typedef struct {
    float box_lower, box_upper;      // the field's box, the same on every axis
    float min_step, max_step, cone;  // dt = clamp(t * cone, min_step, max_step)
    int32_t resolution, cascades;    // density grid (Morton order per cascade)
    const uint8_t *occupied;         // cascades * resolution^3
    int32_t max_samples;
} vkk_march_params;

// Marches one ray; writes up to `capacity` samples (position 3, dt 1; positions mapped to the field's unit
// cube) when `positions` is not NULL; returns the number of samples the ray has (≤ max_samples).
int32_t vkk_march_ray(const vkk_march_params *params, const float *origin, const float *direction, float jitter,
                      float *positions, float *dt, int32_t capacity);

// Front-to-back compositing of n samples; returns the number used before T < threshold; colour (3) and
// transmittance written.
int32_t vkk_composite_forward(const float *rgb, const float *sigma, const float *dt, int32_t n, const float *background,
                              float threshold, float *colour, float *transmittance);
// Its gradient for dL/dC = colour_gradient (see VolumeCompositing.backward); zero past `used`.
void vkk_composite_backward(const float *rgb, const float *sigma, const float *dt, int32_t n, int32_t used, const float *colour,
                            const float *colour_gradient, float *rgb_gradient, float *sigma_gradient);

// Compacts per-ray runs of rows in place: for rays r = 0..rays-1 in order, rows [source[r], source[r] + keep[r])
// (width floats each) move to [target[r], ...). Requires target[r] <= source[r], target nondecreasing and
// target[r] + keep[r] <= target[r + 1], source[r] + keep[r] <= source[r + 1] (so no row is overwritten
// before it has moved; NeRFTrainer's prefix-of-each-ray compaction satisfies this).
void vkk_compact_rows(float *rows, int64_t width, const int64_t *source, const int64_t *target, const int64_t *keep, int64_t rays);

// tiny-cuda-nn's Adam over parameters [begin, end) (see AdamOptimizer.swift).
void vkk_adam(float *parameters, float *gradients, float *first, float *second, uint32_t *steps, const float *debias,
              int64_t begin, int64_t end, int64_t matrix_count, float learning_rate, float beta1, float beta2, float epsilon,
              float l2);
#endif
