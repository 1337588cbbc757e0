// generate_rays: one ray per (pixel, sub-pixel sample) of a perspective camera with optional OpenCV
// radial-tangential distortion (the ray goes through the undistorted normalised point, see undistort in
// nerf_rays.glsl), clipped to the field's bounding box; rays that hit the box are appended to the live
// list (atomic counter, any order). Mirrors MarchParameters.generateRay (RayMarching.swift),
// Camera.ray(u:v:) (Camera.swift) and AABB.intersect.
//
// Bindings (set 0), all storage buffers:
//   0  origins       vec4[rays], write   (origin, t near)
//   1  directions    vec4[rays], write   (direction, t far)
//   2  accumulation  vec4[rays], write   (0, 0, 0, 1)
//   3  bookkeeping   uvec4[rays], write  zeros
//   4  liveRays      uint[rays], write   indices of rays that hit the box
//   5  liveCount     uint, read-write    atomic counter (zeroed by the host before)
// Push constants (128 bytes, Vulkan's guaranteed minimum): uint width, height, samplesPerPixel, rayCount;
//   float rotation[9] (camera-to-world columns right, up, backward); float translation[3];
//   float fx, fy, cx, cy; float lower[3], upper[3] (bounding box); float k1, k2, k3, k4, p1, p2
//   (all zero: pinhole, the undistortion is skipped).
// Specialization constants: 0 WG_SIZE = 64.
// Ray r: pixel r / samplesPerPixel (row-major, top row first), sub-pixel sample r % samplesPerPixel
// at the R2-sequence offset. Dispatch: x = ceil(rayCount / WG_SIZE).
#version 450
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint WG_SIZE = 64;
layout(local_size_x_id = 0) in;

#include "nerf_rays.glsl"

layout(set = 0, binding = 0) writeonly buffer Origins { vec4 origins[]; };
layout(set = 0, binding = 1) writeonly buffer Directions { vec4 directions[]; };
layout(set = 0, binding = 2) writeonly buffer Accumulation { vec4 accumulation[]; };
layout(set = 0, binding = 3) writeonly buffer Bookkeeping { uvec4 bookkeeping[]; };
layout(set = 0, binding = 4) writeonly buffer LiveRays { uint liveRays[]; };
layout(set = 0, binding = 5) buffer LiveCount { uint liveCount; };
layout(push_constant) uniform Push {
    uint width, height, samplesPerPixel, rayCount;
    float r0x, r0y, r0z, r1x, r1y, r1z, r2x, r2y, r2z;
    float tx, ty, tz;
    float fx, fy, cx, cy;
    float lx, ly, lz, ux, uy, uz;
    float k1, k2, k3, k4, p1, p2;
} p;

void main() {
    const uint r = gl_GlobalInvocationID.x;
    if (r >= p.rayCount) return;
    const uint pixel = r / p.samplesPerPixel, s = r % p.samplesPerPixel;
    const vec2 offset = s == 0u ? vec2(0.5) : fract(vec2(0.5) + float(s) * vec2(0.7548776662, 0.5698402910));
    const float u = float(pixel % p.width) + offset.x, v = float(pixel / p.width) + offset.y;
    vec2 normalised = vec2((u - p.cx) / p.fx, (v - p.cy) / p.fy);
    const vec4 k = vec4(p.k1, p.k2, p.k3, p.k4);
    const vec2 tangential = vec2(p.p1, p.p2);
    if (any(notEqual(k, vec4(0.0))) || any(notEqual(tangential, vec2(0.0)))) normalised = undistort(normalised, k, tangential);
    const vec3 local = vec3(normalised.x, -normalised.y, -1.0);
    const vec3 direction = normalize(vec3(p.r0x, p.r0y, p.r0z) * local.x + vec3(p.r1x, p.r1y, p.r1z) * local.y
                                     + vec3(p.r2x, p.r2y, p.r2z) * local.z);
    const vec3 origin = vec3(p.tx, p.ty, p.tz);
    const vec3 inverse = 1.0 / direction;
    const vec3 t0 = (vec3(p.lx, p.ly, p.lz) - origin) * inverse, t1 = (vec3(p.ux, p.uy, p.uz) - origin) * inverse;
    const vec3 tMin = min(t0, t1), tMax = max(t0, t1);
    const float near = max(max(max(tMin.x, tMin.y), tMin.z), 0.0);
    const float far = min(min(tMax.x, tMax.y), tMax.z);
    origins[r] = vec4(origin, near);
    directions[r] = vec4(direction, far);
    accumulation[r] = vec4(0.0, 0.0, 0.0, 1.0);
    bookkeeping[r] = uvec4(0u);
    if (near < far) liveRays[atomicAdd(liveCount, 1u)] = r;
}
