import CKernels
import Glibc

/// instant-ngp's NeRF network in fp32 for training on the CPU: the multiresolution hash encoding, the
/// density MLP, the degree-4 SH direction encoding and the colour MLP, with a forward pass that keeps what
/// the backward pass needs and a backward pass that produces the gradient of every parameter.
///
/// Parameters are one flat fp32 array in instant-ngp's layout (``HashGridConfiguration``: density-MLP
/// layers, colour-MLP layers, grid tables), the master copy an optimizer updates; ``makeField(name:bounds:)``
/// rounds it to the fp16 ``HashGridField`` the renderers and snapshots use.
///
/// Activations are instant-ngp's: ReLU hidden layers, no output activation in the MLPs, σ = exp(density
/// output 0) with the derivative exp(clamp(x, −15, 15)) (instant-ngp's `network_to_density_derivative`),
/// RGB = logistic(colour outputs 0…2).
public struct HashGridNetwork: Sendable {
    public let configuration: HashGridConfiguration
    public var parameters: [Float]
    let geometry: [HashGridConfiguration.Level]
    /// The same levels as the C loops take them.
    let levels: [vkk_grid_level]

    public init(configuration: HashGridConfiguration, parameters: [Float]) throws {
        try configuration.validate()
        guard parameters.count == configuration.parameterCount else {
            throw KernelError.invalidParameter(op: "train", name: "parameters.count", value: "\(parameters.count), expected \(configuration.parameterCount)")
        }
        self.configuration = configuration
        self.parameters = parameters
        geometry = configuration.levelGeometry
        levels = geometry.map {
            vkk_grid_level(scale: $0.scale, resolution: UInt32($0.resolution), table_offset: UInt32($0.tableOffset),
                           table_size: UInt32($0.tableSize), dense: $0.isDense ? 1 : 0)
        }
    }

    /// tiny-cuda-nn's initialisation: MLP weights uniform in ±√(6 / (inputs + outputs)) (Xavier/Glorot,
    /// as its FullyFusedMLP initialises them), grid features uniform in ±10⁻⁴ (its grid encoding's
    /// initial range). Deterministic for a seed.
    public static func initialized(configuration: HashGridConfiguration, seed: UInt64) throws -> HashGridNetwork {
        try configuration.validate()
        var generator = SeededGenerator(seed: seed)
        var parameters = [Float](repeating: 0, count: configuration.parameterCount)
        var offset = 0
        for layer in configuration.densityLayers + configuration.colorLayers {
            let limit = (6 / Float(layer.inputs + layer.outputs)).squareRoot()
            for i in 0..<(layer.outputs * layer.inputs) { parameters[offset + i] = (generator.unitFloat() * 2 - 1) * limit }
            offset += layer.outputs * layer.inputs
        }
        for i in offset..<parameters.count { parameters[i] = (generator.unitFloat() * 2 - 1) * 1e-4 }
        return try HashGridNetwork(configuration: configuration, parameters: parameters)
    }

    /// The fp16 field (instant-ngp's inference copy) of the current parameters.
    public func makeField(name: String = "hashgrid", bounds: AABB, densityGrid: NGPDensityGrid? = nil) throws -> HashGridField {
        try HashGridField(name: name, configuration: configuration, parameters: parameters.map { Float16($0) }, bounds: bounds,
                          densityGrid: densityGrid)
    }

    /// Number of parameters in the MLPs (matrix weights, which get L2 regularisation), before the grid.
    public var matrixParameterCount: Int { configuration.gridParameterOffset }
}

/// What the forward pass of ``HashGridNetwork`` keeps for the backward pass, for `count` samples.
/// Buffers are reused across steps and grow as needed.
public final class HashGridActivations: @unchecked Sendable {
    public private(set) var count = 0
    /// Positions in the unit cube of the field's box (3 per sample) and unit directions (3 per sample).
    var positions: [Float] = []
    var directions: [Float] = []
    /// Encoding, count × encodingWidth (zero padded).
    var encoded: [Float] = []
    /// Outputs of each density hidden layer after ReLU, count × densityWidth each.
    var densityHidden: [[Float]] = []
    /// Colour-MLP input, count × 32: the 16 density outputs (linear), then SH(direction).
    var colorInput: [Float] = []
    /// Outputs of each colour hidden layer after ReLU, count × colorWidth each.
    var colorHidden: [[Float]] = []
    /// Colour logits, count × 3.
    var colorLogits: [Float] = []
    /// Results: RGB (count × 3) and σ (count).
    public internal(set) var rgb: [Float] = []
    public internal(set) var sigma: [Float] = []

