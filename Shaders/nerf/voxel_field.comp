// voxel_field: evaluates a VoxelGridField (VoxelGridField.swift, Plenoxels style) at a batch of
// samples: trilinear interpolation of the 8 surrounding vertices' 28 values (σ, 9 SH coefficients per
// colour channel), σ = max(0, σ̃), colour = clamp(Σ c_k Y_k(d), 0, 1) with the degree-2 real SH basis.
// Positions outside the grid's box give (0, 0, 0, 0).
//
// Bindings (set 0)
//   0  samples     uniform samplerBuffer RGBA32F: 2 texels per sample (nerf_samples.glsl)
//   1  sampleCount storage buffer, read: uint count
//   2  grid        uniform samplerBuffer RGBA32F: 7 texels per vertex, vertex x + n(y + nz)
//   3  output      storage buffer, write: vec4 (r, g, b, σ)
// Push constants (32 bytes): uint capacity, uint n (vertices per axis); float lower[3], upper[3].
// Specialization constants: 0 WG_SIZE = 64.
// One invocation per sample. Dispatch: x = ceil(capacity / WG_SIZE).
#version 450
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint WG_SIZE = 64;
layout(local_size_x_id = 0) in;

#include "nerf_samples.glsl"

layout(set = 0, binding = 0) uniform samplerBuffer samples;
layout(set = 0, binding = 1) readonly buffer SampleCount { uint sampleCount; };
layout(set = 0, binding = 2) uniform samplerBuffer grid;
layout(set = 0, binding = 3) writeonly buffer Output { vec4 outputs[]; };
layout(push_constant) uniform Push { uint capacity, n; float lx, ly, lz, ux, uy, uz; } p;

void main() {
    const uint i = gl_GlobalInvocationID.x;
    if (i >= min(p.capacity, sampleCount)) return;
    const vec3 position = samplePosition(samples, i);
    const vec3 d = sampleDirection(samples, i);
    const vec3 lower = vec3(p.lx, p.ly, p.lz);
    const float scale = float(p.n - 1u);
    const vec3 u = (position - lower) / (vec3(p.ux, p.uy, p.uz) - lower) * scale;
    if (any(lessThan(u, vec3(0.0))) || any(greaterThan(u, vec3(scale)))) { outputs[i] = vec4(0.0); return; }
    const uvec3 cell = min(uvec3(u), uvec3(p.n - 2u));
    const vec3 f = u - vec3(cell);
    vec4 v[7];
    for (uint k = 0u; k < 7u; ++k) v[k] = vec4(0.0);
    for (uint corner = 0u; corner < 8u; ++corner) {
        const uvec3 c = uvec3(corner & 1u, (corner >> 1u) & 1u, corner >> 2u);
        const vec3 w3 = mix(vec3(1.0) - f, f, vec3(c));
        const float w = w3.x * w3.y * w3.z;
        const uint vertex = (cell.x + c.x) + p.n * ((cell.y + c.y) + p.n * (cell.z + c.z));
        for (uint k = 0u; k < 7u; ++k) v[k] += w * texelFetch(grid, int(7u * vertex + k));
    }
    float values[28];
    for (uint k = 0u; k < 7u; ++k) for (uint j = 0u; j < 4u; ++j) values[4u * k + j] = v[k][j];
    const float basis[9] = float[9](0.28209479177387814, -0.48860251190291987 * d.y, 0.48860251190291987 * d.z,
                                    -0.48860251190291987 * d.x, 1.0925484305920792 * d.x * d.y, -1.0925484305920792 * d.y * d.z,
                                    0.31539156525252005 * (3.0 * d.z * d.z - 1.0), -1.0925484305920792 * d.x * d.z,
                                    0.5462742152960396 * (d.x * d.x - d.y * d.y));
    vec3 colour = vec3(0.0);
    for (uint k = 0u; k < 9u; ++k) colour += vec3(values[1u + k], values[10u + k], values[19u + k]) * basis[k];
    outputs[i] = vec4(clamp(colour, 0.0, 1.0), max(values[0], 0.0));
}
