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
    /// Every array of the forward pass is compacted; the gradients of the backward pass are unchanged up to
    /// rounding (the dropped samples add exact zeros; the matrix gradients' tiles and groups follow the new
    /// count, so their partial sums are grouped differently).
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

    /// The C kernels' view of the arrays (their storage is owned here and outlives the call).
    func withKernelActivations<R>(_ body: (UnsafePointer<vkk_mlp_activations>) -> R) -> R {
        func pointer(_ array: inout [Float]) -> UnsafeMutablePointer<Float> { array.withUnsafeMutableBufferPointer { $0.baseAddress! } }
        let density: [UnsafeMutablePointer<Float>?] = densityHidden.indices.map { pointer(&densityHidden[$0]) }
        let color: [UnsafeMutablePointer<Float>?] = colorHidden.indices.map { pointer(&colorHidden[$0]) }
        return density.withUnsafeBufferPointer { density in
            color.withUnsafeBufferPointer { color in
                var a = vkk_mlp_activations(
                    positions: pointer(&positions), directions: pointer(&directions), encoded: pointer(&encoded),
                    density_hidden: density.baseAddress!, color_input: pointer(&colorInput), color_hidden: color.baseAddress!,
                    logits: pointer(&colorLogits), rgb: pointer(&rgb), sigma: pointer(&sigma))
                return body(&a)
            }
        }
    }

    /// Inputs from arrays (tests).
    public func setInputs(positions p: [Float], directions d: [Float], configuration: HashGridConfiguration) {
        precondition(p.count == d.count && p.count % 3 == 0)
        setInputs(positions: p, directions: d, count: p.count / 3, configuration: configuration)
    }
}

/// Scratch buffers of the backward pass: dL/d(encoding) for every sample (the scatter's input) and the
/// per-group partial sums of the matrix gradients.
public final class HashGridBackwardScratch: @unchecked Sendable {
    var encodingGradient: [Float] = []
    var partialGradients: [Float] = []
    public init() {}
    func reserve(_ n: Int, _ c: HashGridConfiguration, groups: Int) {
        if encodingGradient.count < n * c.encodingWidth { encodingGradient = [Float](repeating: 0, count: n * c.encodingWidth) }
        let partials = groups * c.gridParameterOffset
        if partialGradients.count < partials { partialGradients = [Float](repeating: 0, count: partials) }
    }
}

extension HashGridNetwork {
    /// Forward pass over the samples set in `activations` (``HashGridActivations/setInputs``): fills RGB and
    /// σ and keeps every intermediate. `densityOnly` stops after σ (occupancy-grid updates).
    ///
    /// Runs tile by tile (`VKK_MLP_TILE` samples: encoding, then every layer, while the tile is in cache) in
    /// CKernels' nerf_mlp.c on the path ``vkk_cpu_path()`` chooses; tiles are dealt to the threads as they
    /// become free. Each sample's result depends only on its own inputs, not on the split.
    public func forward(_ activations: HashGridActivations, densityOnly: Bool = false) {
        let n = activations.count
        guard n > 0 else { return }
        let path = vkk_cpu_path()
        withKernelNetwork { network in
            activations.withKernelActivations { a in
                let shared = UncheckedSendable((network, a))
                let tile = Int(VKK_MLP_TILE)
                let tiles = (n + tile - 1) / tile
                CPUParallel.forEachPiece(tiles, costPerItem: tile * 25_000) { range in
                    let (network, a) = shared.value
                    vkk_mlp_forward(network, a, Int64(range.lowerBound * tile), Int64(min(range.upperBound * tile, n)),
                                    densityOnly ? 1 : 0, path)
                }
            }
        }
    }

