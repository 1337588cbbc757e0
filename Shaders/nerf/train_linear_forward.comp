// train_linear_forward: one layer of the training MLPs, output = input · Wᵀ (optionally ReLU), fp32:
// output[i·ldOutput + o] = Σ_k input[i·inputs + k] · weights[o·inputs + k], accumulated 4 inputs at a time
// (vec4 loads: every layer's input width is a multiple of 16). The CPU path's OpenBLAS GEMM sums in its
// own order: the two agree to fp32 summation error.
// W is row-major outputs × inputs without bias (tiny-cuda-nn's layout); the host binds the layer's
// slice of the parameter buffer.
//
// Bindings (set 0), all storage buffers:
//   0  input    vec4[count·inputs/4], read
//   1  weights  vec4[outputs·inputs/4], read
//   2  output   float[count·ldOutput], write (columns ≥ outputs untouched)
//   3  deviceCounts  uint[], read: the sample count when countWord is not NO_DEVICE_COUNT (see trainingCount in nerf_training.glsl)
// Push constants: uint count (the samples, or their bound), inputs (a multiple of 4), outputs, ldOutput,
//   relu (0 or 1), countWord.
// Specialization constants: 0 LOCAL_SIZE = 64.
// One invocation per output element (i, o), index i·outputs + o. Dispatch rows of groups as
// trainingInvocation() reads them.
#version 450
#extension GL_GOOGLE_include_directive : require
#define TRAINING_COUNT_BINDING 3
#include "nerf_training.glsl"

layout(set = 0, binding = 0) readonly buffer Input { vec4 inputValues[]; };
layout(set = 0, binding = 1) readonly buffer Weights { vec4 weights[]; };
layout(set = 0, binding = 2) writeonly buffer Output { float outputValues[]; };
layout(push_constant) uniform Params { uint count; uint inputs; uint outputs; uint ldOutput; uint relu; uint countWord; };

void main() {
    uint index = trainingInvocation();
    if (index >= trainingCount(count, countWord) * outputs) return;
    uint i = index / outputs, o = index % outputs;
    uint quads = inputs / 4u;
    vec4 sum = vec4(0.0);
    for (uint k = 0u; k < quads; k++) sum += inputValues[i * quads + k] * weights[o * quads + k];
    float total = (sum.x + sum.y) + (sum.z + sum.w);
    outputValues[i * ldOutput + o] = relu != 0u ? max(total, 0.0) : total;
}