    public init() {}

    func reserve(_ n: Int, _ c: HashGridConfiguration) {
        count = n
        func grow(_ array: inout [Float], _ size: Int) { if array.count < size { array = [Float](repeating: 0, count: size) } }
        grow(&positions, 3 * n); grow(&directions, 3 * n)
        grow(&encoded, n * c.encodingWidth)
        if densityHidden.count != c.densityHiddenLayers { densityHidden = Array(repeating: [], count: c.densityHiddenLayers) }
        for i in densityHidden.indices { grow(&densityHidden[i], n * c.densityWidth) }
        grow(&colorInput, n * c.colorInputWidth)
        if colorHidden.count != c.colorHiddenLayers { colorHidden = Array(repeating: [], count: c.colorHiddenLayers) }
        for i in colorHidden.indices { grow(&colorHidden[i], n * c.colorWidth) }
        grow(&colorLogits, 3 * n)
        grow(&rgb, 3 * n); grow(&sigma, n)
    }

    /// Sets the inputs: positions in the unit cube and unit directions, 3 floats each per sample.
    public func setInputs(positions p: UnsafePointer<Float>, directions d: UnsafePointer<Float>, count n: Int, configuration: HashGridConfiguration) {
        reserve(n, configuration)
        positions.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: p, count: 3 * n) }
        directions.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: d, count: 3 * n) }
    }

    /// Keeps, of each ray's run of samples (ray r's samples are rows [starts[r], starts[r] + counts) in
    /// every per-sample array), only the first `keep[r]`, packed in ray order, and returns the new count.
    /// The trainer calls this between compositing and the backward pass: samples past a ray's early
    /// termination have a zero gradient (instant-ngp compacts them away too), so the backward pass runs
    /// only on the samples that contribute. `extra` are further per-sample arrays of the same run layout
    /// (pointer, floats per sample), compacted alike (the RGB and σ gradients).
    /// Every array of the forward pass is compacted; the gradients of the backward pass are unchanged
    /// except for the order in which the GEMMs add up exact zeros.
    @discardableResult
    func compact(starts: [Int], keep: [Int], configuration c: HashGridConfiguration,
                 extra: [(UnsafeMutablePointer<Float>, Int)] = []) -> Int {
        precondition(starts.count == keep.count)
        var source = [Int64](repeating: 0, count: starts.count), target = source, kept = source
        var total = 0
        for r in starts.indices {
            precondition(keep[r] >= 0 && starts[r] >= total && (r + 1 == starts.count || starts[r] + keep[r] <= starts[r + 1]))
            source[r] = Int64(starts[r]); target[r] = Int64(total); kept[r] = Int64(keep[r])
            total += keep[r]
        }
        precondition(total <= count)
        var arrays: [(UnsafeMutablePointer<Float>, Int)] = extra
        func add(_ array: inout [Float], _ width: Int) { arrays.append((array.withUnsafeMutableBufferPointer { $0.baseAddress! }, width)) }
        add(&positions, 3); add(&directions, 3); add(&encoded, c.encodingWidth)
        for i in densityHidden.indices { add(&densityHidden[i], c.densityWidth) }
        add(&colorInput, c.colorInputWidth)
        for i in colorHidden.indices { add(&colorHidden[i], c.colorWidth) }
        add(&colorLogits, 3); add(&rgb, 3); add(&sigma, 1)
        let shared = UncheckedSendable((arrays, source, target, kept))
        // Arrays are independent: threads take whole arrays (each compaction is sequential, in place).
        CPUParallel.forEachChunk(arrays.count, costPerItem: 50_000) { range in
            let (arrays, source, target, kept) = shared.value
            for (pointer, width) in arrays[range] {
                vkk_compact_rows(pointer, Int64(width), source, target, kept, Int64(source.count))
            }
        }
        count = total
        return total
    }

    /// Inputs from arrays (tests).
    public func setInputs(positions p: [Float], directions d: [Float], configuration: HashGridConfiguration) {
        precondition(p.count == d.count && p.count % 3 == 0)
        setInputs(positions: p, directions: d, count: p.count / 3, configuration: configuration)
    }
}

/// Scratch buffers of the backward pass.
public final class HashGridBackwardScratch: @unchecked Sendable {
    var a: [Float] = [], b: [Float] = [], encodingGradient: [Float] = []
    public init() {}
    func reserve(_ n: Int, _ c: HashGridConfiguration) {
        let width = max(c.densityWidth, c.colorWidth, c.colorInputWidth, c.encodingWidth, 16)
        if a.count < n * width { a = [Float](repeating: 0, count: n * width); b = a }
        if encodingGradient.count < n * c.encodingWidth { encodingGradient = [Float](repeating: 0, count: n * c.encodingWidth) }
    }
}

