// train_rgb_activation_backward: dL/dlogit = dL/drgb · rgb · (1 − rgb), the logistic's derivative read
// from its output (the CPU path's vkk_logistic_backward).
//
// Bindings (set 0), all storage buffers:
//   0  rgbGradient    float[3·count], read
//   1  rgb            float[3·count], read
//   2  logitGradient  float[3·count], write
//   3  deviceCounts  uint[], read: the sample count when countWord is not NO_DEVICE_COUNT (see trainingCount in nerf_training.glsl)
// Push constants: uint count (the samples, or their bound; 3 values each), countWord.
// Specialization constants: 0 LOCAL_SIZE = 64.
// One invocation per value.
#version 450
#extension GL_GOOGLE_include_directive : require
#define TRAINING_COUNT_BINDING 3
#include "nerf_training.glsl"

layout(set = 0, binding = 0) readonly buffer RgbGradient { float rgbGradient[]; };
layout(set = 0, binding = 1) readonly buffer Rgb { float rgb[]; };
layout(set = 0, binding = 2) writeonly buffer LogitGradient { float logitGradient[]; };
layout(push_constant) uniform Params { uint count; uint countWord; };

void main() {
    uint i = trainingInvocation();
    if (i >= 3u * trainingCount(count, countWord)) return;
    float y = rgb[i];
    logitGradient[i] = rgbGradient[i] * y * (1.0 - y);
}
