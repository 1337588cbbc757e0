// The sample layout shared by every radiance field and the ray marcher (RadianceField.swift):
// sample i is two RGBA32F texels of the `samples` view: 2i = (position xyz, unused), 2i + 1 = (unit
// direction xyz, unused); output i is one vec4 (red, green, blue, density σ).
#ifndef NERF_SAMPLES_GLSL
#define NERF_SAMPLES_GLSL

vec3 samplePosition(samplerBuffer samples, uint i) { return texelFetch(samples, int(2u * i)).xyz; }
vec3 sampleDirection(samplerBuffer samples, uint i) { return texelFetch(samples, int(2u * i + 1u)).xyz; }

#endif
