import Glibc
import Synchronization

/// instant-ngp's NeRF network as a ``RadianceField``: hash encoding → density MLP → (with SH of the view
/// direction) colour MLP.
///
/// The colour activation is instant-ngp's for the capture: logistic for ordinary (LDR) images,
/// exp(clamp(x, −10, 10)) for HDR captures (its `ENerfActivation::Exponential`, chosen by the dataset's
/// `is_hdr`). Weights and grid tables are fp16 (as instant-ngp stores them); all arithmetic
/// is fp32.
///
/// A world position p inside `bounds` enters the encoding as x = (p − lower) / size ∈ [0, 1]³ (instant-ngp's
/// `warp_position`); outside `bounds` the field is empty (all four outputs 0). σ = exp(density output 0),
/// RGB = colorActivation(colour outputs 0…2).
public final class HashGridField: RadianceField, RadianceFieldKernel, @unchecked Sendable {
    public let name: String
    public let bounds: AABB
    public let configuration: HashGridConfiguration
    /// The flat fp16 parameter array in instant-ngp's layout (see ``HashGridConfiguration``).
    public let parameters: [Float16]
    /// The snapshot's occupancy estimate, when the field came from (or is written to) a snapshot.
    public var densityGrid: NGPDensityGrid?
    /// How colour outputs 0…2 become RGB.
    public let colorActivation: ColorActivation

    /// instant-ngp's RGB activations (`ENerfActivation`).
    public enum ColorActivation: String, Sendable, Equatable {
        /// 1 / (1 + e^−x), for LDR captures.
        case logistic
        /// e^clamp(x, −10, 10), for HDR captures (`is_hdr`).
        case exponential
    }

    let geometry: [HashGridConfiguration.Level]
    /// Parameters widened to fp32 once, for the CPU evaluator.
    let weights: [Float]
    /// The CPU evaluator's network: the fused training kernels over ``weights`` (the array is shared, not copied).
    let fusedNetwork: HashGridNetwork

    /// Throws when the configuration is unsupported, `parameters` has the wrong length or holds a
    /// non-finite value, or `bounds` is empty.
    public init(name: String = "hashgrid", configuration: HashGridConfiguration, parameters: [Float16],
                bounds: AABB = AABB(lower: SIMD3(repeating: 0), upper: SIMD3(repeating: 1)),
                densityGrid: NGPDensityGrid? = nil, colorActivation: ColorActivation = .logistic) throws {
        try configuration.validate()
        guard parameters.count == configuration.parameterCount else {
            throw KernelError.invalidParameter(op: "hashgrid", name: "parameters.count",
                                               value: "\(parameters.count), expected \(configuration.parameterCount)")
        }
        if let bad = parameters.firstIndex(where: { !$0.isFinite }) {
            throw KernelError.invalidParameter(op: "hashgrid", name: "parameters[\(bad)]", value: "\(parameters[bad]) (not finite)")
        }
        let size = bounds.size
        guard size.x > 0, size.y > 0, size.z > 0, size.x.isFinite, size.y.isFinite, size.z.isFinite else {
            throw KernelError.invalidParameter(op: "hashgrid", name: "bounds", value: "\(bounds)")
        }
        self.name = name
        self.bounds = bounds
        self.configuration = configuration
        self.parameters = parameters
        self.densityGrid = densityGrid
        self.colorActivation = colorActivation
        geometry = configuration.levelGeometry
        weights = parameters.map { Float($0) }
        fusedNetwork = try HashGridNetwork(configuration: configuration, parameters: weights)
    }

    /// The hash encoding of world position `p` (L·F values, level-major), for tests.
    public func encoding(at p: SIMD3<Float>) -> [Float] {
        var encoded = [Float](repeating: 0, count: configuration.encodingWidth)
        encoded.withUnsafeMutableBufferPointer { encode(unit: (p - bounds.lower) / bounds.size, into: $0.baseAddress!) }
        return Array(encoded[0..<(configuration.levels * configuration.featuresPerLevel)])
    }

    /// Trilinear interpolation of each level's 8 surrounding vertex features (tiny-cuda-nn's grid encoding).
    func encode(unit x: SIMD3<Float>, into out: UnsafeMutablePointer<Float>) {
        let features = configuration.featuresPerLevel
        let gridOffset = configuration.gridParameterOffset
        weights.withUnsafeBufferPointer { w in
            for (l, level) in geometry.enumerated() {
                let position = x * level.scale + 0.5
                let cell = position.rounded(.down)
                let t = position - cell
                let base = SIMD3<UInt32>(UInt32(cell.x), UInt32(cell.y), UInt32(cell.z))
                for f in 0..<features { out[l * features + f] = 0 }
                for corner in 0..<8 {
                    let dx = UInt32(corner & 1), dy = UInt32((corner >> 1) & 1), dz = UInt32(corner >> 2)
                    let weight = (dx == 1 ? t.x : 1 - t.x) * (dy == 1 ? t.y : 1 - t.y) * (dz == 1 ? t.z : 1 - t.z)
                    let entry = Int(gridEntry(base.x + dx, base.y + dy, base.z + dz, level: level))
                    let p = w.baseAddress! + gridOffset + (level.tableOffset + entry) * features
                    for f in 0..<features { out[l * features + f] += weight * p[f] }
                }
            }
        }
    }
}

/// The 16 real spherical-harmonics basis functions of degree ≤ 3 ("degree 4" in tiny-cuda-nn's
/// terms) at unit direction d, in tiny-cuda-nn's order and sign convention (Condon–Shortley phase).
@inline(__always)
func sphericalHarmonicsDegree4(_ d: SIMD3<Float>, _ emit: (Int, Float) -> Void) {
    let x = d.x, y = d.y, z = d.z
    let xx = x * x, yy = y * y, zz = z * z
    emit(0, 0.28209479177387814)
    emit(1, -0.48860251190291987 * y)
    emit(2, 0.48860251190291987 * z)
    emit(3, -0.48860251190291987 * x)
    emit(4, 1.0925484305920792 * x * y)
    emit(5, -1.0925484305920792 * y * z)
    emit(6, 0.94617469575755997 * zz - 0.31539156525251999)
    emit(7, -1.0925484305920792 * x * z)
    emit(8, 0.54627421529603959 * (xx - yy))
    emit(9, 0.59004358992664352 * y * (yy - 3 * xx))
    emit(10, 2.8906114426405538 * x * y * z)
    emit(11, 0.45704579946446572 * y * (1 - 5 * zz))
    emit(12, 0.3731763325901154 * z * (5 * zz - 3))
    emit(13, 0.45704579946446572 * x * (1 - 5 * zz))
    emit(14, 1.4453057213202769 * z * (xx - yy))
    emit(15, 0.59004358992664352 * x * (3 * yy - xx))
}
