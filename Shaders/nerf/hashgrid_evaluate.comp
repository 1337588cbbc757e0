// hashgrid_evaluate: instant-ngp's NeRF network at a batch of samples, fused in one kernel:
//   multiresolution hash encoding (trilinear, dense coarse levels, XOR-prime hash on fine levels)
//   → density MLP (ReLU hidden layers, 16 linear outputs; σ = exp(output 0))
//   → colour MLP on [16 density outputs, 16 SH(direction) coefficients] (RGB = sigmoid(outputs 0..2)).
// fp16 parameters read through RGBA16F/R16F texel views, all arithmetic fp32. The CPU evaluator
// (HashGridField.swift) does the same operations in the same order per dot product up to summation order.
//
// Bindings (set 0)
//   0  samples  uniform samplerBuffer RGBA32F: sample i is texels 2i (pos xyz, pad) and 2i+1 (dir xyz, pad)
//   1  count    storage buffer, read: uint; samples at or past count are not touched
//   2  grid     uniform samplerBuffer of the fp16 grid tables: R16F (F=1), RG16F (F=2), RGBA16F (F=4,
//               and F=8 as two texels per entry); entry e of level l is texel (tableOffset_l + e)·(F/4 or 1)
//   3  weights  uniform samplerBuffer RGBA16F: the MLP weights, density layers then colour layers, each a
//               row-major outputs × inputs matrix whose width is a multiple of 16 (tiny-cuda-nn layout)
//   4  levels   storage buffer, read: uvec4 per level (tableOffset, tableSize, floatBits(scale),
//               resolution | 0x80000000 when the level is dense)
//   5  output   storage buffer, write: vec4 per sample (r, g, b, σ)
//
// Push constants (32 bytes): vec3 aabbLower, uint capacity, vec3 inverseSize, uint pad.
//   The unit-cube position is (p − aabbLower)·inverseSize; outside [0,1]³ the output is 0.
//
// Specialization constants
//   0  LOCAL_SIZE      64   invocations per workgroup (x)
//   1  LEVELS          8
//   2  FEATURES        4    features per level (1, 2, 4, 8)
//   3  ENCODING_WIDTH  32   LEVELS·FEATURES rounded up to 16 (density MLP input width)
//   4  DENSITY_WIDTH   64   density MLP hidden width
//   5  DENSITY_HIDDEN  1    density MLP hidden layers
//   6  COLOR_WIDTH     64   colour MLP hidden width
//   7  COLOR_HIDDEN    2    colour MLP hidden layers
//   8  MAX_WIDTH       64   max(ENCODING_WIDTH, DENSITY_WIDTH, COLOR_WIDTH, 32): the activation arrays
//
// Variants "_l8f4" (8 levels × 4 features) and "_l16f2" (16 × 2), both with 64-wide MLPs of 1 and 2
// hidden layers (instant-ngp's standard networks), fix every size at compile time (FIXED_LEVELS below).
// @variant l8f4: -DFIXED_LEVELS=8u -DFIXED_FEATURES=4u
// @variant l16f2: -DFIXED_LEVELS=16u -DFIXED_FEATURES=2u
//
// Work: one invocation per sample, sample index x + y·(groups in x)·LOCAL_SIZE. Dispatch G = ceil(capacity /
// LOCAL_SIZE) groups as min(G, maxComputeWorkGroupCount[0]) × ceil(G / that) × 1 (65,535 groups in x
// is all many devices allow).
#version 450

