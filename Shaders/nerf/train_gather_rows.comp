// train_gather_rows: target row k = source row map[k], `width` floats per row: the activations of the
// samples kept after compaction (train_compact_samples writes map) gathered into the backward pass's
// buffers, so that it reads the forward pass's values without evaluating the kept samples again.
//
// Bindings (set 0), all storage buffers:
//   0  map     uint[count], read (source row of each target row)
//   1  source  float[rows·width], read (vec4 in the vec4 variant)
//   2  target  float[count·width], write (vec4 in the vec4 variant)
//   3  deviceCounts  uint[], read: the sample count when countWord is not NO_DEVICE_COUNT (see trainingCount in nerf_training.glsl)
// Push constants: uint count (the rows, or their bound), width (in floats, or in vec4s for the vec4
// variant: rows whose width is a multiple of 4 move 4 floats per invocation, a quarter of the
// invocations), countWord.
// Specialization constants: 0 LOCAL_SIZE = 64.
// One invocation per target value (row-major, so neighbouring invocations copy neighbouring values).
// @variant vec4: -DVEC4=1
#version 450
#extension GL_GOOGLE_include_directive : require
#define TRAINING_COUNT_BINDING 3
#include "nerf_training.glsl"

layout(set = 0, binding = 0) readonly buffer Map { uint map[]; };
#ifdef VEC4
#define ROW_ELEMENT vec4
#else
#define ROW_ELEMENT float
#endif
layout(set = 0, binding = 1) readonly buffer Source { ROW_ELEMENT source[]; };
layout(set = 0, binding = 2) writeonly buffer Target { ROW_ELEMENT target[]; };
layout(push_constant) uniform Params { uint count; uint width; uint countWord; };

void main() {
    uint i = trainingInvocation();
    if (i >= trainingCount(count, countWord) * width) return;
    uint row = i / width, column = i - row * width;
    target[i] = source[map[row] * width + column];
}