extension HashGridNetwork {
    /// Forward pass over the samples set in `activations` (``HashGridActivations/setInputs``): fills RGB and
    /// σ and keeps every intermediate. `densityOnly` stops after σ (occupancy-grid updates).
    public func forward(_ activations: HashGridActivations, densityOnly: Bool = false) {
        let c = configuration
        let n = activations.count
        guard n > 0 else { return }
        parameters.withUnsafeBufferPointer { w in
            let w = w.baseAddress!
            // Encoding.
            let encodingWidth = c.encodingWidth
            let shared = UncheckedSendable((activations.positions.withUnsafeBufferPointer { $0.baseAddress! },
                                            activations.encoded.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                            levels.withUnsafeBufferPointer { $0.baseAddress! }))
            CPUParallel.forEachChunk(n, costPerItem: c.levels * 100) { range in
                let (positions, encoded, levels) = shared.value
                vkk_hashgrid_encode(positions, Int64(range.lowerBound), Int64(range.upperBound), levels, Int32(c.levels),
                                    Int32(c.featuresPerLevel), w + c.gridParameterOffset, encoded, Int32(encodingWidth))
            }
            // Density MLP.
            var offset = 0
            var input = activations.encoded.withUnsafeMutableBufferPointer { $0.baseAddress! }
            var inputWidth = encodingWidth
            for layer in 0..<c.densityHiddenLayers {
                Self.hiddenLayer(n, &input, &inputWidth, &offset, weights: w, width: c.densityWidth,
                                 output: activations.densityHidden[layer].withUnsafeMutableBufferPointer { $0.baseAddress! })
            }
            // Density outputs go straight into the first 16 columns of the colour input.
            let colorInput = activations.colorInput.withUnsafeMutableBufferPointer { $0.baseAddress! }
            Self.linear(n, inputs: inputWidth, outputs: HashGridConfiguration.densityOutputs, input, w + offset, colorInput, ldOutput: c.colorInputWidth)
            offset += HashGridConfiguration.densityOutputs * inputWidth
            let outputs = UncheckedSendable((colorInput, activations.sigma.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                             activations.directions.withUnsafeBufferPointer { $0.baseAddress! }))
            let inputStride = c.colorInputWidth
            CPUParallel.forEachChunk(n, costPerItem: 60) { range in
                let (colorInput, sigma, directions) = outputs.value
                vkk_density_head(colorInput, Int32(inputStride), Int64(range.lowerBound), Int64(range.upperBound), sigma,
                                 densityOnly ? nil : directions)
            }
            if densityOnly { return }
            // Colour MLP.
            input = colorInput
            inputWidth = c.colorInputWidth
            for layer in 0..<c.colorHiddenLayers {
                Self.hiddenLayer(n, &input, &inputWidth, &offset, weights: w, width: c.colorWidth,
                                 output: activations.colorHidden[layer].withUnsafeMutableBufferPointer { $0.baseAddress! })
            }
            // Only the first 3 of the last layer's 16 rows are RGB.
            let logits = activations.colorLogits.withUnsafeMutableBufferPointer { $0.baseAddress! }
            Self.linear(n, inputs: inputWidth, outputs: 3, input, w + offset, logits, ldOutput: 3)
            let colours = UncheckedSendable((logits, activations.rgb.withUnsafeMutableBufferPointer { $0.baseAddress! }))
            CPUParallel.forEachChunk(3 * n, costPerItem: 20) { range in
                let (logits, rgb) = colours.value
                vkk_logistic(logits + range.lowerBound, rgb + range.lowerBound, Int64(range.count))
            }
        }
    }

