import CVulkan
import Glibc

/// One primitive of an ``AnalyticField``: a sphere-centred density profile with a colour rule.
///
/// Every profile has compact support (density exactly 0 beyond a known radius), so empty-space skipping
/// loses nothing, and is smooth, so a brute-force integrator converges quickly.
public struct AnalyticPrimitive: Sendable, Equatable {
    public enum Kind: Int, Sendable {
        /// σ = σmax·(1 − x²)² for |x| < 1, x = (r − radius)/thickness: a hollow shell of width 2·thickness.
        case shell = 0
        /// σ = σmax·(1 − r²/radius²)³ inside the radius: a soft blob (cloud puff).
        case blob = 1
        /// σ = σmax·smoothstep over [radius − thickness/2, radius + thickness/2] (solid inside).
        case solid = 2
    }

    public var kind: Kind
    public var center: SIMD3<Float>
    public var radius: Float
    public var thickness: Float
    public var maxDensity: Float
    /// Base colour, modulated by stripes: base·(1 − amount + amount·(½ + ½·sin(frequency·s))),
    /// s = (p − center)·(1, 0.7, 0.4).
    public var colour: SIMD3<Float>
    public var stripeAmount: Float
    public var stripeFrequency: Float
    /// View-dependent highlight added to the colour: specular·max(0, reflect(d, n)·light)^shininess.
    public var specular: Float
    public var shininess: Float

    public init(kind: Kind, center: SIMD3<Float>, radius: Float, thickness: Float = 0, maxDensity: Float,
                colour: SIMD3<Float>, stripeAmount: Float = 0, stripeFrequency: Float = 0, specular: Float = 0, shininess: Float = 1) {
        self.kind = kind; self.center = center; self.radius = radius; self.thickness = thickness
        self.maxDensity = maxDensity; self.colour = colour; self.stripeAmount = stripeAmount
        self.stripeFrequency = stripeFrequency; self.specular = specular; self.shininess = shininess
    }

    /// Distance from the centre beyond which the density is 0.
    public var supportRadius: Float {
        switch kind {
        case .shell: radius + thickness
        case .blob: radius
        case .solid: radius + thickness / 2
        }
    }

    /// The 16 floats the shader reads (Shaders/nerf/analytic_field.comp).
    var packed: [Float] {
        [center.x, center.y, center.z, radius,
         thickness, maxDensity, Float(kind.rawValue), stripeFrequency,
         colour.x, colour.y, colour.z, stripeAmount,
         specular, shininess, 0, 0]
    }
}

/// A procedural radiance field made of a few ``AnalyticPrimitive``s, evaluated exactly on the CPU
/// (float32, and float64 for reference renders) and on Vulkan (Shaders/nerf/analytic_field.comp).
///
/// Density is the sum of the primitives' densities. Colour is their mix weighted by
/// wᵢ = σᵢ + 10⁻³/(1 + 100·gᵢ²) (gᵢ: distance outside primitive i's support), so it is defined, and
/// smooth, also where the density vanishes (which keeps baked voxel grids free of dark fringes).
public final class AnalyticField: RadianceField, RadianceFieldKernel, @unchecked Sendable {
    public let name: String
    public let bounds: AABB
    public let primitives: [AnalyticPrimitive]
    /// Direction of the light that makes the view-dependent highlights.
    public static let lightDirection = SIMD3<Double>(0.4, 0.5, 0.75) / (0.4 * 0.4 + 0.5 * 0.5 + 0.75 * 0.75).squareRoot()

    /// The primitives as scalar float64 values (the CPU evaluators' form).
    private let table: [ScalarPrimitive]

    public init(name: String, bounds: AABB, primitives: [AnalyticPrimitive]) throws {
        guard !primitives.isEmpty else { throw KernelError.invalidParameter(op: "AnalyticField", name: "primitives", value: "empty") }
        for primitive in primitives {
            let values = primitive.packed
            guard values.allSatisfy(\.isFinite), primitive.radius > 0, primitive.maxDensity >= 0,
                  primitive.kind == .blob || primitive.thickness > 0 else {
                throw KernelError.invalidParameter(op: "AnalyticField", name: "primitive", value: "\(primitive)")
            }
        }
        self.name = name
        self.bounds = bounds
        self.primitives = primitives
        table = primitives.map(ScalarPrimitive.init)
    }

    // MARK: Exact evaluation (scalar float64: fast also in debug builds, where SIMD types are not)

    /// Density at (x, y, z), float64.
    public func density(x: Double, y: Double, z: Double) -> Double {
        var density = 0.0
        for p in table { density += p.density(x - p.cx, y - p.cy, z - p.cz) }
        return density
    }

    /// Colour and density at `position` seen along the unit `direction`, in float64.
    public func radiance(at position: SIMD3<Double>, direction: SIMD3<Double>) -> (colour: SIMD3<Double>, density: Double) {
        let (r, g, b, sigma) = radiance(position.x, position.y, position.z, direction.x, direction.y, direction.z)
        return (SIMD3(r, g, b), sigma)
    }

