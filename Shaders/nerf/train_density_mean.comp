// train_density_mean: the occupancy threshold of the density grid (TrainingDensityGrid.rebuildOccupancy;
// instant-ngp's update_density_grid_mean_and_bitfield): the mean of max(value, 0) over cascade 0, and
// threshold = min(thresholdCap, mean). phase 0: invocation i sums cells [i·chunk, (i + 1)·chunk) of
// cascade 0 in order into partials[2i] (sum) and partials[2i + 1] (its rounding error); phase 1: one
// invocation sums the partials in order, writing stats[0] = mean, stats[1] = threshold.
// The sums are Neumaier's compensated sums (each addition's rounding error is kept and added at the
// end), so the mean is within about an ulp of the exact one, as the CPU path's fp64 sum gives it: a plain
// fp32 sum of 2^21 cells was off by 7e-5 relative, and the untrained field's values all lie within
// ~1e-5 of their mean, so the threshold then left 45 of 2 M lego cells occupied instead of half.
// The host picks chunk so that neither phase loops more than 65,535 times (lavapipe's limit per
// invocation).
//
// Bindings (set 0), all storage buffers:
//   0  values    float[cells], read (cascade 0 first)
//   1  partials  float[2·⌈cells / chunk⌉], read-write
//   2  stats     float[2], write
// Push constants: uint cells, chunk, phase; float thresholdCap.
// Specialization constants: 0 LOCAL_SIZE = 64.
// Phase 0: one invocation per chunk; phase 1: one invocation.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "nerf_training.glsl"

layout(set = 0, binding = 0) readonly buffer Values { float values[]; };
layout(set = 0, binding = 1) buffer Partials { float partials[]; };
layout(set = 0, binding = 2) writeonly buffer Stats { float stats[]; };
layout(push_constant) uniform Params { uint cells; uint chunk; uint phase; float thresholdCap; };

// Adds x to the compensated sum (sum, error).
void addCompensated(inout float sum, inout float error, float x) {
    precise float t = sum + x;
    precise float lost = abs(sum) >= abs(x) ? (sum - t) + x : (x - t) + sum;
    error += lost;
    sum = t;
}

void main() {
    uint i = trainingInvocation();
    uint pieces = (cells + chunk - 1u) / chunk;
    precise float sum = 0.0, error = 0.0;
    if (phase == 0u) {
        if (i >= pieces) return;
        for (uint j = i * chunk; j < min(cells, (i + 1u) * chunk); j++) addCompensated(sum, error, max(values[j], 0.0));
        partials[2u * i] = sum;
        partials[2u * i + 1u] = error;
    } else {
        if (i != 0u) return;
        for (uint p = 0u; p < pieces; p++) {
            addCompensated(sum, error, partials[2u * p]);
            error += partials[2u * p + 1u];
        }
        precise float total = sum + error;
        precise float mean = total / float(cells);
        stats[0] = mean;
        stats[1] = min(thresholdCap, mean);
    }
}
