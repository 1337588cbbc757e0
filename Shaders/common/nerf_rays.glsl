// Per-ray state of the wavefront ray marcher (Renderer+Vulkan.swift), one entry per ray of the frame:
//   origins[r]       vec4  (origin xyz, t where marching resumes)
//   directions[r]    vec4  (unit direction xyz, t where the ray leaves the bounding box)
//   accumulation[r]  vec4  (accumulated rgb, transmittance)
//   bookkeeping[r]   uvec4 (first sample of this round, samples this round, samples so far,
//                           floatBitsToUint(Σ weight·t))
#ifndef NERF_RAYS_GLSL
#define NERF_RAYS_GLSL

// 1/v with zero replaced by ±1e-9, so slab tests never divide by zero.
float safeInverse(float v) { return abs(v) < 1e-9 ? (v < 0.0 ? -1e9 : 1e9) : 1.0 / v; }

#endif
