import CVulkan
import Glibc

/// A dense voxel grid radiance field in the style of Plenoxels (Fridovich-Keil et al. 2022): every
/// vertex of an n×n×n lattice spanning `bounds` stores a density and degree-2 spherical-harmonic
/// coefficients per colour channel (28 floats); both are interpolated trilinearly, then
/// σ = max(0, σ̃) and colour = clamp(Σₖ cₖ·Yₖ(d), 0, 1) (real SH basis, the constants of
/// Sloan's "Stupid SH tricks", as in Plenoxels and instant-ngp). Outside `bounds` the density is 0.
///
/// Vertex (x, y, z) is element x + n·(y + n·z); its 28 floats are σ, then the 9 coefficients of red,
/// of green, of blue.
public final class VoxelGridField: RadianceField, RadianceFieldKernel, @unchecked Sendable {
    public static let floatsPerVertex = 28
    public let name: String
    public let bounds: AABB
    /// Vertices per axis.
    public let resolution: Int
    public let values: [Float]

    public init(name: String = "voxels", bounds: AABB, resolution: Int, values: [Float]) throws {
        let op = "VoxelGridField"
        guard (2...512).contains(resolution) else { throw KernelError.invalidParameter(op: op, name: "resolution", value: "\(resolution) (2...512)") }
        guard values.count == resolution * resolution * resolution * Self.floatsPerVertex else {
            throw KernelError.invalidShape(op: op, operand: "values", shape: [values.count],
                                           expected: "[\(resolution)³ × \(Self.floatsPerVertex)]")
        }
        guard values.allSatisfy(\.isFinite) else { throw KernelError.invalidParameter(op: op, name: "values", value: "non-finite") }
        guard bounds.size.min() > 0, bounds.size.x.isFinite, bounds.size.y.isFinite, bounds.size.z.isFinite else {
            throw KernelError.invalidParameter(op: op, name: "bounds", value: "\(bounds)")
        }
        self.name = name; self.bounds = bounds; self.resolution = resolution; self.values = values
    }

    /// The degree-2 real SH basis at unit direction d.
    static func shBasis(_ x: Float, _ y: Float, _ z: Float) -> [Float] {
        [0.28209479177387814, -0.48860251190291987 * y, 0.48860251190291987 * z, -0.48860251190291987 * x,
         1.0925484305920792 * x * y, -1.0925484305920792 * y * z, 0.31539156525252005 * (3 * z * z - 1),
         -1.0925484305920792 * x * z, 0.5462742152960396 * (x * x - y * y)]
    }

    // MARK: CPU

    public func evaluate(samples: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>, count: Int) {
        let shared = UncheckedSendable((samples, output))
        CPUParallel.forEachChunk(count, costPerItem: 400) { range in
            let (samples, output) = shared.value
            var interpolated = [Float](repeating: 0, count: Self.floatsPerVertex)
            for i in range {
                let s = 8 * i
                evaluateOne(samples[s], samples[s + 1], samples[s + 2], samples[s + 4], samples[s + 5], samples[s + 6],
                            scratch: &interpolated, output: output.baseAddress! + 4 * i)
            }
        }
    }

    private func evaluateOne(_ px: Float, _ py: Float, _ pz: Float, _ dx: Float, _ dy: Float, _ dz: Float,
                             scratch v: inout [Float], output: UnsafeMutablePointer<Float>) {
        let n = resolution
        let scale = Float(n - 1)
        let ux = (px - bounds.lower.x) / bounds.size.x * scale, uy = (py - bounds.lower.y) / bounds.size.y * scale
        let uz = (pz - bounds.lower.z) / bounds.size.z * scale
        guard ux >= 0, uy >= 0, uz >= 0, ux <= scale, uy <= scale, uz <= scale else {
            output[0] = 0; output[1] = 0; output[2] = 0; output[3] = 0
            return
        }
        let ix = min(Int(ux), n - 2), iy = min(Int(uy), n - 2), iz = min(Int(uz), n - 2)
        let fx = ux - Float(ix), fy = uy - Float(iy), fz = uz - Float(iz)
        for k in 0..<Self.floatsPerVertex { v[k] = 0 }
        for corner in 0..<8 {
            let cx = corner & 1, cy = (corner >> 1) & 1, cz = corner >> 2
            let w = (cx == 1 ? fx : 1 - fx) * (cy == 1 ? fy : 1 - fy) * (cz == 1 ? fz : 1 - fz)
            let base = Self.floatsPerVertex * ((ix + cx) + n * ((iy + cy) + n * (iz + cz)))
            for k in 0..<Self.floatsPerVertex { v[k] += w * values[base + k] }
        }
        let basis = Self.shBasis(dx, dy, dz)
        for channel in 0..<3 {
            var c: Float = 0
            for k in 0..<9 { c += v[1 + 9 * channel + k] * basis[k] }
            output[channel] = min(max(c, 0), 1)
        }
        output[3] = max(v[0], 0)
    }

    // MARK: Vulkan

