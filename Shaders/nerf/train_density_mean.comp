// train_density_mean: the occupancy threshold of the density grid (TrainingDensityGrid.rebuildOccupancy;
// instant-ngp's update_density_grid_mean_and_bitfield): the mean of max(value, 0) over cascade 0, and
// threshold = min(thresholdCap, mean). phase 0: invocation i sums cells [i·chunk, (i + 1)·chunk) of
// cascade 0 in order into partials[i]; phase 1: one invocation sums the partials in order, writing
// stats[0] = mean, stats[1] = threshold. (fp32 sums of ≤ 2^20-cell chunks, against the CPU's fp64 sum:
// the mean differs by a few fp32 ulps at most; the host picks chunk so that neither phase loops more
// than 65,535 times, lavapipe's limit per invocation.)
//
// Bindings (set 0), all storage buffers:
//   0  values    float[cells], read (cascade 0 first)
//   1  partials  float[⌈cells / chunk⌉], read-write
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

void main() {
    uint i = trainingInvocation();
    uint pieces = (cells + chunk - 1u) / chunk;
    if (phase == 0u) {
        if (i >= pieces) return;
        precise float sum = 0.0;
        for (uint j = i * chunk; j < min(cells, (i + 1u) * chunk); j++) sum += max(values[j], 0.0);
        partials[i] = sum;
    } else {
        if (i != 0u) return;
        precise float sum = 0.0;
        for (uint p = 0u; p < pieces; p++) sum += partials[p];
        precise float mean = sum / float(cells);
        stats[0] = mean;
        stats[1] = min(thresholdCap, mean);
    }
}
