// train_linear_input_gradient: the input gradient of one MLP layer, dX = dY · W, times the previous
// layer's ReLU derivative when `mask` is set:
// inputGradient[i·inputs + k] = (Σ_o outputGradient[i·outputs + o] · weights[o·inputs + k])
//                               · (mask == 0 || activation[i·inputs + k] > 0 ? 1 : 0)
// (ReLU's derivative read from its output, as the CPU path's vkk_relu_backward does). 4 adjacent inputs
// per invocation (vec4 loads; input widths are multiples of 16).
//
// Bindings (set 0), all storage buffers:
//   0  outputGradient  float[count·outputs], read
//   1  weights         vec4[outputs·inputs/4], read (the first `outputs` rows of the layer)
//   2  activation      vec4[count·inputs/4], read (ignored unless mask; bind any buffer then)
//   3  inputGradient   vec4[count·inputs/4], write
//   4  deviceCounts  uint[], read: the sample count when countWord is not NO_DEVICE_COUNT (see trainingCount in nerf_training.glsl)
// Push constants: uint count (the samples, or their bound), inputs (a multiple of 4), outputs, mask, countWord.
// Specialization constants: 0 LOCAL_SIZE = 64.
// One invocation per input quad (i, k..k+3), index i·inputs/4 + k/4.
#version 450
#extension GL_GOOGLE_include_directive : require
#define TRAINING_COUNT_BINDING 4
#include "nerf_training.glsl"

layout(set = 0, binding = 0) readonly buffer OutputGradient { float outputGradient[]; };
layout(set = 0, binding = 1) readonly buffer Weights { vec4 weights[]; };
layout(set = 0, binding = 2) readonly buffer Activation { vec4 activation[]; };
layout(set = 0, binding = 3) writeonly buffer InputGradient { vec4 inputGradient[]; };
layout(push_constant) uniform Params { uint count; uint inputs; uint outputs; uint mask; uint countWord; };

void main() {
    uint index = trainingInvocation();
    uint quads = inputs / 4u;
    if (index >= trainingCount(count, countWord) * quads) return;
    uint i = index / quads, k = index % quads;
    vec4 sum = vec4(0.0);
    for (uint o = 0u; o < outputs; o++) sum += outputGradient[i * outputs + o] * weights[o * quads + k];
    if (mask != 0u) sum = mix(vec4(0.0), sum, greaterThan(activation[index], vec4(0.0)));
    inputGradient[index] = sum;
}