    /// (red, green, blue, density) at position (x, y, z) seen along the unit direction (dx, dy, dz).
    public func radiance(_ x: Double, _ y: Double, _ z: Double, _ dx: Double, _ dy: Double, _ dz: Double)
        -> (Double, Double, Double, Double) {
        let lx = Self.lightDirection.x, ly = Self.lightDirection.y, lz = Self.lightDirection.z
        var density = 0.0, total = 0.0, red = 0.0, green = 0.0, blue = 0.0
        for p in table {
            let ox = x - p.cx, oy = y - p.cy, oz = z - p.cz
            let r = (ox * ox + oy * oy + oz * oz).squareRoot()
            let sigma = p.density(ox, oy, oz)
            let stripe = 0.5 + 0.5 * sin(p.frequency * (ox + 0.7 * oy + 0.4 * oz))
            let shade = 1 - p.stripe + p.stripe * stripe
            var cr = p.red * shade, cg = p.green * shade, cb = p.blue * shade
            if p.specular > 0 && r > 1e-6 {
                let nx = ox / r, ny = oy / r, nz = oz / r
                let dn = dx * nx + dy * ny + dz * nz
                let highlight = max(0, (dx - 2 * dn * nx) * lx + (dy - 2 * dn * ny) * ly + (dz - 2 * dn * nz) * lz)
                let h = p.specular * pow(highlight, p.shininess)
                cr += h; cg += h; cb += h
            }
            let gap = max(0, r - p.support)
            let weight = sigma + 1e-3 / (1 + 100 * gap * gap)
            density += sigma
            red += weight * cr; green += weight * cg; blue += weight * cb
            total += weight
        }
        return (min(max(red / total, 0), 1), min(max(green / total, 0), 1), min(max(blue / total, 0), 1), density)
    }

    /// CPU evaluation (float64 arithmetic, rounded to float32: within a few ulps of the shader's fp32).
    public func evaluate(samples: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>, count: Int) {
        let shared = UncheckedSendable((samples, output))
        CPUParallel.forEachChunk(count, costPerItem: 60 * primitives.count) { range in
            let (samples, output) = shared.value
            for i in range {
                let s = 8 * i
                let (r, g, b, sigma) = radiance(Double(samples[s]), Double(samples[s + 1]), Double(samples[s + 2]),
                                                Double(samples[s + 4]), Double(samples[s + 5]), Double(samples[s + 6]))
                output[4 * i] = Float(r); output[4 * i + 1] = Float(g); output[4 * i + 2] = Float(b); output[4 * i + 3] = Float(sigma)
            }
        }
    }

    // MARK: Vulkan

    func encodeEvaluate(into batch: CommandBatch, samples: Tensor<Float>, sampleCount: Tensor<UInt32>, capacity: Int,
                        output: Tensor<Float>, on device: VulkanDevice) throws {
        let table = try primitiveTable(for: batch.context)
        try batch.dispatch(Kernel<Shader.nerf_analytic_field>(.base, specialization: [64]),
                           .init(samples: BufferBinding(samples.storage, .texel(VK_FORMAT_R32G32B32A32_SFLOAT, texelBytes: 16),
                                                        byteCount: capacity * 32),
                                 sampleCount: BufferBinding(sampleCount.storage, .storageRead),
                                 primitives: BufferBinding(table.storage, .texel(VK_FORMAT_R32G32B32A32_SFLOAT, texelBytes: 16)),
                                 output: BufferBinding(output.storage, .storageWrite, byteCount: capacity * 16)),
                           push: .init(capacity: UInt32(capacity), primitiveCount: UInt32(primitives.count)),
                           groups: ((capacity + 63) / 64, 1, 1))
    }

    /// The packed primitives on `context`'s device, uploaded once per context.
    private func primitiveTable(for context: ComputeContext) throws -> Tensor<Float> {
        try context.resident.value(for: self) {
            ResidentPrimitiveTable(table: try context.residentTensor(primitives.flatMap(\.packed), shape: [primitives.count, 16]))
        }.table
    }
}

/// An ``AnalyticPrimitive`` unpacked into float64 scalars.
struct ScalarPrimitive {
    let kind: AnalyticPrimitive.Kind
    let cx, cy, cz, radius, thickness, sigmaMax, support: Double
    let red, green, blue, stripe, frequency, specular, shininess: Double

    init(_ p: AnalyticPrimitive) {
        kind = p.kind
        cx = Double(p.center.x); cy = Double(p.center.y); cz = Double(p.center.z)
        radius = Double(p.radius); thickness = Double(p.thickness); sigmaMax = Double(p.maxDensity); support = Double(p.supportRadius)
        red = Double(p.colour.x); green = Double(p.colour.y); blue = Double(p.colour.z)
        stripe = Double(p.stripeAmount); frequency = Double(p.stripeFrequency); specular = Double(p.specular); shininess = Double(p.shininess)
    }

    /// Density at offset (x, y, z) from the centre.
    @inline(__always) func density(_ x: Double, _ y: Double, _ z: Double) -> Double {
        let r2 = x * x + y * y + z * z
        if r2 >= support * support { return 0 }
        switch kind {
        case .shell:
            let u = (r2.squareRoot() - radius) / thickness
            let v = 1 - u * u
            return v > 0 ? sigmaMax * v * v : 0
        case .blob:
            let v = 1 - r2 / (radius * radius)
            return sigmaMax * v * v * v
        case .solid:
            let s = min(max((radius - r2.squareRoot()) / thickness + 0.5, 0), 1)
            return sigmaMax * s * s * (3 - 2 * s)
        }
    }
}

/// An analytic field's packed primitives on one context.
struct ResidentPrimitiveTable: Sendable {
    let table: Tensor<Float>
}
