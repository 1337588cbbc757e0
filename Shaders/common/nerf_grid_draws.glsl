// The density-grid update's random draws (which cells, and one point in each), from a counter-based
// generator: every number is a hash of (seed, update step, draw index, purpose), so a draw needs no
// state and any invocation computes any draw. The CPU path computes the same numbers in
// TrainingDensityGrid.swift (DensityGridDraws), so both backends update the same cells.
//
// The hash chains Chris Wellons' "lowbias32" integer finaliser (hash-prospector; public domain) over the
// five words. Draws, as instant-ngp's update_density_grid_nerf lays them out: during warm-up draw d is
// cell d (every cell of every cascade); afterwards each cascade has 2·u draws (u = resolution³/4): the
// first u a uniformly random cell, the other u the first occupied cell among up to GRID_DRAW_TRIES
// random ones (instant-ngp's generate_grid_samples_nerf_nonuniform also tries 10), NO_CELL when none is.
// Jitter: 3 more hashes of the draw, 24 bits each, in [0, 1).
#ifndef NERF_GRID_DRAWS_GLSL
#define NERF_GRID_DRAWS_GLSL

const uint GRID_NO_CELL = 0xffffffffu;
const uint GRID_DRAW_TRIES = 10u;
const uint GRID_JITTER_PURPOSE = 16u;

uint gridHashMix(uint x) {
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

uint gridDrawHash(uvec2 seed, uint step, uint draw, uint purpose) {
    uint h = gridHashMix(seed.x ^ 0x9e3779b9u);
    h = gridHashMix(h ^ seed.y);
    h = gridHashMix(h ^ step);
    h = gridHashMix(h ^ draw);
    return gridHashMix(h ^ purpose);
}

float gridDrawUnit(uvec2 seed, uint step, uint draw, uint purpose) {
    return float(gridDrawHash(seed, step, draw, purpose) >> 8) * (1.0 / 16777216.0);
}

#endif