#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
#ifdef FIXED_LEVELS
// Fixed-shape variants for instant-ngp's standard networks: every loop bound is a compile-time
// constant, so the loops over a layer's inputs unroll and the input activations can live in registers
// (the loop over outputs stays rolled: unrolling it too made a 680 KB module that lavapipe took ~10 s to
// compile). Specialization constants 1..8 are then ignored.
const uint LEVELS = FIXED_LEVELS;
const uint FEATURES = FIXED_FEATURES;
const uint ENCODING_WIDTH = 32u;
const uint DENSITY_WIDTH = 64u;
const uint DENSITY_HIDDEN = 1u;
const uint COLOR_WIDTH = 64u;
const uint COLOR_HIDDEN = 2u;
const uint MAX_WIDTH = 64u;
#define UNROLL [[unroll]]
#else
layout(constant_id = 1) const uint LEVELS = 8u;
layout(constant_id = 2) const uint FEATURES = 4u;
layout(constant_id = 3) const uint ENCODING_WIDTH = 32u;
layout(constant_id = 4) const uint DENSITY_WIDTH = 64u;
layout(constant_id = 5) const uint DENSITY_HIDDEN = 1u;
layout(constant_id = 6) const uint COLOR_WIDTH = 64u;
layout(constant_id = 7) const uint COLOR_HIDDEN = 2u;
layout(constant_id = 8) const uint MAX_WIDTH = 64u;
#define UNROLL
#endif

// instant-ngp's colour activation: 0 = logistic (LDR captures), 1 = exp(clamp(x, −10, 10)) (HDR captures,
// `nerf.dataset.is_hdr`).
layout(constant_id = 9) const uint HDR_RGB = 0u;

layout(set = 0, binding = 0) uniform samplerBuffer samples;
layout(set = 0, binding = 1) readonly buffer Count { uint sampleCount; };
layout(set = 0, binding = 2) uniform samplerBuffer grid;
layout(set = 0, binding = 3) uniform samplerBuffer weights;
layout(set = 0, binding = 4) readonly buffer Levels { uvec4 levels[]; };
layout(set = 0, binding = 5) writeonly buffer Output { vec4 outputs[]; };

layout(push_constant) uniform Params {
    vec3 aabbLower;
    uint capacity;
    vec3 inverseSize;
    uint pad;
};

float a[MAX_WIDTH];
float b[MAX_WIDTH];

// b[0..outputs) = W·a[0..inputs) for the row-major matrix starting at element `offset` of `weights`
// (inputs and offset are multiples of 4), with ReLU when `relu`.
void layer(uint offset, uint outputs, uint inputs, bool relu) {
    for (uint o = 0u; o < outputs; o++) {
        uint row = (offset + o * inputs) >> 2;
        float sum = 0.0;
        UNROLL for (uint i = 0u; i < inputs; i += 4u) {
            vec4 w = texelFetch(weights, int(row + (i >> 2)));
            sum += w.x * a[i] + w.y * a[i + 1u] + w.z * a[i + 2u] + w.w * a[i + 3u];
        }
        b[o] = relu ? max(sum, 0.0) : sum;
    }
}

void copyBack(uint count) {
    UNROLL for (uint i = 0u; i < count; i++) a[i] = b[i];
}

uint gridEntry(uvec3 v, uvec4 level) {
    uint resolution = level.w & 0x7fffffffu;
    uint index = (level.w & 0x80000000u) != 0u
        ? v.x + v.y * resolution + v.z * resolution * resolution
        : v.x ^ (v.y * 2654435761u) ^ (v.z * 805459861u);
    return index % level.y;
}

void encode(vec3 x) {
    UNROLL for (uint i = 0u; i < ENCODING_WIDTH; i++) a[i] = 0.0;
    UNROLL for (uint l = 0u; l < LEVELS; l++) {
        uvec4 level = levels[l];
        vec3 position = x * uintBitsToFloat(level.z) + 0.5;
        vec3 cell = floor(position);
        vec3 t = position - cell;
        uvec3 base = uvec3(cell);
        vec4 sum0 = vec4(0.0), sum1 = vec4(0.0);
        UNROLL for (uint corner = 0u; corner < 8u; corner++) {
            uvec3 d = uvec3(corner & 1u, (corner >> 1) & 1u, corner >> 2);
            vec3 s = mix(1.0 - t, t, vec3(d));
            float weight = s.x * s.y * s.z;
            uint entry = level.x + gridEntry(base + d, level);
            if (FEATURES == 8u) {
                sum0 += weight * texelFetch(grid, int(2u * entry));
                sum1 += weight * texelFetch(grid, int(2u * entry + 1u));
            } else {
                sum0 += weight * texelFetch(grid, int(entry));
            }
        }
        UNROLL for (uint f = 0u; f < FEATURES; f++) a[l * FEATURES + f] = f < 4u ? sum0[f] : sum1[f - 4u];
    }
}

