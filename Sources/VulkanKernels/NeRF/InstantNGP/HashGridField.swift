import Glibc
import Synchronization

/// instant-ngp's NeRF network as a ``RadianceField``: hash encoding → density MLP → (with SH of the view
/// direction) colour MLP. Weights and grid tables are fp16 (as instant-ngp stores them); all arithmetic
/// is fp32.
///
/// A world position p inside `bounds` enters the encoding as x = (p − lower) / size ∈ [0, 1]³ (instant-ngp's
/// `warp_position`); outside `bounds` the field is empty (all four outputs 0). σ = exp(density output 0),
/// RGB = sigmoid(colour outputs 0…2).
public final class HashGridField: RadianceField, @unchecked Sendable {
    public let name: String
    public let bounds: AABB
    public let configuration: HashGridConfiguration
    /// The flat fp16 parameter array in instant-ngp's layout (see ``HashGridConfiguration``).
    public let parameters: [Float16]
    /// The snapshot's occupancy estimate, when the field came from (or is written to) a snapshot.
    public var densityGrid: NGPDensityGrid?

    let geometry: [HashGridConfiguration.Level]
    /// Parameters widened to fp32 once, for the CPU evaluator.
    let weights: [Float]
    let gpuCache = Mutex<HashGridGPUResources?>(nil)

    /// Throws when the configuration is unsupported, `parameters` has the wrong length or holds a
    /// non-finite value, or `bounds` is empty.
    public init(name: String = "hashgrid", configuration: HashGridConfiguration, parameters: [Float16],
                bounds: AABB = AABB(lower: SIMD3(repeating: 0), upper: SIMD3(repeating: 1)),
                densityGrid: NGPDensityGrid? = nil) throws {
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
        geometry = configuration.levelGeometry
        weights = parameters.map { Float($0) }
    }

    // MARK: CPU evaluation

    public func evaluate(samples: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>, count: Int) {
        precondition(samples.count >= 8 * count && output.count >= 4 * count, "hashgrid: sample or output buffer too small")
        let shared = UncheckedSendable((samples, output))
        let cost = configuration.densityParameterCount + configuration.colorParameterCount + configuration.levels * 64
        CPUParallel.forEachChunk(count, costPerItem: cost) { range in
            let (samples, output) = shared.value
            var scratch = Scratch(configuration)
            for i in range {
                let s = samples.baseAddress! + 8 * i
                let result = evaluateOne(position: SIMD3(s[0], s[1], s[2]), direction: SIMD3(s[4], s[5], s[6]), &scratch)
                output[4 * i] = result.x; output[4 * i + 1] = result.y; output[4 * i + 2] = result.z; output[4 * i + 3] = result.w
            }
        }
    }

    /// The hash encoding of world position `p` (L·F values, level-major), for tests.
    public func encoding(at p: SIMD3<Float>) -> [Float] {
        var scratch = Scratch(configuration)
        encode(unit: (p - bounds.lower) / bounds.size, into: &scratch.encoded)
        return Array(scratch.encoded[0..<(configuration.levels * configuration.featuresPerLevel)])
    }

    struct Scratch {
        var encoded: [Float]
        var a: [Float]
        var b: [Float]
        init(_ c: HashGridConfiguration) {
            encoded = [Float](repeating: 0, count: c.encodingWidth)
            let width = max(c.densityWidth, c.colorWidth, c.colorInputWidth)
            a = [Float](repeating: 0, count: width)
            b = [Float](repeating: 0, count: width)
        }
    }

    /// (r, g, b, σ) at one sample.
    func evaluateOne(position: SIMD3<Float>, direction: SIMD3<Float>, _ scratch: inout Scratch) -> SIMD4<Float> {
        let unit = (position - bounds.lower) / bounds.size
        guard unit.x >= 0, unit.y >= 0, unit.z >= 0, unit.x <= 1, unit.y <= 1, unit.z <= 1 else { return .zero }
        let c = configuration
        encode(unit: unit, into: &scratch.encoded)
        // Density MLP: encoded → a (hidden) … → b[0..<16].
        var offset = 0
        let densityLayers = c.densityLayers
        for (index, layer) in densityLayers.enumerated() {
            let last = index == densityLayers.count - 1
            let input = index == 0 ? scratch.encoded : scratch.a
            matrixVector(offset, layer.outputs, layer.inputs, input, into: &scratch.b, relu: !last)
            if !last { swap(&scratch.a, &scratch.b) }
            offset += layer.outputs * layer.inputs
        }
        let sigma = expf(scratch.b[0])
        // Colour MLP input: the 16 density outputs, then SH(direction).
        var colorInput = [Float](repeating: 0, count: c.colorInputWidth)
        for j in 0..<16 { colorInput[j] = scratch.b[j] }
        sphericalHarmonicsDegree4(direction) { colorInput[16 + $0] = $1 }
        let colorLayers = c.colorLayers
        var input = colorInput
        for (index, layer) in colorLayers.enumerated() {
            let last = index == colorLayers.count - 1
            // The last layer: only its first 3 rows (RGB) are needed.
            matrixVector(offset, last ? 3 : layer.outputs, layer.inputs, input, into: &scratch.b, relu: !last)
            if !last { input = Array(scratch.b[0..<layer.outputs]) }
            offset += layer.outputs * layer.inputs
        }
        func sigmoid(_ v: Float) -> Float { 1 / (1 + expf(-v)) }
        return SIMD4(sigmoid(scratch.b[0]), sigmoid(scratch.b[1]), sigmoid(scratch.b[2]), sigma)
    }

    /// output[o] = Σ_i W[o][i]·input[i] for the row-major matrix at `offset` in the parameters.
    @inline(__always)
    private func matrixVector(_ offset: Int, _ outputs: Int, _ inputs: Int, _ input: [Float], into output: inout [Float], relu: Bool) {
        weights.withUnsafeBufferPointer { w in
            input.withUnsafeBufferPointer { x in
                for o in 0..<outputs {
                    let row = w.baseAddress! + offset + o * inputs
                    var sum: Float = 0
                    for i in 0..<inputs { sum += row[i] * x[i] }
                    output[o] = relu ? max(sum, 0) : sum
                }
            }
        }
    }

    /// Trilinear interpolation of each level's 8 surrounding vertex features (tiny-cuda-nn's grid encoding).
    private func encode(unit x: SIMD3<Float>, into out: inout [Float]) {
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