    /// Backward pass: given dL/dRGB (count × 3) and dL/dσ (count) of the samples of the last ``forward``,
    /// writes dL/dθ for every parameter into `gradients` (overwritten for the MLPs; the grid part must be
    /// zero on entry and receives the scattered sums — entries no sample touched stay exactly 0).
    /// Returns the seconds spent scattering into the hash tables (the rest is the MLPs' backward pass).
    @discardableResult
    public func backward(_ activations: HashGridActivations, rgbGradient: UnsafePointer<Float>, sigmaGradient: UnsafePointer<Float>,
                  gradients: UnsafeMutablePointer<Float>, scratch: HashGridBackwardScratch) -> Double {
        let c = configuration
        let n = activations.count
        scratch.reserve(max(n, 1), c)
        guard n > 0 else {
            gradients.initialize(repeating: 0, count: matrixParameterCount)
            return 0
        }
        return parameters.withUnsafeBufferPointer { w in
            let w = w.baseAddress!
            var a = scratch.a.withUnsafeMutableBufferPointer { $0.baseAddress! }
            var b = scratch.b.withUnsafeMutableBufferPointer { $0.baseAddress! }
            // Layer offsets in the flat array.
            var offsets: [Int] = []
            var offset = 0
            for layer in c.densityLayers + c.colorLayers { offsets.append(offset); offset += layer.outputs * layer.inputs }
            let colorBase = c.densityLayers.count

            // dL/dlogits = dL/dRGB · σ'(logit) = dRGB · rgb (1 − rgb), into a (count × 3).
            let rgb = activations.rgb.withUnsafeBufferPointer { $0.baseAddress! }
            let logitsGradient = UncheckedSendable((a, rgb, rgbGradient))
            CPUParallel.forEachChunk(3 * n, costPerItem: 10) { range in
                let (out, rgb, g) = logitsGradient.value
                vkk_logistic_backward(g + range.lowerBound, rgb + range.lowerBound, out + range.lowerBound, Int64(range.count))
            }
            // Colour MLP, last layer first. `a` holds dL/d(layer output), width `outputs`.
            var upstreamWidth = 3
            for layer in stride(from: c.colorHiddenLayers, through: 0, by: -1) {
                let shape = c.colorLayers[layer]
                let input = layer == 0 ? activations.colorInput.withUnsafeBufferPointer { $0.baseAddress! }
                                       : activations.colorHidden[layer - 1].withUnsafeBufferPointer { $0.baseAddress! }
                let weight = w + offsets[colorBase + layer], gradient = gradients + offsets[colorBase + layer]
                if layer == c.colorHiddenLayers {
                    // Rows 3…15 of the last layer are padding: their gradient is 0.
                    gradient.initialize(repeating: 0, count: shape.outputs * shape.inputs)
                }
                Self.weightGradient(n, outputs: upstreamWidth, inputs: shape.inputs, a, input, gradient)
                Self.inputGradient(n, outputs: upstreamWidth, inputs: shape.inputs, a, weight, b)
                if layer > 0 { Self.reluBackward(b, activations.colorHidden[layer - 1], n * shape.inputs) }
                swap(&a, &b)
                upstreamWidth = shape.inputs
            }
            // `a` = dL/d(colour input) (count × 32); its first 16 columns are dL/d(density outputs). Add σ's path
            // and compact to count × 16.
            let colorInput = activations.colorInput.withUnsafeBufferPointer { $0.baseAddress! }
            let densityOutputGradient = UncheckedSendable((a, b, colorInput, sigmaGradient))
            let inputStride = c.colorInputWidth
            CPUParallel.forEachChunk(n, costPerItem: 40) { range in
                let (full, out, colorInput, sigmaGradient) = densityOutputGradient.value
                vkk_density_head_backward(full, colorInput, Int32(inputStride), Int64(range.lowerBound), Int64(range.upperBound),
                                          sigmaGradient, out)
            }
            swap(&a, &b)
            upstreamWidth = HashGridConfiguration.densityOutputs
            // Density MLP, last layer first.
            for layer in stride(from: c.densityHiddenLayers, through: 0, by: -1) {
                let shape = c.densityLayers[layer]
                let input = layer == 0 ? activations.encoded.withUnsafeBufferPointer { $0.baseAddress! }
                                       : activations.densityHidden[layer - 1].withUnsafeBufferPointer { $0.baseAddress! }
                let weight = w + offsets[layer], gradient = gradients + offsets[layer]
                Self.weightGradient(n, outputs: upstreamWidth, inputs: shape.inputs, a, input, gradient)
                let target = layer == 0 ? scratch.encodingGradient.withUnsafeMutableBufferPointer { $0.baseAddress! } : b
                Self.inputGradient(n, outputs: upstreamWidth, inputs: shape.inputs, a, weight, target)
                if layer > 0 { Self.reluBackward(b, activations.densityHidden[layer - 1], n * shape.inputs); swap(&a, &b) }
                upstreamWidth = shape.inputs
            }
            // Hash encoding: scatter dL/d(encoding) into the tables.
            let scatterStart = monotonicSeconds()
            scatterEncodingGradient(activations, scratch.encodingGradient.withUnsafeBufferPointer { $0.baseAddress! },
                                    gradients + c.gridParameterOffset)
            return monotonicSeconds() - scatterStart
        }
    }

    // MARK: Hash encoding

