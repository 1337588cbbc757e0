// train_rgb_activation: the colour MLP's output activation in training, rgb = logistic(logit) =
// 1 / (1 + exp(−logit)) per channel (instant-ngp's LDR colour activation; the CPU path's vkk_logistic).
//
// Bindings (set 0), all storage buffers:
//   0  logits  float[values], read
//   1  rgb     float[values], write
// Push constants: uint values (3 per sample).
// Specialization constants: 0 LOCAL_SIZE = 64.
// One invocation per value.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "nerf_training.glsl"

layout(set = 0, binding = 0) readonly buffer Logits { float logits[]; };
layout(set = 0, binding = 1) writeonly buffer Rgb { float rgb[]; };
layout(push_constant) uniform Params { uint values; };

void main() {
    uint i = trainingInvocation();
    if (i >= values) return;
    rgb[i] = 1.0 / (1.0 + exp(-logits[i]));
}
