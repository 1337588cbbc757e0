// train_ray_scan: the block stage of an exclusive prefix sum over per-ray counts (see
// common/nerf_ray_scan.glsl). phase 0: one invocation per block of RAY_SCAN_BLOCK rays writes the
// block's sum into blockOffsets; phase 1: a single invocation replaces the block sums by their exclusive
// prefix sums, in block order. The host records phase 0, then phase 1, in one batch.
//
// Bindings (set 0), all storage buffers:
//   0  rayCounts     uint[rayCount], read
//   1  blockOffsets  uint[⌈rayCount / RAY_SCAN_BLOCK⌉], read-write
// Push constants: uint rayCount, phase.
// Specialization constants: 0 LOCAL_SIZE = 64.
// Phase 0: one invocation per block; phase 1: one invocation (blocks ≤ 65,535: lavapipe ends an
// invocation after that many loop iterations; the host checks the ray count).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "nerf_training.glsl"

layout(set = 0, binding = 0) readonly buffer RayCounts { uint rayCounts[]; };
layout(set = 0, binding = 1) buffer BlockOffsets { uint blockOffsets[]; };
layout(push_constant) uniform Params { uint rayCount; uint phase; };

#include "nerf_ray_scan.glsl"

void main() {
    uint i = trainingInvocation();
    uint blocks = (rayCount + RAY_SCAN_BLOCK - 1u) / RAY_SCAN_BLOCK;
    if (phase == 0u) {
        if (i >= blocks) return;
        uint sum = 0u;
        for (uint r = i * RAY_SCAN_BLOCK; r < min(rayCount, (i + 1u) * RAY_SCAN_BLOCK); r++) sum += rayCounts[r];
        blockOffsets[i] = sum;
    } else {
        if (i != 0u) return;
        uint running = 0u;
        for (uint b = 0u; b < blocks; b++) {
            uint sum = blockOffsets[b];
            blockOffsets[b] = running;
            running += sum;
        }
    }
}
