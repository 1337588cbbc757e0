// Exclusive prefix sums over per-ray counts, shared by the training kernels that place each ray's
// samples (train_march_rays.comp: sample offsets under the step's budget; train_compact_samples.comp:
// offsets of the samples kept after early termination). train_ray_scan.comp first sums blocks of
// RAY_SCAN_BLOCK rays and scans the block sums; a ray's offset is then its block's offset plus the counts
// of the rays before it in its block (at most RAY_SCAN_BLOCK − 1 additions, in ray order, so the
// result is exact and the same on every device). The including shader declares `rayCounts` (uint per
// ray) and `blockOffsets` (uint per block).
#ifndef NERF_RAY_SCAN_GLSL
#define NERF_RAY_SCAN_GLSL

const uint RAY_SCAN_BLOCK = 64u;

uint rayOffset(uint ray) {
    uint block = ray / RAY_SCAN_BLOCK;
    uint offset = blockOffsets[block];
    for (uint r = block * RAY_SCAN_BLOCK; r < ray; r++) offset += rayCounts[r];
    return offset;
}

#endif