    /// Adds Σ_samples weight · dL/d(encoding) into each touched table entry. Threads own whole levels
    /// (disjoint tables), and each walks the samples in order, so the sums are deterministic. Levels are
    /// dealt round-robin (thread t takes t, t + T, …): the fine, hashed levels miss the cache on nearly
    /// every entry and cost several times the coarse ones, so contiguous ranges of levels left one thread
    /// with all the expensive ones.
    func scatterEncodingGradient(_ activations: HashGridActivations, _ encodingGradient: UnsafePointer<Float>,
                                 _ gridGradient: UnsafeMutablePointer<Float>) {
        let c = configuration
        let n = activations.count
        let shared = UncheckedSendable((activations.positions.withUnsafeBufferPointer { $0.baseAddress! }, encodingGradient, gridGradient,
                                        levels.withUnsafeBufferPointer { $0.baseAddress! }))
        let threads = max(1, min(CPUParallel.threadCount, c.levels))
        CPUParallel.forEachChunk(threads, costPerItem: n * 100 * c.levels) { range in
            let (positions, encodingGradient, gridGradient, levels) = shared.value
            for t in range {
                for l in stride(from: t, to: c.levels, by: threads) {
                    vkk_hashgrid_scatter(positions, Int64(n), levels + l, Int32(l), Int32(c.featuresPerLevel), encodingGradient,
                                         Int32(c.encodingWidth), gridGradient)
                }
            }
        }
    }

    // MARK: Dense layers (OpenBLAS)

    /// output[n × outputs] (row stride ldOutput) = input[n × inputs] · W[outputs × inputs]ᵀ.
    static func linear(_ n: Int, inputs: Int, outputs: Int, _ input: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                       _ output: UnsafeMutablePointer<Float>, ldOutput: Int) {
        vkk_sgemm(0, 1, Int64(n), Int64(outputs), Int64(inputs), 1, input, Int64(inputs), weight, Int64(inputs), 0,
                  output, Int64(ldOutput))
    }

    /// dW[outputs × inputs] = dY[n × outputs]ᵀ · X[n × inputs] (rows of dW past `outputs` untouched).
    static func weightGradient(_ n: Int, outputs: Int, inputs: Int, _ outputGradient: UnsafePointer<Float>,
                               _ input: UnsafePointer<Float>, _ gradient: UnsafeMutablePointer<Float>) {
        vkk_sgemm(1, 0, Int64(outputs), Int64(inputs), Int64(n), 1, outputGradient, Int64(outputs), input, Int64(inputs), 0,
                  gradient, Int64(inputs))
    }

    /// dX[n × inputs] = dY[n × outputs] · W[outputs × inputs] (the first `outputs` rows of W).
    static func inputGradient(_ n: Int, outputs: Int, inputs: Int, _ outputGradient: UnsafePointer<Float>,
                              _ weight: UnsafePointer<Float>, _ inputGradient: UnsafeMutablePointer<Float>) {
        vkk_sgemm(0, 0, Int64(n), Int64(inputs), Int64(outputs), 1, outputGradient, Int64(outputs), weight, Int64(inputs), 0,
                  inputGradient, Int64(inputs))
    }

    /// One hidden layer of either MLP: output = ReLU(input · Wᵀ) with W at `weights + offset`; then the
    /// output becomes the next layer's input and `offset` moves past W.
    static func hiddenLayer(_ n: Int, _ input: inout UnsafeMutablePointer<Float>, _ inputWidth: inout Int, _ offset: inout Int,
                            weights: UnsafePointer<Float>, width: Int, output: UnsafeMutablePointer<Float>) {
        linear(n, inputs: inputWidth, outputs: width, input, weights + offset, output, ldOutput: width)
        relu(output, n * width)
        offset += width * inputWidth
        input = output
        inputWidth = width
    }

    static func relu(_ values: UnsafeMutablePointer<Float>, _ count: Int) {
        let shared = UncheckedSendable(values)
        CPUParallel.forEachChunk(count) { range in vkk_relu(shared.value + range.lowerBound, Int64(range.count)) }
    }

    /// gradient ⊙= (activation > 0): ReLU's derivative, read from its output.
    static func reluBackward(_ gradient: UnsafeMutablePointer<Float>, _ activation: [Float], _ count: Int) {
        activation.withUnsafeBufferPointer { activation in
            let shared = UncheckedSendable((gradient, activation.baseAddress!))
            CPUParallel.forEachChunk(count) { range in
                let (g, a) = shared.value
                vkk_relu_backward(g + range.lowerBound, a + range.lowerBound, Int64(range.count))
            }
        }
    }
}