    func encodeEvaluate(into batch: CommandBatch, samples: Tensor<Float>, sampleCount: Tensor<UInt32>, capacity: Int,
                        output: Tensor<Float>, on device: VulkanDevice) throws {
        let grid = try deviceValues(for: batch.context)
        let (lower, upper) = (bounds.lower, bounds.upper)
        try batch.dispatch(Kernel<Shader.nerf_voxel_field>(.base, specialization: [64]),
                           .init(samples: BufferBinding(samples.storage, .texel(VK_FORMAT_R32G32B32A32_SFLOAT, texelBytes: 16), byteCount: capacity * 32),
                                 sampleCount: BufferBinding(sampleCount.storage, .storageRead),
                                 grid: BufferBinding(grid.storage, .texel(VK_FORMAT_R32G32B32A32_SFLOAT, texelBytes: 16)),
                                 output: BufferBinding(output.storage, .storageWrite, byteCount: capacity * 16)),
                           push: .init(capacity: UInt32(capacity), n: UInt32(resolution), lx: lower.x, ly: lower.y, lz: lower.z,
                                       ux: upper.x, uy: upper.y, uz: upper.z),
                           groups: ((capacity + 63) / 64, 1, 1))
    }

    /// The vertex values on `context`'s device, uploaded once per context (its ``ResidentCache``).
    private func deviceValues(for context: ComputeContext) throws -> Tensor<Float> {
        try context.resident.value(for: self) {
            let texels = values.count / 4
            if let limit = context.deviceInfo?.maxTexelBufferElements, texels > limit {
                throw KernelError.exceedsDeviceLimit(op: "VoxelGridField", what: "texels", value: texels, limit: limit)
            }
            return ResidentVoxelGrid(values: try context.residentTensor(values, shape: [values.count]))
        }.values
    }

    // MARK: Baking

    /// Bakes any field into a grid of `resolution`³ vertices over its bounds, evaluating it on
    /// `context`'s backend: the density at each vertex, and SH coefficients fitted by least squares to
    /// its colour seen from `directions` directions spread evenly over the sphere (Fibonacci lattice).
    public static func bake(_ field: RadianceField, resolution: Int, directions: Int = 32, on context: ComputeContext) throws -> VoxelGridField {
        guard (2...256).contains(resolution), (9...256).contains(directions) else {
            throw KernelError.invalidParameter(op: "VoxelGridField.bake", name: "resolution/directions", value: "\(resolution)/\(directions)")
        }
        let views = fibonacciSphere(directions)
        let fit = leastSquaresSH(views)
        let n = resolution, bounds = field.bounds
        let spacing = bounds.size / Float(n - 1)
        var values = [Float](repeating: 0, count: n * n * n * floatsPerVertex)
        let vertices = n * n * n
        let perChunk = max(1, (1 << 19) / directions)
        var start = 0
        while start < vertices {
            let end = min(vertices, start + perChunk)
            var samples = [Float](repeating: 0, count: 8 * (end - start) * directions)
            for vertex in start..<end {
                let x = vertex % n, y = (vertex / n) % n, z = vertex / (n * n)
                let p = bounds.lower + spacing * SIMD3(Float(x), Float(y), Float(z))
                for (j, d) in views.enumerated() {
                    let s = 8 * ((vertex - start) * directions + j)
                    samples[s] = p.x; samples[s + 1] = p.y; samples[s + 2] = p.z
                    samples[s + 4] = d.x; samples[s + 5] = d.y; samples[s + 6] = d.z
                }
            }
            let output = try field.evaluate(samples: samples, on: context)
            for vertex in start..<end {
                let base = vertex * floatsPerVertex, first = (vertex - start) * directions
                var density: Float = 0
                for j in 0..<directions { density += output[4 * (first + j) + 3] }
                values[base] = density / Float(directions)
                for channel in 0..<3 {
                    for k in 0..<9 {
                        var c: Float = 0
                        for j in 0..<directions { c += fit[k * directions + j] * output[4 * (first + j) + channel] }
                        values[base + 1 + 9 * channel + k] = c
                    }
                }
            }
            start = end
        }
        return try VoxelGridField(name: field.name + "-voxels", bounds: bounds, resolution: n, values: values)
    }

    static func fibonacciSphere(_ count: Int) -> [SIMD3<Float>] {
        let golden = Double.pi * (3 - 5.0.squareRoot())
        return (0..<count).map { i in
            let z = 1 - (2 * Double(i) + 1) / Double(count)
            let r = (1 - z * z).squareRoot(), phi = golden * Double(i)
            return SIMD3(Float(r * cos(phi)), Float(r * sin(phi)), Float(z))
        }
    }

    /// The 9×D matrix (YᵀY)⁻¹Yᵀ (row-major) that maps D colour samples to 9 SH coefficients, in float64.
    static func leastSquaresSH(_ views: [SIMD3<Float>]) -> [Float] {
        let d = views.count
        let y = views.map { shBasis($0.x, $0.y, $0.z).map(Double.init) }
        // Normal matrix augmented with Yᵀ, reduced by Gauss–Jordan with partial pivoting.
        var m = [[Double]](repeating: [Double](repeating: 0, count: 9 + d), count: 9)
        for a in 0..<9 {
            for b in 0..<9 { m[a][b] = (0..<d).reduce(0) { $0 + y[$1][a] * y[$1][b] } }
            for j in 0..<d { m[a][9 + j] = y[j][a] }
        }
        for column in 0..<9 {
            let pivot = (column..<9).max { abs(m[$0][column]) < abs(m[$1][column]) }!
            m.swapAt(column, pivot)
            let scale = 1 / m[column][column]
            for k in 0..<(9 + d) { m[column][k] *= scale }
            for row in 0..<9 where row != column {
                let factor = m[row][column]
                if factor != 0 { for k in 0..<(9 + d) { m[row][k] -= factor * m[column][k] } }
            }
        }
        return (0..<9).flatMap { k in (0..<d).map { Float(m[k][9 + $0]) } }
    }
}

/// A voxel grid's vertex values on one context.
struct ResidentVoxelGrid: Sendable {
    let values: Tensor<Float>
}
