// train_gather_rows: target row k = source row map[k], `width` floats per row: the activations of the
// samples kept after compaction (train_compact_samples writes map) gathered into the backward pass's
// buffers, so that it reads the forward pass's values without evaluating the kept samples again.
//
// Bindings (set 0), all storage buffers:
//   0  map     uint[count], read (source row of each target row)
//   1  source  float[rows·width], read
//   2  target  float[count·width], write
// Push constants: uint count, width.
// Specialization constants: 0 LOCAL_SIZE = 64.
// One invocation per target value (row-major, so neighbouring invocations copy neighbouring values).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "nerf_training.glsl"

layout(set = 0, binding = 0) readonly buffer Map { uint map[]; };
layout(set = 0, binding = 1) readonly buffer Source { float source[]; };
layout(set = 0, binding = 2) writeonly buffer Target { float target[]; };
layout(push_constant) uniform Params { uint count; uint width; };

void main() {
    uint i = trainingInvocation();
    if (i >= count * width) return;
    uint row = i / width, column = i - row * width;
    target[i] = source[map[row] * width + column];
}
