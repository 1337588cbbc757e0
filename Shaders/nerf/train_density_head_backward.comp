// train_density_head_backward: dL/d(density MLP outputs) from the colour MLP's input gradient and σ's:
// out[i·16 + k] = full[i·stride + k] for k < 16, plus dL/dσ_i · exp(clamp(row_i[0], −15, 15)) on k = 0
// (instant-ngp's `network_to_density_derivative`: the exp's derivative clamped so that one huge
// log-density cannot blow up the gradient). The SH columns of `full` have no parameters behind them.
//
// Bindings (set 0), all storage buffers:
//   0  full            float[count·stride], read: dL/d(colour-MLP input)
//   1  colorInput      float[count·stride], read: the forward pass's colour-MLP input (column 0: raw density)
//   2  sigmaGradient   float[count], read
//   3  outputGradient  float[count·16], write
//   4  deviceCounts  uint[], read: the sample count when countWord is not NO_DEVICE_COUNT (see trainingCount in nerf_training.glsl)
// Push constants: uint count (the samples, or their bound), stride, countWord.
// Specialization constants: 0 LOCAL_SIZE = 64.
// One invocation per (sample i, column k), index i·16 + k.
#version 450
#extension GL_GOOGLE_include_directive : require
#define TRAINING_COUNT_BINDING 4
#include "nerf_training.glsl"

layout(set = 0, binding = 0) readonly buffer Full { float full[]; };
layout(set = 0, binding = 1) readonly buffer ColorInput { float colorInput[]; };
layout(set = 0, binding = 2) readonly buffer SigmaGradient { float sigmaGradient[]; };
layout(set = 0, binding = 3) writeonly buffer OutputGradient { float outputGradient[]; };
layout(push_constant) uniform Params { uint count; uint stride; uint countWord; };

void main() {
    uint index = trainingInvocation();
    if (index >= trainingCount(count, countWord) * 16u) return;
    uint i = index / 16u, k = index % 16u;
    float value = full[i * stride + k];
    if (k == 0u) value += sigmaGradient[i] * exp(clamp(colorInput[i * stride], -15.0, 15.0));
    outputGradient[index] = value;
}
