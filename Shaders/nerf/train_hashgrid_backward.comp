// train_hashgrid_backward: scatters dL/d(encoding) into the grid tables' gradient (the hash encoding's
// backward pass): tableGradient[entry_c·F + f] += w_c · encodedGradient[i·stride + l·F + f] for every
// sample i, level l and corner c. tableGradient must hold the sums so far (zero at the start of a step).
//
// Two builds, the same bindings:
//   base (deterministic, any device): one invocation per (level l, range r of entries of l's table):
//     it walks the samples [sampleBegin, sampleEnd) in order, and their 8 corners in order, and adds
//     only the corners whose entry falls in its range. The host dispatches consecutive sample chunks
//     one after the other (lavapipe stops any invocation after 65,535 loop iterations in all, its
//     guard against endless loops, so one invocation must not walk every sample of a large batch). Every entry is owned by one invocation and receives its terms in the CPU
//     path's order (vkk_hashgrid_scatter), so the sums are deterministic and match the CPU's. The
//     price is that each invocation recomputes every sample's corners: work ∝ ranges × samples.
//   atomic (-DATOMIC_ADD, devices with shaderBufferFloat32AtomicAdd): one invocation per (sample,
//     level), atomicAdd per corner and feature. Fast, but the order of the additions (and so the
//     rounding of each sum) varies from run to run.
//
// Bindings (set 0), all storage buffers:
//   0  positions        float[3·count], read
//   1  levels           uvec4[levelCount], read
//   2  encodedGradient  float[count·stride], read
//   3  tableGradient    float[entries·F], read-write
//   4  deviceCounts  uint[], read: the sample count when countWord is not NO_DEVICE_COUNT (see trainingCount in nerf_training.glsl)
// Push constants: uint count, levelCount, features, stride, rangesPerLevel, entriesPerRange,
//   sampleBegin, sampleEnd, countWord (count is then the bound of the device count). (The atomic build
//   ignores rangesPerLevel…sampleEnd.)
// Specialization constants: 0 LOCAL_SIZE = 64.
// Invocations: base levelCount·rangesPerLevel (index l·rangesPerLevel + r); atomic count·levelCount
// (index i·levelCount + l). Dispatch rows of groups as trainingInvocation() reads them.
// @variant atomic: -DATOMIC_ADD=1
#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef ATOMIC_ADD
#extension GL_EXT_shader_atomic_float : require
#endif
#define TRAINING_COUNT_BINDING 4
#include "nerf_training.glsl"

layout(set = 0, binding = 0) readonly buffer Positions { float positions[]; };
layout(set = 0, binding = 1) readonly buffer Levels { uvec4 levels[]; };
layout(set = 0, binding = 2) readonly buffer EncodedGradient { float encodedGradient[]; };
layout(set = 0, binding = 3) buffer TableGradient { float tableGradient[]; };
layout(push_constant) uniform Params {
    uint count;
    uint levelCount;
    uint features;
    uint stride;
    uint rangesPerLevel;
    uint entriesPerRange;
    uint sampleBegin;
    uint sampleEnd;
    uint countWord;
};

vec3 position(uint i) { return vec3(positions[3u * i], positions[3u * i + 1u], positions[3u * i + 2u]); }

void main() {
    uint index = trainingInvocation();
    uint entry[8];
    float weight[8];
#ifdef ATOMIC_ADD
    if (index >= trainingCount(count, countWord) * levelCount) return;
    uint i = index / levelCount, l = index % levelCount;
    trainingCorners(position(i), levels[l], entry, weight);
    uint row = i * stride + l * features;
    for (uint c = 0u; c < 8u; c++) {
        for (uint f = 0u; f < features; f++) {
            atomicAdd(tableGradient[entry[c] * features + f], weight[c] * encodedGradient[row + f]);
        }
    }
#else
    if (index >= levelCount * rangesPerLevel) return;
    uint l = index / rangesPerLevel, r = index % rangesPerLevel;
    uvec4 level = levels[l];
    uint first = level.x + r * entriesPerRange;
    uint end = level.x + min((r + 1u) * entriesPerRange, level.y);
    if (first >= end) return;
    uint n = trainingCount(count, countWord);
    for (uint i = sampleBegin; i < min(sampleEnd, n); i++) {
        trainingCorners(position(i), level, entry, weight);
        uint row = i * stride + l * features;
        for (uint c = 0u; c < 8u; c++) {
            if (entry[c] < first || entry[c] >= end) continue;
            for (uint f = 0u; f < features; f++) {
                precise float term = weight[c] * encodedGradient[row + f];
                tableGradient[entry[c] * features + f] += term;
            }
        }
    }
#endif
}
