// Reading a matrix through a uniform texel buffer. The host binds either a 4-channel view (RGBA32F /
// RGBA16F / RGBA16UI: texel t holds elements 4t..4t+3) or a 1-channel view (R32F / R16F / R16UI: texel
// t is element t); the includer declares `const uint VEC4_LOADS` (a specialization constant) saying
// which. Either way the view must cover every texel that holds an element of the matrix (round the
// view's range up to 16 bytes for 4-channel views). The precision of the view is invisible here:
// fetchFloats always returns fp32. Declare float inputs as `uniform FloatTexels name;` (bfloat16.glsl):
// a samplerBuffer, or with -DSTORAGE_BF16=1 a usamplerBuffer of bf16 bits (R16UI / RGBA16UI).
#ifndef TEXEL_LOADS_GLSL
#define TEXEL_LOADS_GLSL

#include "bfloat16.glsl"   // FloatTexels, fetchFloats

// One element, any alignment.
float loadElement(FloatTexels matrix, uint e) {
    if (VEC4_LOADS != 0u) return fetchFloats(matrix, int(e >> 2))[e & 3u];
    return fetchFloats(matrix, int(e)).x;
}

// Elements e..e+3. With a 4-channel view e must be a multiple of 4 (one fetch); with a 1-channel view
// any e (four fetches). All four elements must lie inside the matrix.
vec4 loadVec4(FloatTexels matrix, uint e) {
    if (VEC4_LOADS != 0u) return fetchFloats(matrix, int(e >> 2));
    return vec4(fetchFloats(matrix, int(e)).x, fetchFloats(matrix, int(e + 1u)).x,
                fetchFloats(matrix, int(e + 2u)).x, fetchFloats(matrix, int(e + 3u)).x);
}

#endif
