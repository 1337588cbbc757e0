// composite_rays: front-to-back compositing of each live ray's evaluated samples, with early
// termination once transmittance falls below the threshold; rays still alive (transmittance at or
// above the threshold and not past the box) are appended to the next round's live list.
// Mirrors MarchParameters.composite (RayMarching.swift): α = 1 − exp(−σ·dt), w = T·α, C += w·c,
// depth += w·t, T ·= 1 − α.
//
// Bindings (set 0), all storage buffers:
//   0  liveRays      uint[live], read
//   1  origins       vec4[rays], read (w: t where marching resumes)
//   2  directions    vec4[rays], read (w: t far)
//   3  sampleSteps   vec2[capacity], read (t, dt)
//   4  radiance      vec4[capacity], read (r, g, b, σ) — the field's output
//   5  accumulation  vec4[rays], read-write (rgb, transmittance)
//   6  bookkeeping   uvec4[rays], read-write (first sample, samples this round, total, depth bits)
//   7  nextLive      uint[rays], write
//   8  nextCount     uint, read-write (atomic; zeroed by the host before)
// Push constants: uint liveCount; float threshold.
// Specialization constants: 0 WG_SIZE = 64.
// One invocation per live ray. Dispatch: x = ceil(liveCount / WG_SIZE).
#version 450
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint WG_SIZE = 64;
layout(local_size_x_id = 0) in;

layout(set = 0, binding = 0) readonly buffer LiveRays { uint liveRays[]; };
layout(set = 0, binding = 1) readonly buffer Origins { vec4 origins[]; };
layout(set = 0, binding = 2) readonly buffer Directions { vec4 directions[]; };
layout(set = 0, binding = 3) readonly buffer SampleSteps { vec2 sampleSteps[]; };
layout(set = 0, binding = 4) readonly buffer Radiance { vec4 radiance[]; };
layout(set = 0, binding = 5) buffer Accumulation { vec4 accumulation[]; };
layout(set = 0, binding = 6) buffer Bookkeeping { uvec4 bookkeeping[]; };
layout(set = 0, binding = 7) writeonly buffer NextLive { uint nextLive[]; };
layout(set = 0, binding = 8) buffer NextCount { uint nextCount; };
layout(push_constant) uniform Push { uint liveCount; float threshold; } p;

void main() {
    const uint i = gl_GlobalInvocationID.x;
    if (i >= p.liveCount) return;
    const uint ray = liveRays[i];
    vec4 state = accumulation[ray];
    uvec4 book = bookkeeping[ray];
    float depthSum = uintBitsToFloat(book.w);
    for (uint j = 0u; j < book.y; ++j) {
        const vec2 step = sampleSteps[book.x + j];
        const vec4 value = radiance[book.x + j];
        const float alpha = 1.0 - exp(-value.w * step.y);
        const float weight = state.w * alpha;
        state.rgb += weight * value.rgb;
        depthSum += weight * step.x;
        state.w *= 1.0 - alpha;
        if (state.w < p.threshold) break;
    }
    accumulation[ray] = state;
    bookkeeping[ray] = uvec4(book.x, book.y, book.z + book.y, floatBitsToUint(depthSum));
    if (state.w >= p.threshold && origins[ray].w < directions[ray].w) nextLive[atomicAdd(nextCount, 1u)] = ray;
}
