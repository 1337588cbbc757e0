// Shared by the NeRF training kernels (Shaders/nerf/train_*.comp): the hash grid's level table, the
// table entry of a grid vertex and the 8 trilinear corners of a position, computed exactly as the CPU
// path does (Sources/CKernels/nerf_training.c: grid_entry, corners) so that both scatter into the same
// entries with the same weights. `precise` keeps the compiler from fusing the multiply-adds, which the
// C code does not fuse either.
#ifndef NERF_TRAINING_GLSL
#define NERF_TRAINING_GLSL

// A level as the host uploads it: (table offset in entries, table size, floatBits(scale),
// resolution | 0x80000000 when the level is indexed densely).
uint trainingGridEntry(uvec3 v, uvec4 level) {
    uint resolution = level.w & 0x7fffffffu;
    uint index = (level.w & 0x80000000u) != 0u
        ? v.x + v.y * resolution + v.z * resolution * resolution
        : v.x ^ (v.y * 2654435761u) ^ (v.z * 805459861u);
    return index % level.y;
}

// The table entries (offset included) and weights of the 8 corners of unit-cube position p; corner
// c = dx + 2·dy + 4·dz.
void trainingCorners(vec3 p, uvec4 level, out uint entry[8], out float weight[8]) {
    precise vec3 position = clamp(p, vec3(0.0), vec3(1.0)) * uintBitsToFloat(level.z) + 0.5;
    vec3 cell = floor(position);
    precise vec3 t = position - cell;
    uvec3 base = uvec3(max(cell, vec3(0.0)));
    for (uint c = 0u; c < 8u; c++) {
        uvec3 d = uvec3(c & 1u, (c >> 1) & 1u, c >> 2);
        precise float w = (d.x != 0u ? t.x : 1.0 - t.x) * (d.y != 0u ? t.y : 1.0 - t.y);
        w = w * (d.z != 0u ? t.z : 1.0 - t.z);
        weight[c] = w;
        entry[c] = level.x + trainingGridEntry(base + d, level);
    }
}

// The workgroup size (specialization constant 0) of every training kernel.
layout(constant_id = 0) const uint LOCAL_SIZE = 64u;
layout(local_size_x_id = 0) in;

// Invocation index of a dispatch laid out as rows of groups (x) × rows (y). The row length uses the
// LOCAL_SIZE constant: gl_WorkGroupSize (the same constant through a composite) gave wrong indices
// past the first row of groups here (lavapipe, glslc -O), so samples beyond 2^20 invocations overlapped.
uint trainingInvocation() {
    return gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * LOCAL_SIZE;
}

// The sample count of a kernel that may run over a device-determined count (a training step records
// its passes before the march and the compaction have counted their samples). A shader that defines
// TRAINING_COUNT_BINDING before including this file gets the binding `deviceCounts` and
// trainingCount(limit, word): `limit` itself (a push constant: the host's count) when `word` is
// NO_DEVICE_COUNT, else deviceCounts[word] (written earlier in the batch) clamped to `limit` (then the
// capacity of the buffers, so that a count larger than them reads and writes nothing out of bounds).
// The host dispatches such a kernel indirectly, with group counts train_dispatch_arguments computed
// from the same word and the same limit, so invocations past the count only return.
const uint NO_DEVICE_COUNT = 0xffffffffu;
#ifdef TRAINING_COUNT_BINDING
layout(set = 0, binding = TRAINING_COUNT_BINDING) readonly buffer DeviceCounts { uint deviceCounts[]; };
uint trainingCount(uint limit, uint word) { return word == NO_DEVICE_COUNT ? limit : min(deviceCounts[word], limit); }
#endif

#endif
