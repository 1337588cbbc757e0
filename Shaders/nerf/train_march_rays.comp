// train_march_rays: marches a training step's rays through the density grid's occupancy bitfield, as
// the CPU path's vkk_march_ray does (the same cascades, step sizes, cone angle, jitter and samples per
// ray; common/nerf_march.glsl), in two passes over the rays:
//   pass 0 (count): rayCounts[r] = the number of samples ray r has.
//   (then train_ray_scan sums the counts by blocks)
//   pass 1 (write): ray r's offset is the sum of the counts before it; the rays whose samples end within
//   maxSamples are kept — a prefix of the rays, as on the CPU (NeRFTrainer.placeSamples says why) — and
//   march again, writing their samples' positions (mapped to the field's unit cube), directions and
//   world-space step lengths (dt·cubeSize) at their offsets; rayRanges[r] = (offset, count), count 0 for
//   the rays left out. The last kept ray writes totals[0] = samples placed, totals[1] = rays kept.
//
// Bindings (set 0), all storage buffers:
//   0  rays          vec4[4·rayCount], read: (origin, jitter), (direction, 0), target, background
//                    (unit-cube coordinates, unit direction)
//   1  occupancy     uint[cascades·resolution³ / 32], read (bitfield, common/nerf_march.glsl)
//   2  rayCounts     uint[rayCount], write (pass 0) / read (pass 1)
//   3  blockOffsets  uint[blocks], read (pass 1; train_ray_scan's output)
//   4  rayRanges     uvec2[rayCount], write (pass 1)
//   5  totals        uint[4], write (pass 1; zeroed by the host before)
//   6  positions     float[3·maxSamples], write (pass 1)
//   7  directions    float[3·maxSamples], write (pass 1)
//   8  dt            float[maxSamples], write (pass 1)
// Push constants: uint rayCount, maxSamples, maxSamplesPerRay, resolution, cascades, pass;
//   float boxLower, boxUpper, minStep, maxStep, cone, cubeSize.
// Specialization constants: 0 LOCAL_SIZE = 64.
// One invocation per ray.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "nerf_training.glsl"
#include "nerf_march.glsl"

layout(set = 0, binding = 0) readonly buffer Rays { vec4 rays[]; };
layout(set = 0, binding = 1) readonly buffer Occupancy { uint occupancy[]; };
layout(set = 0, binding = 2) buffer RayCounts { uint rayCounts[]; };
layout(set = 0, binding = 3) readonly buffer BlockOffsets { uint blockOffsets[]; };
layout(set = 0, binding = 4) writeonly buffer RayRanges { uvec2 rayRanges[]; };
layout(set = 0, binding = 5) writeonly buffer Totals { uint totals[]; };
layout(set = 0, binding = 6) writeonly buffer Positions { float positions[]; };
layout(set = 0, binding = 7) writeonly buffer Directions { float directions[]; };
layout(set = 0, binding = 8) writeonly buffer Dt { float dt[]; };
layout(push_constant) uniform Params {
    uint rayCount;
    uint maxSamples;
    uint maxSamplesPerRay;
    uint resolution;
    uint cascades;
    uint pass;
    float boxLower;
    float boxUpper;
    float minStep;
    float maxStep;
    float cone;
    float cubeSize;
};

#include "nerf_ray_scan.glsl"

bool occupied(vec3 p, int cascade) {
    int cell = marchCell(p, cascade, resolution);
    return cell >= 0 && (occupancy[uint(cell) >> 5] & (1u << (uint(cell) & 31u))) != 0u;
}

// Marches ray r; writes its samples from `first` on when `write`. Returns its sample count.
uint march(uint r, bool write, uint first) {
    vec3 origin = rays[4u * r].xyz, direction = rays[4u * r + 1u].xyz;
    float jitter = rays[4u * r].w;
    vec3 inverse;
    float near = 0.0, far = uintBitsToFloat(0x7f800000u);
    for (int a = 0; a < 3; a++) {
        inverse[a] = 1.0 / direction[a];
        precise float t0 = (boxLower - origin[a]) * inverse[a];
        precise float t1 = (boxUpper - origin[a]) * inverse[a];
        if (t0 > t1) { float s = t0; t0 = t1; t1 = s; }
        if (t0 > near) near = t0;
        if (t1 < far) far = t1;
    }
    if (!(near < far)) return 0u;
    precise float step0 = clamp(near * cone, minStep, maxStep);
    precise float t = near + step0 * jitter;
    precise float box = boxUpper - boxLower;
    int top = int(cascades) - 1;
    uint count = 0u;
    while (t < far && count < maxSamplesPerRay) {
        precise vec3 p = origin + t * direction;
        precise float step = t * cone;
        step = step < minStep ? minStep : (step > maxStep ? maxStep : step);
        int cascade = marchCascade(p, step, resolution, int(cascades));
        if (occupied(p, cascade)) {
            if (write) {
                uint s = first + count;
                precise vec3 local = (p - boxLower) / box;
                positions[3u * s] = local.x; positions[3u * s + 1u] = local.y; positions[3u * s + 2u] = local.z;
                directions[3u * s] = direction.x; directions[3u * s + 1u] = direction.y; directions[3u * s + 2u] = direction.z;
                dt[s] = step * cubeSize;
            }
            count++;
            t += step;
        } else {
            while (cascade < top && !occupied(p, cascade + 1)) cascade++;
            precise float target = marchDistanceToNextCell(p, direction, inverse, cascade, resolution);
            precise float steps = ceil(target / step);
            t += max(steps, 1.0) * step;
        }
    }
    return count;
}

void main() {
    uint r = trainingInvocation();
    if (r >= rayCount) return;
    if (pass == 0u) {
        rayCounts[r] = march(r, false, 0u);
        return;
    }
    uint start = rayOffset(r), count = rayCounts[r], end = start + count;
    if (end > maxSamples) {
        rayRanges[r] = uvec2(0u, 0u);
        return;
    }
    march(r, true, start);
    rayRanges[r] = uvec2(start, count);
    if (r + 1u == rayCount || end + rayCounts[r + 1u] > maxSamples) {
        totals[0] = end;
        totals[1] = r + 1u;
    }
}
