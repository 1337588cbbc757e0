// train_linear_weight_gradient: the weight gradient of one MLP layer, dW = dYᵀ · X:
// gradient[o·inputs + k] (+)= Σ_i outputGradient[i·outputs + o] · input[i·inputs + k] over the samples
// [sampleBegin, sampleEnd) in order, for o < outputs; rows outputs ≤ o < storedOutputs (the colour
// MLP's unused output rows 3…15) get 0. The host dispatches consecutive sample chunks, the first
// writing (accumulate 0) and the rest adding (lavapipe stops any invocation after 65,535 loop
// iterations in all). Deterministic: each weight is one invocation's sum per chunk, chunks in order. 4 adjacent weights per invocation
// (vec4 loads of the input rows; input widths are multiples of 16).
//
// Bindings (set 0), all storage buffers:
//   0  outputGradient  float[count·outputs], read
//   1  input           vec4[count·inputs/4], read: the layer's input activations
//   2  gradient        vec4[storedOutputs·inputs/4], read-write: the layer's slice of the gradient buffer
//   3  deviceCounts  uint[], read: the sample count when countWord is not NO_DEVICE_COUNT (see trainingCount in nerf_training.glsl)
// Push constants: uint count, inputs (a multiple of 4), outputs, storedOutputs, sampleBegin, sampleEnd,
//   accumulate (0: write, 1: add), countWord (count is then the bound of the device count).
// Specialization constants: 0 LOCAL_SIZE = 64.
// One invocation per stored weight quad (o, k..k+3), index o·inputs/4 + k/4.
#version 450
#extension GL_GOOGLE_include_directive : require
#define TRAINING_COUNT_BINDING 3
#include "nerf_training.glsl"

layout(set = 0, binding = 0) readonly buffer OutputGradient { float outputGradient[]; };
layout(set = 0, binding = 1) readonly buffer Input { vec4 inputValues[]; };
layout(set = 0, binding = 2) buffer Gradient { vec4 gradient[]; };
layout(push_constant) uniform Params {
    uint count;
    uint inputs;
    uint outputs;
    uint storedOutputs;
    uint sampleBegin;
    uint sampleEnd;
    uint accumulate;
    uint countWord;
};

void main() {
    uint index = trainingInvocation();
    uint quads = inputs / 4u;
    if (index >= storedOutputs * quads) return;
    uint o = index / quads, k = index % quads;
    vec4 sum = vec4(0.0);
    uint n = trainingCount(count, countWord);
    if (o < outputs) {
        for (uint i = sampleBegin; i < min(sampleEnd, n); i++) sum += outputGradient[i * outputs + o] * inputValues[i * quads + k];
    }
    gradient[index] = accumulate != 0u ? gradient[index] + sum : sum;
}
