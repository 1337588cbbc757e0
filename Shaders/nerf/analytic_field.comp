// analytic_field: evaluates an AnalyticField (AnalyticField.swift) at a batch of samples: density is
// the sum of the primitives' compact-support profiles, colour their mix weighted by
// w = σ + 1e-3 / (1 + 100·gap²), plus view-dependent highlights. Same formulas, in fp32, as the CPU path.
//
// Bindings (set 0)
//   0  samples     uniform samplerBuffer RGBA32F: 2 texels per sample (nerf_samples.glsl)
//   1  sampleCount storage buffer, read: uint count (samples past it are not touched)
//   2  primitives  uniform samplerBuffer RGBA32F: 4 texels per primitive:
//                  (center xyz, radius) (thickness, σmax, kind, stripe frequency)
//                  (colour rgb, stripe amount) (specular, shininess, -, -)
//   3  output      storage buffer, write: vec4 (r, g, b, σ) per sample
// Push constants: uint capacity (samples the dispatch covers), uint primitiveCount.
// Specialization constants: 0 WG_SIZE = 64 (local_size_x).
// One invocation per sample. Dispatch: x = ceil(capacity / WG_SIZE).
#version 450
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint WG_SIZE = 64;
layout(local_size_x_id = 0) in;

#include "nerf_samples.glsl"

layout(set = 0, binding = 0) uniform samplerBuffer samples;
layout(set = 0, binding = 1) readonly buffer SampleCount { uint sampleCount; };
layout(set = 0, binding = 2) uniform samplerBuffer primitives;
layout(set = 0, binding = 3) writeonly buffer Output { vec4 outputs[]; };
layout(push_constant) uniform Push { uint capacity; uint primitiveCount; } p;

const vec3 LIGHT = vec3(0.4, 0.5, 0.75) / sqrt(0.4 * 0.4 + 0.5 * 0.5 + 0.75 * 0.75);

void main() {
    const uint i = gl_GlobalInvocationID.x;
    if (i >= min(p.capacity, sampleCount)) return;
    const vec3 position = samplePosition(samples, i);
    const vec3 direction = sampleDirection(samples, i);
    float density = 0.0, totalWeight = 0.0;
    vec3 weighted = vec3(0.0);
    for (uint k = 0u; k < p.primitiveCount; ++k) {
        const vec4 a = texelFetch(primitives, int(4u * k));
        const vec4 b = texelFetch(primitives, int(4u * k + 1u));
        const vec4 c = texelFetch(primitives, int(4u * k + 2u));
        const vec4 d = texelFetch(primitives, int(4u * k + 3u));
        const vec3 offset = position - a.xyz;
        const float r = length(offset);
        const float radius = a.w, thickness = b.x, sigmaMax = b.y;
        const int kind = int(b.z + 0.5);
        float sigma = 0.0, support;
        if (kind == 0) {
            const float x = (r - radius) / thickness;
            if (abs(x) < 1.0) { const float u = 1.0 - x * x; sigma = sigmaMax * u * u; }
            support = radius + thickness;
        } else if (kind == 1) {
            const float q = r * r / (radius * radius);
            if (q < 1.0) { const float u = 1.0 - q; sigma = sigmaMax * u * u * u; }
            support = radius;
        } else {
            const float s = clamp((radius - r) / thickness + 0.5, 0.0, 1.0);
            sigma = sigmaMax * s * s * (3.0 - 2.0 * s);
            support = radius + thickness * 0.5;
        }
        const float stripe = 0.5 + 0.5 * sin(b.w * (offset.x + 0.7 * offset.y + 0.4 * offset.z));
        vec3 colour = c.rgb * (1.0 - c.w + c.w * stripe);
        if (d.x > 0.0 && r > 1e-6) {
            const vec3 normal = offset / r;
            const vec3 reflected = direction - 2.0 * dot(direction, normal) * normal;
            colour += d.x * pow(max(0.0, dot(reflected, LIGHT)), d.y);
        }
        const float gap = max(0.0, r - support);
        const float weight = sigma + 1e-3 / (1.0 + 100.0 * gap * gap);
        density += sigma;
        weighted += weight * colour;
        totalWeight += weight;
    }
    outputs[i] = vec4(clamp(weighted / totalWeight, 0.0, 1.0), density);
}
