// train_density_decay: the second half of a density-grid update (TrainingDensityGrid.applyUpdate):
// every cell seen by a camera (value ≥ 0) becomes max(value·decay, fresh), cells at −1 (never seen) stay;
// fresh is cleared for the next update.
//
// Bindings (set 0), all storage buffers:
//   0  values  float[count], read-write
//   1  fresh   uint[count], read-write (float bits, from train_density_thickness)
// Push constants: uint count; float decay.
// Specialization constants: 0 LOCAL_SIZE = 64.
// One invocation per cell.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "nerf_training.glsl"

layout(set = 0, binding = 0) buffer Values { float values[]; };
layout(set = 0, binding = 1) buffer Fresh { uint fresh[]; };
layout(push_constant) uniform Params { uint count; float decay; };

void main() {
    uint i = trainingInvocation();
    if (i >= count) return;
    float v = values[i];
    if (v >= 0.0) {
        precise float decayed = v * decay;
        values[i] = max(decayed, uintBitsToFloat(fresh[i]));
    }
    fresh[i] = 0u;
}