// Real spherical harmonics of degree ≤ 3 in tiny-cuda-nn's order and signs, written to a[16..32).
void sphericalHarmonics(vec3 d) {
    float x = d.x, y = d.y, z = d.z, xx = x * x, yy = y * y, zz = z * z;
    a[16] = 0.28209479177387814;
    a[17] = -0.48860251190291987 * y;
    a[18] = 0.48860251190291987 * z;
    a[19] = -0.48860251190291987 * x;
    a[20] = 1.0925484305920792 * x * y;
    a[21] = -1.0925484305920792 * y * z;
    a[22] = 0.94617469575755997 * zz - 0.31539156525251999;
    a[23] = -1.0925484305920792 * x * z;
    a[24] = 0.54627421529603959 * (xx - yy);
    a[25] = 0.59004358992664352 * y * (yy - 3.0 * xx);
    a[26] = 2.8906114426405538 * x * y * z;
    a[27] = 0.45704579946446572 * y * (1.0 - 5.0 * zz);
    a[28] = 0.3731763325901154 * z * (5.0 * zz - 3.0);
    a[29] = 0.45704579946446572 * x * (1.0 - 5.0 * zz);
    a[30] = 1.4453057213202769 * z * (xx - yy);
    a[31] = 0.59004358992664352 * x * (3.0 * yy - xx);
}

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (i >= capacity || i >= sampleCount) return;
    vec3 p = texelFetch(samples, int(2u * i)).xyz;
    vec3 direction = texelFetch(samples, int(2u * i + 1u)).xyz;
    vec3 x = (p - aabbLower) * inverseSize;
    if (any(lessThan(x, vec3(0.0))) || any(greaterThan(x, vec3(1.0)))) {
        outputs[i] = vec4(0.0);
        return;
    }
    encode(x);
    uint offset = 0u;
    layer(offset, DENSITY_WIDTH, ENCODING_WIDTH, true);
    offset += DENSITY_WIDTH * ENCODING_WIDTH;
    copyBack(DENSITY_WIDTH);
    UNROLL for (uint h = 1u; h < DENSITY_HIDDEN; h++) {
        layer(offset, DENSITY_WIDTH, DENSITY_WIDTH, true);
        offset += DENSITY_WIDTH * DENSITY_WIDTH;
        copyBack(DENSITY_WIDTH);
    }
    layer(offset, 16u, DENSITY_WIDTH, false);
    offset += 16u * DENSITY_WIDTH;
    float sigma = exp(b[0]);
    copyBack(16u);
    sphericalHarmonics(direction);
    layer(offset, COLOR_WIDTH, 32u, true);
    offset += COLOR_WIDTH * 32u;
    copyBack(COLOR_WIDTH);
    UNROLL for (uint h = 1u; h < COLOR_HIDDEN; h++) {
        layer(offset, COLOR_WIDTH, COLOR_WIDTH, true);
        offset += COLOR_WIDTH * COLOR_WIDTH;
        copyBack(COLOR_WIDTH);
    }
    layer(offset, 3u, COLOR_WIDTH, false);
    vec3 logits = vec3(b[0], b[1], b[2]);
    vec3 rgb = HDR_RGB != 0u ? exp(clamp(logits, -10.0, 10.0)) : 1.0 / (1.0 + exp(-logits));
    outputs[i] = vec4(rgb, sigma);
}
