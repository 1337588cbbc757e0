// train_density_bitfield: the occupancy bitfield the training march reads, from the density grid's
// values (TrainingDensityGrid.rebuildOccupancy; instant-ngp's update_density_grid_mean_and_bitfield and
// bitfield_max_pool). phase 0: invocation w sets bit b of word w when cell 32w + b has value > stats[1]
// (train_density_mean's threshold). phase 1 (one dispatch per cascade c = 1, 2, …, in order): a cell of
// cascade c whose cube holds an occupied cell of cascade c − 1 becomes occupied too; invocation m visits
// cell m (Morton) of cascade c − 1 and ORs its bit into the coarse cell (x/2 + r/4, y/2 + r/4, z/2 + r/4).
// The bit layout: common/nerf_march.glsl.
//
// Bindings (set 0), all storage buffers:
//   0  values     float[cells], read
//   1  stats      float[2], read (stats[1] = threshold)
//   2  occupancy  uint[cells / 32], write (phase 0) / read-write (phase 1)
// Push constants: uint cells (all cascades), resolution, phase, cascade.
// Specialization constants: 0 LOCAL_SIZE = 64.
// Phase 0: one invocation per word; phase 1: one invocation per cell of cascade c − 1.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "nerf_training.glsl"
#include "nerf_march.glsl"

layout(set = 0, binding = 0) readonly buffer Values { float values[]; };
layout(set = 0, binding = 1) readonly buffer Stats { float stats[]; };
layout(set = 0, binding = 2) buffer Occupancy { uint occupancy[]; };
layout(push_constant) uniform Params { uint cells; uint resolution; uint phase; uint cascade; };

void main() {
    uint i = trainingInvocation();
    if (phase == 0u) {
        if (i >= cells / 32u) return;
        float threshold = stats[1];
        uint bits = 0u;
        for (uint b = 0u; b < 32u; b++) {
            if (values[32u * i + b] > threshold) bits |= 1u << b;
        }
        occupancy[i] = bits;
        return;
    }
    uint perCascade = resolution * resolution * resolution;
    if (i >= perCascade) return;
    uint fine = (cascade - 1u) * perCascade + i;
    if ((occupancy[fine >> 5] & (1u << (fine & 31u))) == 0u) return;
    uvec3 p = marchMortonDecode(i) / 2u + resolution / 4u;
    uint coarse = cascade * perCascade + marchMorton(p);
    atomicOr(occupancy[coarse >> 5], 1u << (coarse & 31u));
}
