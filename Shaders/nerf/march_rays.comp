// march_rays: for each live ray, places up to maxSteps samples from where it stopped, skipping empty
// space through the multi-level occupancy bitfield (OccupancyGrid.swift): in an empty level-0 cell it
// climbs to the coarsest empty level and jumps to that cell's exit. Each ray reserves its samples with
// one atomicAdd, so a ray's samples are contiguous and the sample list is compact.
// Mirrors MarchParameters.march (RayMarching.swift).
//
// Bindings (set 0), all storage buffers:
//   0  liveRays      uint[live], read
//   1  origins       vec4[rays], read-write (w: t where marching resumes)
//   2  directions    vec4[rays], read
//   3  occupancy     uint[], read: all levels' bits, level after level, bit x + n(y + nz)
//   4  sampleCount   uint, read-write (atomic; zeroed by the host before)
//   5  samples       vec4[2 * capacity], write (position, 0) (direction, 0) — nerf_samples.glsl
//   6  sampleSteps   vec2[capacity], write (t at the step's midpoint, step length)
//   7  bookkeeping   uvec4[rays], read-write (x: first sample, y: samples this round)
// Push constants (56 bytes): uint liveCount, maxSteps (≤ MAX_STEPS), resolution, levels, useGrid;
//   float minimumStep, maximumStep, stepRatio (dt = clamp(t·ratio, min, max)); float lower[3], upper[3].
// Specialization constants: 0 WG_SIZE = 64, 1 MAX_STEPS = 32 (per-round step array size).
// One invocation per live ray. Dispatch: x = ceil(liveCount / WG_SIZE).
#version 450
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint WG_SIZE = 64;
layout(constant_id = 1) const uint MAX_STEPS = 32;
layout(local_size_x_id = 0) in;

#include "nerf_rays.glsl"

layout(set = 0, binding = 0) readonly buffer LiveRays { uint liveRays[]; };
layout(set = 0, binding = 1) buffer Origins { vec4 origins[]; };
layout(set = 0, binding = 2) readonly buffer Directions { vec4 directions[]; };
layout(set = 0, binding = 3) readonly buffer Occupancy { uint occupancy[]; };
layout(set = 0, binding = 4) buffer SampleCount { uint sampleCount; };
layout(set = 0, binding = 5) writeonly buffer Samples { vec4 samples[]; };
layout(set = 0, binding = 6) writeonly buffer SampleSteps { vec2 sampleSteps[]; };
layout(set = 0, binding = 7) buffer Bookkeeping { uvec4 bookkeeping[]; };
layout(push_constant) uniform Push {
    uint liveCount, maxSteps, resolution, levels, useGrid;
    float minimumStep, maximumStep, stepRatio;
    float lx, ly, lz, ux, uy, uz;
} p;

bool occupied(uint level, ivec3 cell) {
    uint offset = 0u;
    for (uint l = 0u; l < level; ++l) { const uint n = p.resolution >> l; offset += (n * n * n + 31u) / 32u; }
    const uint n = p.resolution >> level;
    const uint bit = uint(cell.x) + n * (uint(cell.y) + n * uint(cell.z));
    return (occupancy[offset + (bit >> 5)] & (1u << (bit & 31u))) != 0u;
}

void main() {
    const uint i = gl_GlobalInvocationID.x;
    if (i >= p.liveCount) return;
    const uint ray = liveRays[i];
    const vec4 od = origins[ray], dd = directions[ray];
    const vec3 origin = od.xyz, direction = dd.xyz;
    const float tFar = dd.w;
    const vec3 lower = vec3(p.lx, p.ly, p.lz), size = vec3(p.ux, p.uy, p.uz) - lower;
    const int n0 = int(p.resolution);
    const vec3 inverse = vec3(safeInverse(direction.x), safeInverse(direction.y), safeInverse(direction.z));
    const float nudge = 1e-3 * min(size.x, min(size.y, size.z)) / float(n0);
    float ts[MAX_STEPS], dts[MAX_STEPS];
    float t = od.w;
    uint placed = 0u, iterations = 0u;
    while (placed < p.maxSteps && t < tFar && iterations < 4096u) {
        ++iterations;
        const vec3 position = origin + t * direction;
        const ivec3 cell = clamp(ivec3(floor((position - lower) / size * float(n0))), ivec3(0), ivec3(n0 - 1));
        if (p.useGrid == 0u || occupied(0u, cell)) {
            const float dt = min(max(t * p.stepRatio, p.minimumStep), p.maximumStep);
            const float clipped = min(dt, tFar - t);
            ts[placed] = t + 0.5 * clipped;
            dts[placed] = clipped;
            ++placed;
            t += dt;
        } else {
            uint level = 0u;
            while (level + 1u < p.levels && !occupied(level + 1u, cell >> (level + 1u))) ++level;
            const vec3 cellSize = size / float(n0 >> level);
            const vec3 cellLower = lower + vec3(cell >> level) * cellSize;
            const vec3 t0 = (cellLower - origin) * inverse, t1 = (cellLower + cellSize - origin) * inverse;
            const vec3 tExit = max(t0, t1);
            t = max(min(tExit.x, min(tExit.y, tExit.z)), t) + nudge;
        }
    }
    const uint base = atomicAdd(sampleCount, placed);
    for (uint j = 0u; j < placed; ++j) {
        samples[2u * (base + j)] = vec4(origin + ts[j] * direction, 0.0);
        samples[2u * (base + j) + 1u] = vec4(direction, 0.0);
        sampleSteps[base + j] = vec2(ts[j], dts[j]);
    }
    origins[ray].w = t;
    bookkeeping[ray].xy = uvec2(base, placed);
}