    /// Backward pass: given dL/dRGB (count × 3) and dL/dσ (count) of the samples of the last ``forward``,
    /// writes dL/dθ for every parameter into `gradients` (overwritten for the MLPs; the grid part must be
    /// zero on entry and receives the scattered sums — entries no sample touched stay exactly 0).
    /// Returns the seconds spent scattering into the hash tables (the rest is the MLPs' backward pass).
    ///
    /// The samples are split into groups that depend only on the count (``backwardGroups(_:)``); each
    /// group's matrix gradients are summed tile by tile in sample order into its own buffer, and the groups'
    /// sums are added in group order. So the result is bit-for-bit the same for any number of threads.
    @discardableResult
    public func backward(_ activations: HashGridActivations, rgbGradient: UnsafePointer<Float>, sigmaGradient: UnsafePointer<Float>,
                  gradients: UnsafeMutablePointer<Float>, scratch: HashGridBackwardScratch) -> Double {
        let c = configuration
        let n = activations.count
        let (groups, groupSize) = Self.backwardGroups(n)
        scratch.reserve(max(n, 1), c, groups: groups)
        let matrixCount = matrixParameterCount
        guard n > 0 else {
            gradients.initialize(repeating: 0, count: matrixCount)
            return 0
        }
        let path = vkk_cpu_path()
        let partials = scratch.partialGradients.withUnsafeMutableBufferPointer { $0.baseAddress! }
        let encodingGradient = scratch.encodingGradient.withUnsafeMutableBufferPointer { $0.baseAddress! }
        partials.initialize(repeating: 0, count: groups * matrixCount)
        withKernelNetwork { network in
            activations.withKernelActivations { a in
                let shared = UncheckedSendable((network, a, rgbGradient, sigmaGradient, encodingGradient, partials))
                let scratchCount = Int(vkk_mlp_backward_scratch(network))
                CPUParallel.forEachPiece(groups, costPerItem: groupSize * 50_000, piecesPerThread: 32) { range in
                    let (network, a, rgbGradient, sigmaGradient, encodingGradient, partials) = shared.value
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: scratchCount) { tileScratch in
                        for group in range {
                            vkk_mlp_backward(network, a, Int64(group * groupSize), Int64(min((group + 1) * groupSize, n)), rgbGradient,
                                             sigmaGradient, encodingGradient, partials + group * matrixCount, tileScratch.baseAddress!, path)
                        }
                    }
                }
            }
        }
        let sums = UncheckedSendable((partials, gradients))
        CPUParallel.forEachChunk(matrixCount, costPerItem: groups) { range in
            let (partials, gradients) = sums.value
            vkk_mlp_sum_partials(partials, Int64(groups), Int64(matrixCount), Int64(range.lowerBound), Int64(range.upperBound), gradients)
        }
        // Hash encoding: scatter dL/d(encoding) into the tables.
        let scatterStart = monotonicSeconds()
        scatterEncodingGradient(activations, encodingGradient, gradients + c.gridParameterOffset)
        return monotonicSeconds() - scatterStart
    }

    /// The backward pass's fixed split of `n` samples: at most 64 groups of whole tiles (the last one
    /// shorter), a function of `n` alone.
    static func backwardGroups(_ n: Int) -> (groups: Int, size: Int) {
        let tile = Int(VKK_MLP_TILE)
        let tiles = max(1, (n + tile - 1) / tile)
        let perGroup = (tiles + 63) / 64
        let size = perGroup * tile
        return (max(1, (n + size - 1) / size), size)
    }

    /// The C kernels' view of the network: shape, grid, weights and their transposes (packed here, per call:
    /// the parameters change every step, and packing costs about as much as one tile).
    func withKernelNetwork<R>(_ body: (UnsafePointer<vkk_mlp_network>) -> R) -> R {
        let c = configuration
        let matrixCount = matrixParameterCount
        var packed = [Float](repeating: 0, count: max(matrixCount, 1))
        return parameters.withUnsafeBufferPointer { w in
            levels.withUnsafeBufferPointer { levels in
                packed.withUnsafeMutableBufferPointer { packed in
                    var network = vkk_mlp_network(
                        levels: Int32(c.levels), features: Int32(c.featuresPerLevel), encoding_width: Int32(c.encodingWidth),
                        density_width: Int32(c.densityWidth), density_hidden: Int32(c.densityHiddenLayers),
                        color_width: Int32(c.colorWidth), color_hidden: Int32(c.colorHiddenLayers), grid: levels.baseAddress!,
                        table: w.baseAddress! + c.gridParameterOffset, weights: w.baseAddress!, packed: packed.baseAddress!)
                    precondition(Int(vkk_mlp_matrix_count(&network)) == matrixCount, "nerf_mlp.c and HashGridConfiguration disagree")
                    vkk_mlp_pack(&network, w.baseAddress!, packed.baseAddress!)
                    return body(&network)
                }
            }
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
}
