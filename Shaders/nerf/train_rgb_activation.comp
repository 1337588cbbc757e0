// train_rgb_activation: the colour MLP's output activation in training, rgb = logistic(logit) =
// 1 / (1 + exp(−logit)) per channel (instant-ngp's LDR colour activation; the CPU path's vkk_logistic).
//
// Bindings (set 0), all storage buffers:
//   0  logits  float[3·count], read
//   1  rgb     float[3·count], write
//   2  deviceCounts  uint[], read: the sample count when countWord is not NO_DEVICE_COUNT (see trainingCount in nerf_training.glsl)
// Push constants: uint count (the samples, or their bound; 3 values each), countWord.
// Specialization constants: 0 LOCAL_SIZE = 64.
// One invocation per value.
#version 450
#extension GL_GOOGLE_include_directive : require
#define TRAINING_COUNT_BINDING 2
#include "nerf_training.glsl"

layout(set = 0, binding = 0) readonly buffer Logits { float logits[]; };
layout(set = 0, binding = 1) writeonly buffer Rgb { float rgb[]; };
layout(push_constant) uniform Params { uint count; uint countWord; };

void main() {
    uint i = trainingInvocation();
    if (i >= 3u * trainingCount(count, countWord)) return;
    rgb[i] = 1.0 / (1.0 + exp(-logits[i]));
}
