// train_composite: per training ray, front-to-back compositing with early termination, the photometric
// loss against the ray's target over its background, and the compositing backward pass — the CPU path's
// loop in NeRFTrainer.trainStep (vkk_composite_forward, TrainingLoss.evaluate, vkk_composite_backward):
//   αᵢ = 1 − exp(−σᵢδᵢ), Tᵢ₊₁ = Tᵢ(1 − αᵢ), stopping before sample i once Tᵢ < threshold;
//   C = Σ Tᵢαᵢcᵢ + T·background; per channel d = C − target, L2: (d², 2d), Huber (δ): (d²/(2δ)/5 |
//   (|d| − δ/2)/5, d/δ/5 | sign(d)/5); dL/dC = dLoss · 1/(3·rays kept);
//   dL/dcᵢ = Tᵢαᵢ·dL/dC, dL/dσᵢ = δᵢ·(Tᵢ₊₁cᵢ − (C − Σⱼ≤ᵢ Tⱼαⱼcⱼ))·dL/dC, for the used samples only.
// Rays left out by the sample budget (r ≥ totals[1]) report zeros and use no samples. The gradients are
// written at the samples' own indices (before compaction); samples past a ray's termination are not
// written (train_compact_samples keeps only the used ones), unless keepAll (`compactBackward` off:
// every marched sample is back-propagated, those past the termination with zero gradients).
//
// Bindings (set 0), all storage buffers:
//   0  rays           vec4[4·rayCount], read (target = rays[4r + 2].xyz, background = rays[4r + 3].xyz)
//   1  rayRanges      uvec2[rayCount], read (first sample, count)
//   2  totals         uint[4], read (totals[1] = rays kept)
//   3  rgb            float[3·samples], read
//   4  sigma          float[samples], read
//   5  dt             float[samples], read (world units)
//   6  rgbGradient    float[3·samples], write
//   7  sigmaGradient  float[samples], write
//   8  usedCounts     uint[rayCount], write (samples composited before termination; all of the
//                    ray's samples when keepAll)
//   9  reports        vec4[rayCount], write (mean loss over channels, mean squared error, used, kept 1/0)
// Push constants: uint rayCount, huber (1: Huber, 0: L2), keepAll; float threshold, huberDelta.
// Specialization constants: 0 LOCAL_SIZE = 64.
// One invocation per ray.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "nerf_training.glsl"

layout(set = 0, binding = 0) readonly buffer Rays { vec4 rays[]; };
layout(set = 0, binding = 1) readonly buffer RayRanges { uvec2 rayRanges[]; };
layout(set = 0, binding = 2) readonly buffer Totals { uint totals[]; };
layout(set = 0, binding = 3) readonly buffer Rgb { float rgb[]; };
layout(set = 0, binding = 4) readonly buffer Sigma { float sigma[]; };
layout(set = 0, binding = 5) readonly buffer Dt { float dt[]; };
layout(set = 0, binding = 6) writeonly buffer RgbGradient { float rgbGradient[]; };
layout(set = 0, binding = 7) writeonly buffer SigmaGradient { float sigmaGradient[]; };
layout(set = 0, binding = 8) writeonly buffer UsedCounts { uint usedCounts[]; };
layout(set = 0, binding = 9) writeonly buffer Reports { vec4 reports[]; };
layout(push_constant) uniform Params {
    uint rayCount;
    uint huber;
    uint keepAll;
    float threshold;
    float huberDelta;
};

vec3 sampleColour(uint s) { return vec3(rgb[3u * s], rgb[3u * s + 1u], rgb[3u * s + 2u]); }

void main() {
    uint r = trainingInvocation();
    if (r >= rayCount) return;
    uint kept = totals[1];
    if (r >= kept) {
        usedCounts[r] = 0u;
        reports[r] = vec4(0.0);
        return;
    }
    uint first = rayRanges[r].x, n = rayRanges[r].y;
    vec3 target = rays[4u * r + 2u].xyz, background = rays[4u * r + 3u].xyz;
    precise vec3 gathered = vec3(0.0);
    precise float t = 1.0;
    uint used = 0u;
    for (uint i = 0u; i < n; i++) {
        if (t < threshold) break;
        uint s = first + i;
        precise float alpha = 1.0 - exp(-sigma[s] * dt[s]);
        precise float weight = t * alpha;
        gathered += weight * sampleColour(s);
        t *= 1.0 - alpha;
        used = i + 1u;
    }
    precise vec3 colour = gathered + t * background;
    precise float lossScale = 1.0 / float(3u * kept);
    precise vec3 colourGradient;
    precise float loss = 0.0, squared = 0.0;
    for (int c = 0; c < 3; c++) {
        precise float d = colour[c] - target[c];
        precise float l, g;
        if (huber == 0u) {
            l = d * d; g = 2.0 * d;
        } else if (abs(d) > huberDelta) {
            l = (abs(d) - 0.5 * huberDelta) / 5.0; g = (d > 0.0 ? 1.0 : -1.0) / 5.0;
        } else {
            l = 0.5 / huberDelta * d * d / 5.0; g = d / huberDelta / 5.0;
        }
        loss += l;
        colourGradient[c] = g * lossScale;
        squared += d * d;
    }
    usedCounts[r] = keepAll != 0u ? n : used;
    reports[r] = vec4(loss / 3.0, squared / 3.0, float(used), 1.0);
    // The backward pass walks the used samples again, gathering the colour in front of each.
    precise float tb = 1.0;
    precise vec3 front = vec3(0.0);
    for (uint i = 0u; i < used; i++) {
        uint s = first + i;
        precise float alpha = 1.0 - exp(-sigma[s] * dt[s]);
        precise float weight = tb * alpha;
        vec3 c = sampleColour(s);
        front += weight * c;
        tb *= 1.0 - alpha;
        precise vec3 g = weight * colourGradient;
        rgbGradient[3u * s] = g.x; rgbGradient[3u * s + 1u] = g.y; rgbGradient[3u * s + 2u] = g.z;
        precise vec3 behind = tb * c - (colour - front);
        sigmaGradient[s] = dt[s] * dot(behind * colourGradient, vec3(1.0));
    }
    if (keepAll != 0u) {
        for (uint i = used; i < n; i++) {
            uint s = first + i;
            rgbGradient[3u * s] = 0.0; rgbGradient[3u * s + 1u] = 0.0; rgbGradient[3u * s + 2u] = 0.0;
            sigmaGradient[s] = 0.0;
        }
    }
}
