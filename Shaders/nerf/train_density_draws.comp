// train_density_draws: the cells and points of one density-grid update, drawn on the device
// (Shaders/common/nerf_grid_draws.glsl; the CPU path's TrainingDensityGrid.updateSamples makes the same
// draws): for draw d = drawBegin + k its cell (cascade·resolution³ + Morton index) and one jittered point
// in it, in the field's unit cube, the input of the density-only forward pass. A draw that has no cell
// (no occupied one among its tries), whose cell no camera sees (value < 0) or whose point lies outside
// the field's box gets cell GRID_NO_CELL: train_density_thickness skips it (the CPU path drops it; a
// point outside the box has thickness 0 there, which changes no cell). Its point is still written
// (finite), so the forward pass reads defined inputs.
// Points as TrainingDensityGrid computes them, operation for operation (`precise`: no fused
// multiply-adds), so that the box test agrees with the CPU's bit for bit:
//   local = (0.5 − side/2) + ((x, y, z) + jitter)·side / resolution, side = 2^cascade
//   world = unitLower + local·unitSize;  unit = (world − boxLower) / boxSize
//
// Bindings (set 0), all storage buffers:
//   0  occupancy  uint[cells/32], read: the bitfield (bit i & 31 of word i >> 5)
//   1  values     float[cells], read: the grid values (−1: unseen)
//   2  cells      uint[count], write
//   3  positions  float[3·count], write
// Push constants: uint drawBegin, count, seedLow, seedHigh, step, warmup (1: draw d is cell d), resolution,
//   cascades; float unitLowerX/Y/Z, unitSize, boxLowerX/Y/Z, boxSizeX/Y/Z.
// Specialization constants: 0 LOCAL_SIZE = 64.
// One invocation per draw.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "nerf_training.glsl"
#include "nerf_grid_draws.glsl"

layout(set = 0, binding = 0) readonly buffer Occupancy { uint occupancy[]; };
layout(set = 0, binding = 1) readonly buffer Values { float values[]; };
layout(set = 0, binding = 2) writeonly buffer Cells { uint cells[]; };
layout(set = 0, binding = 3) writeonly buffer Positions { float positions[]; };
layout(push_constant) uniform Params {
    uint drawBegin;
    uint count;
    uint seedLow;
    uint seedHigh;
    uint step;
    uint warmup;
    uint resolution;
    uint cascades;
    float unitLowerX, unitLowerY, unitLowerZ, unitSize;
    float boxLowerX, boxLowerY, boxLowerZ;
    float boxSizeX, boxSizeY, boxSizeZ;
};

uint compactBits(uint v) {
    v &= 0x09249249u;
    v = (v | (v >> 2)) & 0x030c30c3u;
    v = (v | (v >> 4)) & 0x0300f00fu;
    v = (v | (v >> 8)) & 0x030000ffu;
    v = (v | (v >> 16)) & 0x000003ffu;
    return v;
}

bool occupied(uint cell) { return (occupancy[cell >> 5] >> (cell & 31u) & 1u) != 0u; }

void main() {
    uint k = trainingInvocation();
    if (k >= count) return;
    uint d = drawBegin + k;
    uvec2 seed = uvec2(seedLow, seedHigh);
    uint perCascade = resolution * resolution * resolution;
    uint cell;
    if (warmup != 0u) {
        cell = d;
    } else {
        uint uniformDraws = perCascade / 4u;
        uint cascade = d / (2u * uniformDraws), j = d % (2u * uniformDraws);
        if (j < uniformDraws) {
            cell = cascade * perCascade + gridDrawHash(seed, step, d, 0u) % perCascade;
        } else {
            cell = GRID_NO_CELL;
            for (uint t = 0u; t < GRID_DRAW_TRIES; t++) {
                uint candidate = cascade * perCascade + gridDrawHash(seed, step, d, t) % perCascade;
                if (occupied(candidate)) { cell = candidate; break; }
            }
        }
    }
    // The point (in the cascade's cell; cell 0's when there is none).
    uint c = cell == GRID_NO_CELL ? 0u : cell;
    uint cascade = c / perCascade, morton = c % perCascade;
    vec3 jitter = vec3(gridDrawUnit(seed, step, d, GRID_JITTER_PURPOSE), gridDrawUnit(seed, step, d, GRID_JITTER_PURPOSE + 1u),
                       gridDrawUnit(seed, step, d, GRID_JITTER_PURPOSE + 2u));
    float side = float(1u << cascade);
    precise vec3 local = vec3(0.5 - side / 2.0)
        + (vec3(float(compactBits(morton)), float(compactBits(morton >> 1)), float(compactBits(morton >> 2))) + jitter) * side / float(resolution);
    precise vec3 world = vec3(unitLowerX, unitLowerY, unitLowerZ) + local * unitSize;
    precise vec3 unit = (world - vec3(boxLowerX, boxLowerY, boxLowerZ)) / vec3(boxSizeX, boxSizeY, boxSizeZ);
    bool inside = all(greaterThanEqual(unit, vec3(0.0))) && all(lessThanEqual(unit, vec3(1.0)));
    if (cell != GRID_NO_CELL && (values[cell] < 0.0 || !inside)) cell = GRID_NO_CELL;
    cells[k] = cell;
    positions[3u * k] = unit.x;
    positions[3u * k + 1u] = unit.y;
    positions[3u * k + 2u] = unit.z;
}
