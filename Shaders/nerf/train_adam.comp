// train_adam: tiny-cuda-nn's Adam over the flat parameter array, as the CPU path's AdamOptimizer
// (vkk_adam) does it:
//   g ← g + λ·θ (matrix weights, i < matrixCount);  grid parameters with g == 0 are skipped (state
//   untouched) and their gradient is cleared for the next step's scatter;
//   m ← β1·m + (1 − β1)·g,  v ← β2·v + (1 − β2)·g²,  k ← k + 1,
//   θ ← θ − lr·debias[k]·m / (√v + ε),  debias[k] = √(1 − β2^k)/(1 − β1^k) (computed by the host in
//   float64 and rounded, the CPU path's table).
//
// Bindings (set 0), all storage buffers:
//   0  parameters  float[count], read-write
//   1  gradients   float[count], read-write
//   2  first       float[count], read-write (m)
//   3  second      float[count], read-write (v)
//   4  steps       uint[count], read-write (k per parameter)
//   5  debias      float[updates + 1], read
// Push constants: uint count, matrixCount; float learningRate, beta1, beta2, epsilon, l2.
// Specialization constants: 0 LOCAL_SIZE = 64.
// One invocation per parameter.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "nerf_training.glsl"

layout(set = 0, binding = 0) buffer Parameters { float parameters[]; };
layout(set = 0, binding = 1) buffer Gradients { float gradients[]; };
layout(set = 0, binding = 2) buffer First { float first[]; };
layout(set = 0, binding = 3) buffer Second { float second[]; };
layout(set = 0, binding = 4) buffer Steps { uint steps[]; };
layout(set = 0, binding = 5) readonly buffer Debias { float debias[]; };
layout(push_constant) uniform Params {
    uint count;
    uint matrixCount;
    float learningRate;
    float beta1;
    float beta2;
    float epsilon;
    float l2;
};

void main() {
    uint i = trainingInvocation();
    if (i >= count) return;
    precise float g = gradients[i];
    if (i >= matrixCount) {
        if (g == 0.0) return;
        gradients[i] = 0.0;
    } else {
        g = g + l2 * parameters[i];
    }
    precise float m = beta1 * first[i] + (1.0 - beta1) * g;
    precise float v = beta2 * second[i] + (1.0 - beta2) * g * g;
    first[i] = m;
    second[i] = v;
    uint k = steps[i] + 1u;
    steps[i] = k;
    precise float update = learningRate * debias[k] * m / (sqrt(v) + epsilon);
    parameters[i] = parameters[i] - update;
}
