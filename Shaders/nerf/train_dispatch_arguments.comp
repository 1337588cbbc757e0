// train_dispatch_arguments: the workgroup counts of a training step's indirect dispatches, from a count
// the device has just written (the march's samples, the compaction's kept samples). Each shape is one
// recorded dispatch of a kernel that reads the same count through trainingCount(capacity, countWord);
// this kernel writes its VkDispatchIndirectCommand (x, y, z) in the rows-of-groups layout that
// trainingInvocation() reads, as the host's HashGridField.groups does for a host count:
//   n = min(deviceCounts[countWord], capacity)
//   groups = perItem > 0 ? ⌈n·perItem / LOCAL_SIZE⌉
//                        : (chunkBegin == 0 || chunkBegin < n ? fixedGroups : 0)
//   x = min(groups, maxGroupsX), y = ⌈groups / x⌉ (1 when groups = 0), z = 1.
// Fixed-group shapes are the sample-looping kernels' chunks (weight gradient, deterministic scatter): a
// chunk past the count is skipped; the first always runs, so that a count of 0 still writes its zeros.
// Only shapes whose countWord equals the push constant are written (the other word's slots are left
// for their own pass); unused table rows hold countWord NO_DEVICE_COUNT and match nothing.
//
// Bindings (set 0), all storage buffers:
//   0  shapes        uvec4[2·shapeCount], read: per shape (countWord, capacity, perItem, fixedGroups),
//                    (chunkBegin, 0, 0, 0)
//   1  arguments     uint[3·shapeCount], write: VkDispatchIndirectCommand per shape
//   2  deviceCounts  uint[], read (nerf_training.glsl)
// Push constants: uint shapeCount, countWord, maxGroupsX (the device's maxComputeWorkGroupCount[0]).
// Specialization constants: 0 LOCAL_SIZE = 64 (the training kernels' workgroup size, and this one's).
// One invocation per shape.
#version 450
#extension GL_GOOGLE_include_directive : require
#define TRAINING_COUNT_BINDING 2
#include "nerf_training.glsl"

layout(set = 0, binding = 0) readonly buffer Shapes { uvec4 shapes[]; };
layout(set = 0, binding = 1) writeonly buffer Arguments { uint arguments[]; };
layout(push_constant) uniform Params { uint shapeCount; uint countWord; uint maxGroupsX; };

void main() {
    uint s = trainingInvocation();
    if (s >= shapeCount) return;
    uvec4 shape = shapes[2u * s];
    if (shape.x != countWord || countWord == NO_DEVICE_COUNT) return;
    uint chunkBegin = shapes[2u * s + 1u].x;
    uint n = trainingCount(shape.y, countWord);
    uint groups = shape.z > 0u ? (n * shape.z + LOCAL_SIZE - 1u) / LOCAL_SIZE
                               : (chunkBegin == 0u || chunkBegin < n ? shape.w : 0u);
    uint x = min(groups, maxGroupsX);
    arguments[3u * s] = x;
    arguments[3u * s + 1u] = x == 0u ? 1u : (groups + x - 1u) / x;
    arguments[3u * s + 2u] = 1u;
}
