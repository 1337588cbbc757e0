// train_rgb_activation_backward: dL/dlogit = dL/drgb · rgb · (1 − rgb), the logistic's derivative read
// from its output (the CPU path's vkk_logistic_backward).
//
// Bindings (set 0), all storage buffers:
//   0  rgbGradient    float[values], read
//   1  rgb            float[values], read
//   2  logitGradient  float[values], write
// Push constants: uint values.
// Specialization constants: 0 LOCAL_SIZE = 64.
// One invocation per value.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "nerf_training.glsl"

layout(set = 0, binding = 0) readonly buffer RgbGradient { float rgbGradient[]; };
layout(set = 0, binding = 1) readonly buffer Rgb { float rgb[]; };
layout(set = 0, binding = 2) writeonly buffer LogitGradient { float logitGradient[]; };
layout(push_constant) uniform Params { uint values; };

void main() {
    uint i = trainingInvocation();
    if (i >= values) return;
    float y = rgb[i];
    logitGradient[i] = rgbGradient[i] * y * (1.0 - y);
}
