// train_density_head: the density MLP's head in the training forward pass. Row i of the colour-MLP
// input (stride floats, columns 0…15 the density MLP's outputs) gives σ_i = exp(row[0]) (instant-ngp's
// density activation), and, when withDirections, columns 16…31 receive the degree-4 real spherical
// harmonics of direction i in tiny-cuda-nn's order and signs (the CPU path's vkk_density_head).
//
// Bindings (set 0), all storage buffers:
//   0  colorInput  float[count·stride], read-write
//   1  directions  float[3·count], read (unit directions; ignored unless withDirections)
//   2  sigma       float[count], write
//   3  deviceCounts  uint[], read: the sample count when countWord is not NO_DEVICE_COUNT (see trainingCount in nerf_training.glsl)
// Push constants: uint count (the samples, or their bound), stride, withDirections, countWord.
// Specialization constants: 0 LOCAL_SIZE = 64.
// One invocation per sample.
#version 450
#extension GL_GOOGLE_include_directive : require
#define TRAINING_COUNT_BINDING 3
#include "nerf_training.glsl"

layout(set = 0, binding = 0) buffer ColorInput { float colorInput[]; };
layout(set = 0, binding = 1) readonly buffer Directions { float directions[]; };
layout(set = 0, binding = 2) writeonly buffer Sigma { float sigma[]; };
layout(push_constant) uniform Params { uint count; uint stride; uint withDirections; uint countWord; };

void main() {
    uint i = trainingInvocation();
    if (i >= trainingCount(count, countWord)) return;
    uint row = i * stride;
    sigma[i] = exp(colorInput[row]);
    if (withDirections == 0u) return;
    float x = directions[3u * i], y = directions[3u * i + 1u], z = directions[3u * i + 2u];
    float xx = x * x, yy = y * y, zz = z * z;
    uint sh = row + 16u;
    colorInput[sh + 0u] = 0.28209479177387814;
    colorInput[sh + 1u] = -0.48860251190291987 * y;
    colorInput[sh + 2u] = 0.48860251190291987 * z;
    colorInput[sh + 3u] = -0.48860251190291987 * x;
    colorInput[sh + 4u] = 1.0925484305920792 * x * y;
    colorInput[sh + 5u] = -1.0925484305920792 * y * z;
    colorInput[sh + 6u] = 0.94617469575755997 * zz - 0.31539156525251999;
    colorInput[sh + 7u] = -1.0925484305920792 * x * z;
    colorInput[sh + 8u] = 0.54627421529603959 * (xx - yy);
    colorInput[sh + 9u] = 0.59004358992664352 * y * (yy - 3.0 * xx);
    colorInput[sh + 10u] = 2.8906114426405538 * x * y * z;
    colorInput[sh + 11u] = 0.45704579946446572 * y * (1.0 - 5.0 * zz);
    colorInput[sh + 12u] = 0.3731763325901154 * z * (5.0 * zz - 3.0);
    colorInput[sh + 13u] = 0.45704579946446572 * x * (1.0 - 5.0 * zz);
    colorInput[sh + 14u] = 1.4453057213202769 * z * (xx - yy);
    colorInput[sh + 15u] = 0.59004358992664352 * x * (3.0 * yy - xx);
}
