// Shared by the training march (Shaders/nerf/train_march_rays.comp) and the density-grid kernels: the
// occupancy grid's cell lookup and the march's step rules, written as the CPU path writes them
// (Sources/CKernels/nerf_training.c: spread_bits, occupied_at, cascade_for, distance_to_next_cell), so
// that both place the same samples. Every value the C code rounds is `precise` here: the C code is built
// without FMA contraction, and a fused multiply-add would move a sample by an ulp and could change the
// cell (and so the count) it lands in.
//
// The occupancy bitfield: bit (i & 31) of word i >> 5 for cell i = cascade·resolution³ + Morton(x, y, z).
#ifndef NERF_MARCH_GLSL
#define NERF_MARCH_GLSL

uint marchSpreadBits(uint v) {
    v &= 0x3ffu;
    v = (v | v << 16) & 0x030000ffu;
    v = (v | v << 8) & 0x0300f00fu;
    v = (v | v << 4) & 0x030c30c3u;
    v = (v | v << 2) & 0x09249249u;
    return v;
}

uint marchMorton(uvec3 i) { return marchSpreadBits(i.x) | marchSpreadBits(i.y) << 1 | marchSpreadBits(i.z) << 2; }

// The inverse of marchSpreadBits (TrainingDensityGrid.mortonDecode).
uint marchCompactBits(uint v) {
    v &= 0x09249249u;
    v = (v | v >> 2) & 0x030c30c3u;
    v = (v | v >> 4) & 0x0300f00fu;
    v = (v | v >> 8) & 0x030000ffu;
    v = (v | v >> 16) & 0x000003ffu;
    return v;
}

uvec3 marchMortonDecode(uint m) { return uvec3(marchCompactBits(m), marchCompactBits(m >> 1), marchCompactBits(m >> 2)); }

// The cell of unit-cube point p in `cascade`, as a flat index, or -1 outside the cascade's cube.
int marchCell(vec3 p, int cascade, uint resolution) {
    float scale = ldexp(1.0, -cascade), r = float(resolution);
    uvec3 i;
    for (int a = 0; a < 3; a++) {
        precise float shifted = (p[a] - 0.5) * scale;
        precise float q = (shifted + 0.5) * r;
        if (!(q >= 0.0 && q < r)) return -1;
        i[a] = uint(int(q));
    }
    return int(uint(cascade) * resolution * resolution * resolution + marchMorton(i));
}

// The cascade a sample of step dt at p is looked up in: the finest that contains p, coarsened until
// its cells are no smaller than half the step.
int marchCascade(vec3 p, float dt, uint resolution, int cascades) {
    float extent = max(max(abs(p.x - 0.5), abs(p.y - 0.5)), abs(p.z - 0.5));
    int exponent;
    frexp(extent, exponent);
    int mip = clamp(exponent + 1, 0, cascades - 1);
    precise float cells = dt * 2.0 * float(resolution);
    if (cells >= 1.0) {
        frexp(cells, exponent);
        mip = min(max(mip, exponent), cascades - 1);
    }
    return mip;
}

// Distance along the ray (unit direction d, componentwise inverse) from p to the next cell boundary of
// `cascade`; never negative.
float marchDistanceToNextCell(vec3 p, vec3 d, vec3 inverse, int cascade, uint resolution) {
    float res = ldexp(float(resolution), -cascade);
    float best = uintBitsToFloat(0x7f800000u); // +infinity
    for (int a = 0; a < 3; a++) {
        if (d[a] == 0.0) continue;
        precise float q = res * (p[a] - 0.5);
        precise float edge = floor((q + 0.5) + 0.5 * (d[a] > 0.0 ? 1.0 : -1.0));
        precise float t = (edge - q) * inverse[a];
        if (t < best) best = t;
    }
    precise float scaled = best / res;
    return scaled > 0.0 ? scaled : 0.0;
}

#endif
