// train_density_thickness: one density-grid update's new values (TrainingDensityGrid.applyUpdate, first
// half): the optical thickness σ·scale (scale = the finest march step in world units) of the point
// sampled in cell indices[k], maxed into that cell's fresh value (draws whose index is GRID_NO_CELL,
// 0xffffffff, are skipped: see train_density_draws). Thicknesses are ≥ 0 (σ = exp), and
// for non-negative floats the order of their bit patterns is their numeric order, so an integer
// atomicMax on the bits is the float max, whatever order the samples arrive in.
//
// Bindings (set 0), all storage buffers:
//   0  indices  uint[count], read (cell index: cascade·resolution³ + Morton, or GRID_NO_CELL)
//   1  sigma    float[count], read (the density-only forward pass's σ)
//   2  fresh    uint[cells], read-write (float bits; zero before the update's first chunk)
// Push constants: uint count; float scale.
// Specialization constants: 0 LOCAL_SIZE = 64.
// One invocation per sampled cell.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "nerf_training.glsl"

layout(set = 0, binding = 0) readonly buffer Indices { uint indices[]; };
layout(set = 0, binding = 1) readonly buffer Sigma { float sigma[]; };
layout(set = 0, binding = 2) buffer Fresh { uint fresh[]; };
layout(push_constant) uniform Params { uint count; float scale; };

void main() {
    uint k = trainingInvocation();
    if (k >= count || indices[k] == 0xffffffffu) return;
    precise float thickness = sigma[k] * scale;
    atomicMax(fresh[indices[k]], floatBitsToUint(thickness));
}
