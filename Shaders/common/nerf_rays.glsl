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

// OpenCV radial-tangential undistortion (CameraDistortion.undistort in CameraDistortion.swift, line for
// line): Newton's method on distort(x) = xd from x = xd, UNDISTORT_ITERATIONS steps, stopping at a
// singular Jacobian. k = (k1, k2, k3, k4), p = (p1, p2); coordinates are normalised, y down the image.
#define UNDISTORT_ITERATIONS 8
vec2 undistort(vec2 xd, vec4 k, vec2 p) {
    float x = xd.x, y = xd.y;
    for (int i = 0; i < UNDISTORT_ITERATIONS; ++i) {
        const float r2 = x * x + y * y;
        const float radial = 1.0 + r2 * (k.x + r2 * (k.y + r2 * (k.z + r2 * k.w)));
        const float slope = k.x + r2 * (2.0 * k.y + r2 * (3.0 * k.z + r2 * 4.0 * k.w));
        const float fx = x * radial + 2.0 * p.x * x * y + p.y * (r2 + 2.0 * x * x) - xd.x;
        const float fy = y * radial + p.x * (r2 + 2.0 * y * y) + 2.0 * p.y * x * y - xd.y;
        const float jxx = radial + 2.0 * x * x * slope + 2.0 * p.x * y + 6.0 * p.y * x;
        const float jxy = 2.0 * x * y * slope + 2.0 * p.x * x + 2.0 * p.y * y;
        const float jyy = radial + 2.0 * y * y * slope + 6.0 * p.x * y + 2.0 * p.y * x;
        const float determinant = jxx * jyy - jxy * jxy;
        if (abs(determinant) < 1e-12) break;
        x -= (fx * jyy - fy * jxy) / determinant;
        y -= (fy * jxx - fx * jxy) / determinant;
    }
    return vec2(x, y);
}

#endif
