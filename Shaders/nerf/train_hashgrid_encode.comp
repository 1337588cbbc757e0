// train_hashgrid_encode: the multiresolution hash encoding in fp32 for training (the forward pass of
// HashGridNetwork on Vulkan). encoded[i·stride + l·F + f] = Σ_c w_c · table[(entry_c)·F + f] over the 8
// corners c of sample i at level l, corners summed in order 0…7 as the CPU path does; columns
// [levelCount·F, stride) are the zero padding of the density MLP's input.
//
// Bindings (set 0), all storage buffers:
//   0  positions  float[3·count], read: unit-cube positions
//   1  levels     uvec4[levelCount], read (Shaders/common/nerf_training.glsl)
//   2  table      float[entries·F], read: the fp32 grid tables (all levels)
//   3  encoded    float[count·stride], write
//   4  deviceCounts  uint[], read: the sample count when countWord is not NO_DEVICE_COUNT (see trainingCount in nerf_training.glsl)
// Push constants: uint count (the samples, or their bound), levelCount, features, stride, countWord.
// Specialization constants: 0 LOCAL_SIZE = 64.
// One invocation per (sample i, level l), index i·levelCount + l; the level-0 invocation also writes the
// padding. Dispatch rows of groups as trainingInvocation() reads them.
#version 450
#extension GL_GOOGLE_include_directive : require
#define TRAINING_COUNT_BINDING 4
#include "nerf_training.glsl"

layout(set = 0, binding = 0) readonly buffer Positions { float positions[]; };
layout(set = 0, binding = 1) readonly buffer Levels { uvec4 levels[]; };
layout(set = 0, binding = 2) readonly buffer Table { float table[]; };
layout(set = 0, binding = 3) writeonly buffer Encoded { float encoded[]; };
layout(push_constant) uniform Params { uint count; uint levelCount; uint features; uint stride; uint countWord; };

void main() {
    uint index = trainingInvocation();
    if (index >= trainingCount(count, countWord) * levelCount) return;
    uint i = index / levelCount, l = index % levelCount;
    vec3 p = vec3(positions[3u * i], positions[3u * i + 1u], positions[3u * i + 2u]);
    uint entry[8];
    float weight[8];
    trainingCorners(p, levels[l], entry, weight);
    uint row = i * stride;
    for (uint f = 0u; f < features; f++) {
        precise float sum = 0.0;
        for (uint c = 0u; c < 8u; c++) sum += weight[c] * table[entry[c] * features + f];
        encoded[row + l * features + f] = sum;
    }
    if (l == 0u) {
        for (uint k = levelCount * features; k < stride; k++) encoded[row + k] = 0.0;
    }
}
