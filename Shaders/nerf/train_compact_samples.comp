// train_compact_samples: instant-ngp's compaction — the samples each ray composited before its early
// termination (usedCounts, from train_composite) are copied, ray after ray, to the front of the backward
// pass's buffers: positions and directions, dL/dRGB and dL/dσ, and each kept sample's index before
// compaction (keptSource, for train_gather_rows, which gathers the forward pass's activations of the kept
// samples). A ray's new offset is the sum of the used counts before it (train_ray_scan over usedCounts);
// the last ray writes totals[2] = the samples kept.
//
// Bindings (set 0), all storage buffers:
//   0   rayCounts        uint[rayCount], read (usedCounts; the name the scan helper reads)
//   1   blockOffsets     uint[blocks], read (train_ray_scan over usedCounts)
//   2   rayRanges        uvec2[rayCount], read (first sample before compaction, count)
//   3   totals           uint[4], write (totals[2])
//   4   positions        float[3·samples], read
//   5   directions       float[3·samples], read
//   6   rgbGradient      float[3·samples], read
//   7   sigmaGradient    float[samples], read
//   8   keptPositions    float[3·kept], write
//   9   keptDirections   float[3·kept], write
//   10  keptRgbGradient  float[3·kept], write
//   11  keptSigmaGradient float[kept], write
//   12  keptSource       uint[kept], write
// Push constants: uint rayCount.
// Specialization constants: 0 LOCAL_SIZE = 64.
// One invocation per ray.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "nerf_training.glsl"

layout(set = 0, binding = 0) readonly buffer RayCounts { uint rayCounts[]; };
layout(set = 0, binding = 1) readonly buffer BlockOffsets { uint blockOffsets[]; };
layout(set = 0, binding = 2) readonly buffer RayRanges { uvec2 rayRanges[]; };
layout(set = 0, binding = 3) writeonly buffer Totals { uint totals[]; };
layout(set = 0, binding = 4) readonly buffer Positions { float positions[]; };
layout(set = 0, binding = 5) readonly buffer Directions { float directions[]; };
layout(set = 0, binding = 6) readonly buffer RgbGradient { float rgbGradient[]; };
layout(set = 0, binding = 7) readonly buffer SigmaGradient { float sigmaGradient[]; };
layout(set = 0, binding = 8) writeonly buffer KeptPositions { float keptPositions[]; };
layout(set = 0, binding = 9) writeonly buffer KeptDirections { float keptDirections[]; };
layout(set = 0, binding = 10) writeonly buffer KeptRgbGradient { float keptRgbGradient[]; };
layout(set = 0, binding = 11) writeonly buffer KeptSigmaGradient { float keptSigmaGradient[]; };
layout(set = 0, binding = 12) writeonly buffer KeptSource { uint keptSource[]; };
layout(push_constant) uniform Params { uint rayCount; };

#include "nerf_ray_scan.glsl"

void main() {
    uint r = trainingInvocation();
    if (r >= rayCount) return;
    uint target = rayOffset(r), used = rayCounts[r], source = rayRanges[r].x;
    for (uint i = 0u; i < used; i++) {
        uint from = source + i, to = target + i;
        for (uint a = 0u; a < 3u; a++) {
            keptPositions[3u * to + a] = positions[3u * from + a];
            keptDirections[3u * to + a] = directions[3u * from + a];
            keptRgbGradient[3u * to + a] = rgbGradient[3u * from + a];
        }
        keptSigmaGradient[to] = sigmaGradient[from];
        keptSource[to] = from;
    }
    if (r + 1u == rayCount) totals[2] = target + used;
}
