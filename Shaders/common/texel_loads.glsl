// Reading a matrix through a uniform texel buffer (samplerBuffer). The host binds either a 4-channel
// view (RGBA32F / RGBA16F: texel t holds elements 4t..4t+3) or a 1-channel view (R32F / R16F: texel t
// is element t); the includer declares `const uint VEC4_LOADS` (a specialization constant) saying
// which. Either way the view must cover every texel that holds an element of the matrix (round the
// view's range up to 16 bytes for 4-channel views). The precision of the view (32 or 16 bit) is
// invisible here: texelFetch always returns fp32.
#ifndef TEXEL_LOADS_GLSL
#define TEXEL_LOADS_GLSL

// One element, any alignment.
float loadElement(samplerBuffer matrix, uint e) {
    if (VEC4_LOADS != 0u) return texelFetch(matrix, int(e >> 2))[e & 3u];
    return texelFetch(matrix, int(e)).x;
}

// Elements e..e+3. With a 4-channel view e must be a multiple of 4 (one fetch); with a 1-channel view
// any e (four fetches). All four elements must lie inside the matrix.
vec4 loadVec4(samplerBuffer matrix, uint e) {
    if (VEC4_LOADS != 0u) return texelFetch(matrix, int(e >> 2));
    return vec4(texelFetch(matrix, int(e)).x, texelFetch(matrix, int(e + 1u)).x,
                texelFetch(matrix, int(e + 2u)).x, texelFetch(matrix, int(e + 3u)).x);
}

#endif
