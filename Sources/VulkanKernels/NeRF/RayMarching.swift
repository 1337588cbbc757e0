/// The steps of the ray marcher shared by the CPU path and mirrored, line for line, by
/// Shaders/nerf/generate_rays.comp, march_rays.comp and composite_rays.comp.
struct RayState {
    var origin: SIMD3<Float>
    var direction: SIMD3<Float>
    /// Where marching resumes, and where the ray leaves the bounding box.
    var t: Float
    var tFar: Float
    var colour = SIMD3<Float>(repeating: 0)
    var transmittance: Float = 1
    var depthSum: Float = 0
    var samples: UInt32 = 0
}

/// The grid as the marcher reads it (bits, level offsets and the box), with the step rule.
struct MarchParameters {
    let grid: OccupancyGrid
    let useGrid: Bool
    let minimumStep: Float, maximumStep: Float, stepRatio: Float

    /// Ray `index` of the frame: pixel (index / spp) at sub-pixel offset (index % spp), clipped to the box.
    static func generateRay(index: Int, camera: Camera, samplesPerPixel: Int, bounds: AABB) -> RayState? {
        let pixel = index / samplesPerPixel
        let offset = RenderOptions.subpixelOffset(index % samplesPerPixel)
        let x = pixel % camera.width, y = pixel / camera.width
        let ray = camera.ray(u: Float(x) + offset.x, v: Float(y) + offset.y)
        guard let (near, far) = bounds.intersect(ray) else { return nil }
        return RayState(origin: ray.origin, direction: ray.direction, t: near, tFar: far)
    }

    /// Marches from `state.t` until `maxSteps` samples are placed or the ray leaves the box, skipping
    /// unoccupied cells at the coarsest empty level. Appends (t at the step's midpoint, step length).
    func march(_ state: inout RayState, maxSteps: Int, into steps: inout [(Float, Float)]) {
        let lower = grid.bounds.lower, size = grid.bounds.size
        let n0 = grid.settings.resolution
        let inverse = SIMD3<Float>(safeInverse(state.direction.x), safeInverse(state.direction.y), safeInverse(state.direction.z))
        let nudge = 1e-3 * size.min() / Float(n0)
        var t = state.t
        var placed = 0
        var iterations = 0
        while placed < maxSteps && t < state.tFar && iterations < 4096 {
            iterations += 1
            let position = state.origin + t * state.direction
            let cell = grid.cell(containing: position)
            if !useGrid || grid.isOccupied(level: 0, x: cell.x, y: cell.y, z: cell.z) {
                let dt = min(max(t * stepRatio, minimumStep), maximumStep)
                let clipped = min(dt, state.tFar - t)
                steps.append((t + 0.5 * clipped, clipped))
                placed += 1
                t += dt
            } else {
                var level = 0
                while level + 1 < grid.settings.levels {
                    let coarse = cell &>> (level + 1)
                    if grid.isOccupied(level: level + 1, x: coarse.x, y: coarse.y, z: coarse.z) { break }
                    level += 1
                }
                let cellSize = size / Float(n0 >> level)
                let cellLower = lower + SIMD3<Float>(cell &>> level) * cellSize
                let t0 = (cellLower - state.origin) * inverse
                let t1 = (cellLower + cellSize - state.origin) * inverse
                let exit = pointwiseMax(t0, t1).min()
                t = max(exit, t) + nudge
            }
        }
        state.t = t
    }

    /// Front-to-back compositing of evaluated samples; returns whether the ray is still alive.
    static func composite(_ state: inout RayState, steps: ArraySlice<(Float, Float)>, radiance: UnsafePointer<Float>,
                          threshold: Float) -> Bool {
        var index = 0
        for (t, dt) in steps {
            let r = radiance + 4 * index
            index += 1
            let alpha = 1 - expf(-r[3] * dt)
            let weight = state.transmittance * alpha
            state.colour += weight * SIMD3(r[0], r[1], r[2])
            state.depthSum += weight * t
            state.transmittance *= 1 - alpha
            if state.transmittance < threshold { break }
        }
        state.samples += UInt32(steps.count)
        return state.transmittance >= threshold && state.t < state.tFar
    }
}

@inline(__always) func safeInverse(_ v: Float) -> Float {
    abs(v) < 1e-9 ? (v < 0 ? -1e9 : 1e9) : 1 / v
}

import Glibc
