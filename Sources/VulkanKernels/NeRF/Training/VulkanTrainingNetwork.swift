import CVulkan

/// ``HashGridNetwork``'s training passes on a Vulkan device: the same forward pass (keeping every
/// activation), backward pass (the gradient of every parameter, hash-table gradients scattered into the
/// tables) and Adam update as the CPU path, in fp32, with the parameters, their gradient, Adam's state and
/// the activations resident on the device. Used alone (``forward(positions:directions:densityOnly:)``,
/// ``backward(rgbGradient:sigmaGradient:)``, ``step(options:learningRate:)``) the host uploads sample
/// positions and directions and the per-sample dL/dRGB and dL/dσ, and downloads RGB and σ; inside a
/// training step (``VulkanTrainingPipeline``) its passes are encoded on buffers the march and the
/// compaction fill on the device, and nothing per sample crosses to the host.
///
/// Kernels (Shaders/nerf/train_*.comp), one per stage: hash encoding, MLP layer forward, weight gradient
/// and input gradient (with the ReLU mask), density head (σ = exp; SH direction encoding) and its
/// backward pass (instant-ngp's clamped exp derivative), logistic RGB and its backward pass, the hash
/// scatter and Adam. They are plain one-invocation-per-output kernels: correctness first, the CPU path
/// is the reference they are tested against.
///
/// The hash scatter uses fp32 `atomicAdd` where the device has `shaderBufferFloat32AtomicAdd`
/// (``ScatterMethod/atomicAdd``; the order of the additions varies between runs), and otherwise a
/// deterministic kernel in which each invocation owns a range of table entries and adds their terms in
/// the CPU path's order (``ScatterMethod/deterministic``; slower: every invocation visits every sample).
public final class VulkanTrainingNetwork: @unchecked Sendable {
    /// How the hash encoding's backward pass adds the samples' terms into the tables' gradient.
    public enum ScatterMethod: Sendable, Equatable {
        /// fp32 atomic adds (devices with `shaderBufferFloat32AtomicAdd`).
        case atomicAdd
        /// Each table entry owned by one invocation that adds its terms in sample order: deterministic, on
        /// any device.
        case deterministic
    }

    public let configuration: HashGridConfiguration
    public let context: ComputeContext
    public let scatterMethod: ScatterMethod
    /// Samples of the latest ``forward(positions:directions:densityOnly:)``.
    public private(set) var count = 0

    let device: VulkanDevice
    let localSize: Int
    let parameters: Tensor<Float>
    let gradients: Tensor<Float>
    let firstMoments: Tensor<Float>
    let secondMoments: Tensor<Float>
    let parameterSteps: Tensor<UInt32>
    let levels: Tensor<UInt32>
    /// Bound as `deviceCounts` of the kernels run over a host count (never read: their countWord is
    /// NO_DEVICE_COUNT).
    let noDeviceCount: Tensor<UInt32>
    let geometry: [HashGridConfiguration.Level]
    /// Adam's debiasing table (``AdamOptimizer/debiasFactor(step:options:)`` for k = 0…updates) and its
    /// device copy, regrown by doubling.
    var debias: [Float] = [0]
    var debiasTensor: Tensor<Float>?
    var buffers: Activations?
    /// tiny-cuda-nn's fp16 weight average (``encodeAverage(_:decay:step:)``), two weights per word.
    var average: Tensor<UInt32>?
    /// The latest forward pass stopped after σ.
    var densityOnlyPass = false

    /// Uploads `network`'s parameters to `context` (a Vulkan context). `scatterMethod` defaults to atomic
    /// adds where the device has fp32 atomics; asking for them on a device without throws.
    public init(network: HashGridNetwork, context: ComputeContext, scatterMethod: ScatterMethod? = nil) throws {
        guard let device = context.device else {
            throw KernelError.invalidParameter(op: "train", name: "context", value: "a CPU context (VulkanTrainingNetwork needs a Vulkan device)")
        }
        let info = device.info
        let c = network.configuration
        let atomics = info.supportsFloat32AtomicAdd
        let method = scatterMethod ?? (atomics ? .atomicAdd : .deterministic)
        if method == .atomicAdd && !atomics {
            throw KernelError.unsupportedOnDevice(op: "train", feature: "shaderBufferFloat32AtomicAdd (VK_EXT_shader_atomic_float)")
        }
        guard c.parameterCount * 4 <= info.maxStorageBufferRange else {
            throw KernelError.exceedsDeviceLimit(op: "train", what: "parameter bytes", value: c.parameterCount * 4, limit: info.maxStorageBufferRange)
        }
        configuration = c
        self.context = context
        self.device = device
        self.scatterMethod = method
        localSize = info.isCPUDriver ? 16 : 64
        geometry = c.levelGeometry
        parameters = try context.tensor(network.parameters, shape: [c.parameterCount])
        gradients = try context.zeros(Float.self, shape: [c.parameterCount])
        firstMoments = try context.zeros(Float.self, shape: [c.parameterCount])
        secondMoments = try context.zeros(Float.self, shape: [c.parameterCount])
        parameterSteps = try context.zeros(UInt32.self, shape: [c.parameterCount])
        var table: [UInt32] = []
        for level in geometry {
            table += [UInt32(level.tableOffset), UInt32(level.tableSize), level.scale.bitPattern,
                      UInt32(level.resolution) | (level.isDense ? 0x8000_0000 : 0)]
        }
        levels = try context.tensor(table, shape: [geometry.count, 4])
        noDeviceCount = try context.zeros(UInt32.self, shape: [1])
    }

    public var matrixParameterCount: Int { configuration.gridParameterOffset }

    // MARK: Host copies

    /// The fp32 parameters (the master copy Adam updates).
    public func parameterValues() throws -> [Float] { try parameters.toArray() }

    /// Replaces the parameters (the Adam state is kept).
    public func setParameters(_ values: [Float]) throws {
        guard values.count == configuration.parameterCount else { throw KernelError.countMismatch(expected: configuration.parameterCount, got: values.count) }
        try parameters.copy(from: values)
    }

    /// dL/dθ of the latest ``backward(rgbGradient:sigmaGradient:)``: the MLP part overwritten by each
    /// backward pass, the grid part summed since the last ``step(options:learningRate:)`` or
    /// ``clearGradients()``.
    public func gradientValues() throws -> [Float] { try gradients.toArray() }

    /// Zeroes the gradient (the grid part must be zero before a backward pass that is to stand alone).
    public func clearGradients() throws { try context.batch { try $0.fill(gradients.storage, word: 0) } }

    /// Adam's moments and per-parameter step counts.
    public func adamState() throws -> (firstMoments: [Float], secondMoments: [Float], steps: [UInt32]) {
        (try firstMoments.toArray(), try secondMoments.toArray(), try parameterSteps.toArray())
    }

    /// Restores Adam's state after `updates` updates (as ``AdamOptimizer/restore``).
    func restoreAdam(firstMoments m: [Float], secondMoments v: [Float], steps k: [UInt32], updates: Int, options: TrainingOptions) throws {
        let n = configuration.parameterCount
        guard m.count == n, v.count == n, k.count == n else {
            throw KernelError.invalidParameter(op: "train", name: "Adam state", value: "\(m.count) parameters, expected \(n)")
        }
        try firstMoments.copy(from: m)
        try secondMoments.copy(from: v)
        try parameterSteps.copy(from: k)
        debias = [0] + (0..<max(updates, 0)).map { AdamOptimizer.debiasFactor(step: $0 + 1, options: options) }
        debiasTensor = nil
    }

    // MARK: Forward

    /// Forward pass over `positions` (unit cube) and unit `directions`, 3 floats per sample: returns RGB
    /// (3 per sample; empty when `densityOnly`) and σ, and keeps every activation on the device for
    /// ``backward(rgbGradient:sigmaGradient:)``.
    @discardableResult
    public func forward(positions: [Float], directions: [Float], densityOnly: Bool = false) throws -> (rgb: [Float], sigma: [Float]) {
        guard positions.count % 3 == 0, directions.count == positions.count else {
            throw KernelError.invalidParameter(op: "train forward", name: "positions/directions",
                                               value: "\(positions.count) and \(directions.count) floats (3 per sample, the same count)")
        }
        guard positions.allSatisfy(\.isFinite), directions.allSatisfy(\.isFinite) else {
            throw KernelError.invalidParameter(op: "train forward", name: "positions/directions", value: "non-finite values")
        }
        let n = positions.count / 3
        count = n
        densityOnlyPass = densityOnly
        guard n > 0 else { return ([], []) }
        let b = try activations(for: n)
        try upload(positions, to: b.positions)
        try upload(directions, to: b.directions)
        try context.batch { batch in try encodeForward(batch, b, .host(n), densityOnly: densityOnly) }
        let sigma = try context.download(b.sigma.storage, count: n, as: Float.self)
        let rgb: [Float] = try densityOnly ? [] : context.download(b.rgb.storage, count: 3 * n, as: Float.self)
        return (rgb, sigma)
    }

    /// The hash encoding of the first `count` positions in `positions` (default `b.positions`) into `b.encoded`.
    func encode(_ batch: CommandBatch, _ b: Activations, _ count: SampleCount, positions: Tensor<Float>? = nil) throws {
        let c = configuration, n = count.bound
        try dispatch(batch, Kernel<Shader.nerf_train_hashgrid_encode>(.base, specialization: specialization), .init(
            positions: read(positions ?? b.positions, 3 * n), levels: read(levels, levels.count),
            table: read(parameters, c.gridParameterCount, from: c.gridParameterOffset),
            encoded: write(b.encoded, n * c.encodingWidth), deviceCounts: countBinding(count)),
            push: .init(count: UInt32(n), levelCount: UInt32(c.levels), features: UInt32(c.featuresPerLevel), stride: UInt32(c.encodingWidth),
                        countWord: count.countWord),
            over: count, perItem: c.levels)
    }

    /// Records the forward pass of `count` samples whose inputs are in `positions` and `directions`
    /// (default: `b`'s own; the training pipeline passes its march output and the march's device count)
    /// into `b`'s activations.
    func encodeForward(_ batch: CommandBatch, _ b: Activations, _ count: SampleCount, densityOnly: Bool,
                       positions: Tensor<Float>? = nil, directions: Tensor<Float>? = nil) throws {
        let c = configuration, n = count.bound
        try encode(batch, b, count, positions: positions)
        var offset = 0
        var input = b.encoded, inputWidth = c.encodingWidth
        for layer in 0..<c.densityHiddenLayers {
            try linear(batch, count, input, inputWidth, weightOffset: offset, outputs: c.densityWidth, b.densityHidden[layer], ldOutput: c.densityWidth, relu: true)
            offset += c.densityWidth * inputWidth
            input = b.densityHidden[layer]
            inputWidth = c.densityWidth
        }
        // The 16 density outputs go into the first columns of the colour input, as on the CPU.
        try linear(batch, count, input, inputWidth, weightOffset: offset, outputs: HashGridConfiguration.densityOutputs, b.colorInput,
                   ldOutput: c.colorInputWidth, relu: false)
        offset += HashGridConfiguration.densityOutputs * inputWidth
        try dispatch(batch, Kernel<Shader.nerf_train_density_head>(.base, specialization: specialization), .init(
            colorInput: readWrite(b.colorInput, n * c.colorInputWidth), directions: read(directions ?? b.directions, 3 * n),
            sigma: write(b.sigma, n), deviceCounts: countBinding(count)),
            push: .init(count: UInt32(n), stride: UInt32(c.colorInputWidth), withDirections: densityOnly ? 0 : 1, countWord: count.countWord),
            over: count, perItem: 1)
        if densityOnly { return }
        input = b.colorInput
        inputWidth = c.colorInputWidth
        for layer in 0..<c.colorHiddenLayers {
            try linear(batch, count, input, inputWidth, weightOffset: offset, outputs: c.colorWidth, b.colorHidden[layer], ldOutput: c.colorWidth, relu: true)
            offset += c.colorWidth * inputWidth
            input = b.colorHidden[layer]
            inputWidth = c.colorWidth
        }
        // Only the first 3 of the last layer's 16 rows are RGB.
        try linear(batch, count, input, inputWidth, weightOffset: offset, outputs: 3, b.colorLogits, ldOutput: 3, relu: false)
        try dispatch(batch, Kernel<Shader.nerf_train_rgb_activation>(.base, specialization: specialization), .init(
            logits: read(b.colorLogits, 3 * n), rgb: write(b.rgb, 3 * n), deviceCounts: countBinding(count)),
            push: .init(count: UInt32(n), countWord: count.countWord), over: count, perItem: 3)
    }

    /// output[n × outputs] (row stride ldOutput) = input[n × inputs] · Wᵀ, W the outputs × inputs matrix at
    /// `weightOffset` in the parameters.
    func linear(_ batch: CommandBatch, _ count: SampleCount, _ input: Tensor<Float>, _ inputs: Int, weightOffset: Int, outputs: Int,
                _ output: Tensor<Float>, ldOutput: Int, relu: Bool) throws {
        let n = count.bound
        try dispatch(batch, Kernel<Shader.nerf_train_linear_forward>(.base, specialization: specialization), .init(
            input: read(input, n * inputs), weights: read(parameters, outputs * inputs, from: weightOffset),
            output: write(output, n * ldOutput), deviceCounts: countBinding(count)),
            push: .init(count: UInt32(n), inputs: UInt32(inputs), outputs: UInt32(outputs), ldOutput: UInt32(ldOutput), relu: relu ? 1 : 0,
                        countWord: count.countWord),
            over: count, perItem: outputs)
    }

    // MARK: Backward

    /// Backward pass of the latest full forward pass, given dL/dRGB (3 per sample) and dL/dσ (1 per
    /// sample): overwrites the MLP part of the device gradient and adds the hash tables' gradient into
    /// its grid part (zero after ``step(options:learningRate:)`` or ``clearGradients()``), as
    /// ``HashGridNetwork/backward`` does.
    public func backward(rgbGradient: [Float], sigmaGradient: [Float]) throws {
        let n = count
        guard !densityOnlyPass || n == 0 else {
            throw KernelError.invalidParameter(op: "train backward", name: "forward pass", value: "density only (no colour activations to differentiate)")
        }
        guard rgbGradient.count == 3 * n, sigmaGradient.count == n else {
            throw KernelError.invalidParameter(op: "train backward", name: "gradients",
                                               value: "\(rgbGradient.count) RGB and \(sigmaGradient.count) σ values for \(n) samples")
        }
        guard rgbGradient.allSatisfy(\.isFinite), sigmaGradient.allSatisfy(\.isFinite) else {
            throw KernelError.invalidParameter(op: "train backward", name: "gradients", value: "non-finite values")
        }
        guard n > 0, let b = buffers else {
            // No samples: a zero gradient (the CPU path zeroes the MLP part; the grid part is already zero
            // after an update, and nothing can be scattered into it).
            try context.batch { batch in
                try batch.fill(gradients.storage, word: 0)
            }
            return
        }
        try upload(rgbGradient, to: b.rgbGradient)
        try upload(sigmaGradient, to: b.sigmaGradient)
        try context.batch { batch in try encodeBackward(batch, b, .host(n)) }
    }

    /// Records the backward pass over `count` samples of `b` (for a device count, the weight gradient's
    /// first chunk always runs, so a count of 0 leaves a zero MLP gradient, as on the CPU).
    func encodeBackward(_ batch: CommandBatch, _ b: Activations, _ count: SampleCount) throws {
        let c = configuration, n = count.bound
        var offsets: [Int] = []
        var offset = 0
        for layer in c.densityLayers + c.colorLayers { offsets.append(offset); offset += layer.outputs * layer.inputs }
        let colorBase = c.densityLayers.count
        var upstream = b.scratchA, downstream = b.scratchB
        // dL/dlogits = dL/dRGB · rgb (1 − rgb).
        try dispatch(batch, Kernel<Shader.nerf_train_rgb_activation_backward>(.base, specialization: specialization), .init(
            rgbGradient: read(b.rgbGradient, 3 * n), rgb: read(b.rgb, 3 * n), logitGradient: write(upstream, 3 * n),
            deviceCounts: countBinding(count)),
            push: .init(count: UInt32(n), countWord: count.countWord), over: count, perItem: 3)
        var upstreamWidth = 3
        for layer in stride(from: c.colorHiddenLayers, through: 0, by: -1) {
            let shape = c.colorLayers[layer]
            let input = layer == 0 ? b.colorInput : b.colorHidden[layer - 1]
            try layerBackward(batch, count, upstream, upstreamWidth, shape, weightOffset: offsets[colorBase + layer], input: input,
                              mask: layer > 0 ? input : nil, inputGradient: downstream)
            swap(&upstream, &downstream)
            upstreamWidth = shape.inputs
        }
        // dL/d(density outputs): the colour input's first 16 columns plus σ's path.
        try dispatch(batch, Kernel<Shader.nerf_train_density_head_backward>(.base, specialization: specialization), .init(
            full: read(upstream, n * c.colorInputWidth), colorInput: read(b.colorInput, n * c.colorInputWidth),
            sigmaGradient: read(b.sigmaGradient, n), outputGradient: write(downstream, n * HashGridConfiguration.densityOutputs),
            deviceCounts: countBinding(count)),
            push: .init(count: UInt32(n), stride: UInt32(c.colorInputWidth), countWord: count.countWord),
            over: count, perItem: HashGridConfiguration.densityOutputs)
        swap(&upstream, &downstream)
        upstreamWidth = HashGridConfiguration.densityOutputs
        for layer in stride(from: c.densityHiddenLayers, through: 0, by: -1) {
            let shape = c.densityLayers[layer]
            let input = layer == 0 ? b.encoded : b.densityHidden[layer - 1]
            let target = layer == 0 ? b.encodingGradient : downstream
            try layerBackward(batch, count, upstream, upstreamWidth, shape, weightOffset: offsets[layer], input: input,
                              mask: layer > 0 ? input : nil, inputGradient: target)
            if layer > 0 { swap(&upstream, &downstream) }
            upstreamWidth = shape.inputs
        }
        try encodeScatter(batch, positions: b.positions, encodingGradient: b.encodingGradient, count)
    }

    /// One layer's backward pass: dW = dYᵀ·X into the layer's gradient (rows past `upstreamWidth` zero),
    /// dX = dY·W (times the ReLU mask read from `mask`, the layer's input activation, when given). Both
    /// kernels take 4 adjacent inputs per invocation (layer input widths are multiples of 16).
    func layerBackward(_ batch: CommandBatch, _ count: SampleCount, _ outputGradient: Tensor<Float>, _ upstreamWidth: Int,
                       _ shape: (outputs: Int, inputs: Int), weightOffset: Int, input: Tensor<Float>, mask: Tensor<Float>?,
                       inputGradient: Tensor<Float>) throws {
        // Consecutive chunks of samples, each invocation looping over one chunk (see sampleChunk).
        let n = count.bound
        let chunk = Self.sampleChunk(iterationsPerSample: 1)
        for begin in chunkBegins(count, chunk: chunk) {
            try dispatchChunk(batch, Kernel<Shader.nerf_train_linear_weight_gradient>(.base, specialization: specialization), .init(
                outputGradient: read(outputGradient, n * upstreamWidth), input: read(input, n * shape.inputs),
                gradient: readWrite(gradients, shape.outputs * shape.inputs, from: weightOffset), deviceCounts: countBinding(count)),
                push: .init(count: UInt32(n), inputs: UInt32(shape.inputs), outputs: UInt32(upstreamWidth), storedOutputs: UInt32(shape.outputs),
                            sampleBegin: UInt32(begin), sampleEnd: UInt32(min(begin + chunk, n)), accumulate: begin == 0 ? 0 : 1,
                            countWord: count.countWord),
                over: count, invocations: shape.outputs * shape.inputs / 4, chunkBegin: begin)
        }
        try dispatch(batch, Kernel<Shader.nerf_train_linear_input_gradient>(.base, specialization: specialization), .init(
            outputGradient: read(outputGradient, n * upstreamWidth), weights: read(parameters, upstreamWidth * shape.inputs, from: weightOffset),
            activation: mask.map { read($0, n * shape.inputs) } ?? read(outputGradient, n * upstreamWidth),
            inputGradient: write(inputGradient, n * shape.inputs), deviceCounts: countBinding(count)),
            push: .init(count: UInt32(n), inputs: UInt32(shape.inputs), outputs: UInt32(upstreamWidth), mask: mask == nil ? 0 : 1,
                        countWord: count.countWord),
            over: count, perItem: shape.inputs / 4)
    }

    /// The hash encoding's backward pass: adds Σ weight · dL/d(encoding) into the grid part of the gradient.
    func encodeScatter(_ batch: CommandBatch, positions: Tensor<Float>, encodingGradient: Tensor<Float>, _ count: SampleCount) throws {
        let c = configuration, n = count.bound
        let bindings = Shader.nerf_train_hashgrid_backward.Bindings(
            positions: read(positions, 3 * n), levels: read(levels, levels.count),
            encodedGradient: read(encodingGradient, n * c.encodingWidth),
            tableGradient: readWrite(gradients, c.gridParameterCount, from: c.gridParameterOffset), deviceCounts: countBinding(count))
        switch scatterMethod {
        case .atomicAdd:
            try dispatch(batch, Kernel<Shader.nerf_train_hashgrid_backward>(.atomic, specialization: specialization), bindings,
                         push: .init(count: UInt32(n), levelCount: UInt32(c.levels), features: UInt32(c.featuresPerLevel),
                                     stride: UInt32(c.encodingWidth), rangesPerLevel: 0, entriesPerRange: 0, sampleBegin: 0, sampleEnd: 0,
                                     countWord: count.countWord),
                         over: count, perItem: c.levels)
        case .deterministic:
            let (ranges, entries) = scatterRanges
            // Per sample an invocation runs ≤ 1 + 8 + 8 + 8·F loop iterations (sample, corners twice,
            // features of the corners in its range).
            let chunk = Self.sampleChunk(iterationsPerSample: 17 + 8 * c.featuresPerLevel)
            for begin in chunkBegins(count, chunk: chunk) {
                try dispatchChunk(batch, Kernel<Shader.nerf_train_hashgrid_backward>(.base, specialization: specialization), bindings,
                                  push: .init(count: UInt32(n), levelCount: UInt32(c.levels), features: UInt32(c.featuresPerLevel),
                                              stride: UInt32(c.encodingWidth), rangesPerLevel: UInt32(ranges), entriesPerRange: UInt32(entries),
                                              sampleBegin: UInt32(begin), sampleEnd: UInt32(min(begin + chunk, n)), countWord: count.countWord),
                                  over: count, invocations: c.levels * ranges, chunkBegin: begin)
            }
        }
    }

    /// Samples one invocation of a sample-looping kernel (weight gradient, deterministic scatter) may
    /// walk in one dispatch: lavapipe (llvmpipe) ends any invocation after 65,535 loop iterations in all
    /// (its guard against endless loops; found here as wrong sums past ~1,500 samples in the scatter),
    /// so the host splits the samples into consecutive chunks of half that budget. Other devices lose
    /// only the extra dispatches.
    static func sampleChunk(iterationsPerSample: Int) -> Int { max(1, 32_768 / iterationsPerSample) }

    /// The deterministic scatter's split of each level's table: (ranges per level, entries per range).
    /// Every invocation visits every sample, so the ranges trade parallelism against repeated work:
    /// enough invocations to fill the device (a GPU wants thousands, a CPU driver a few per core).
    var scatterRanges: (Int, Int) {
        let largest = geometry.map(\.tableSize).max() ?? 1
        let wanted = device.info.isCPUDriver ? 16 : max(1, 8192 / max(configuration.levels, 1))
        let ranges = min(wanted, largest)
        return (ranges, (largest + ranges - 1) / ranges)
    }

    // MARK: Adam

    /// One Adam update of every parameter with learning rate `learningRate` (the CPU path's
    /// ``AdamOptimizer/step``), clearing the grid gradient it consumes.
    public func step(options: TrainingOptions, learningRate: Float) throws {
        let table = try prepareStep(options: options, learningRate: learningRate)
        try context.batch { batch in try encodeStep(batch, debias: table, options: options, learningRate: learningRate) }
    }

    /// Checks the step's settings and extends the debiasing table (host and device) by one update; returns
    /// the device table for ``encodeStep(_:debias:options:learningRate:)``.
    func prepareStep(options: TrainingOptions, learningRate: Float) throws -> Tensor<Float> {
        try options.validate()
        guard learningRate.isFinite && learningRate >= 0 else {
            throw KernelError.invalidParameter(op: "train", name: "learningRate", value: "\(learningRate)")
        }
        debias.append(AdamOptimizer.debiasFactor(step: debias.count, options: options))
        if debiasTensor == nil || debiasTensor!.count < debias.count {
            debiasTensor = try context.empty(Float.self, shape: [max(2 * debias.count, 64)])
        }
        let table = debiasTensor!
        try upload(debias, to: table)
        return table
    }

    /// Records one Adam update (after ``prepareStep(options:learningRate:)``).
    func encodeStep(_ batch: CommandBatch, debias table: Tensor<Float>, options: TrainingOptions, learningRate: Float) throws {
        let n = configuration.parameterCount
        try batch.dispatch(Kernel<Shader.nerf_train_adam>(.base, specialization: specialization), .init(
            parameters: readWrite(parameters, n), gradients: readWrite(gradients, n), first: readWrite(firstMoments, n),
            second: readWrite(secondMoments, n), steps: BufferBinding(parameterSteps.storage, .storageReadWrite, byteCount: 4 * n),
            debias: read(table, debias.count)),
            push: .init(count: UInt32(n), matrixCount: UInt32(matrixParameterCount), learningRate: learningRate, beta1: options.beta1,
                        beta2: options.beta2, epsilon: options.epsilon, l2: options.l2Regularization),
            groups: groups(n))
    }

    // MARK: Single stages (tests, benchmarks)

    /// The hash encoding alone: count × encodingWidth values (zero padded) for `positions`.
    func encode(positions: [Float]) throws -> [Float] {
        let n = positions.count / 3
        guard n > 0 else { return [] }
        let b = try activations(for: n)
        try upload(positions, to: b.positions)
        let c = configuration
        try context.batch { try encode($0, b, .host(n)) }
        return try context.download(b.encoded.storage, count: n * c.encodingWidth, as: Float.self)
    }

    /// The hash scatter alone into a zeroed gradient: the grid part (gridParameterCount values) for
    /// `positions` and dL/d(encoding) (count × encodingWidth).
    func scatter(positions: [Float], encodingGradient: [Float]) throws -> [Float] {
        let n = positions.count / 3
        let c = configuration
        precondition(encodingGradient.count == n * c.encodingWidth)
        try clearGradients()
        if n > 0 {
            let b = try activations(for: n)
            try upload(positions, to: b.positions)
            try upload(encodingGradient, to: b.encodingGradient)
            try context.batch { batch in try encodeScatter(batch, positions: b.positions, encodingGradient: b.encodingGradient, .host(n)) }
        }
        return Array(try gradients.toArray()[c.gridParameterOffset...])
    }

    /// The latest forward pass's activations: encoding, density hidden layers, colour input (density
    /// outputs and SH), colour hidden layers, colour logits; each count × its width.
    func activationValues() throws -> (encoded: [Float], densityHidden: [[Float]], colorInput: [Float], colorHidden: [[Float]], logits: [Float]) {
        let n = count, c = configuration
        guard n > 0, let b = buffers else { return ([], [], [], [], []) }
        func get(_ t: Tensor<Float>, _ width: Int) throws -> [Float] { try context.download(t.storage, count: n * width, as: Float.self) }
        return (try get(b.encoded, c.encodingWidth), try b.densityHidden.map { try get($0, c.densityWidth) },
                try get(b.colorInput, c.colorInputWidth), try b.colorHidden.map { try get($0, c.colorWidth) }, try get(b.colorLogits, 3))
    }

    // MARK: Buffers

    /// The forward pass's activations and the backward pass's scratch for up to `capacity` samples.
    final class Activations {
        let capacity: Int
        let positions, directions, encoded, colorInput, colorLogits, rgb, sigma: Tensor<Float>
        let densityHidden, colorHidden: [Tensor<Float>]
        let rgbGradient, sigmaGradient, scratchA, scratchB, encodingGradient: Tensor<Float>

        init(capacity n: Int, configuration c: HashGridConfiguration, context: ComputeContext) throws {
            capacity = n
            func make(_ width: Int) throws -> Tensor<Float> { try context.empty(Float.self, shape: [n, width]) }
            positions = try make(3); directions = try make(3)
            encoded = try make(c.encodingWidth)
            densityHidden = try (0..<c.densityHiddenLayers).map { _ in try make(c.densityWidth) }
            colorInput = try make(c.colorInputWidth)
            colorHidden = try (0..<c.colorHiddenLayers).map { _ in try make(c.colorWidth) }
            colorLogits = try make(3); rgb = try make(3); sigma = try make(1)
            rgbGradient = try make(3); sigmaGradient = try make(1)
            let width = max(c.densityWidth, c.colorWidth, c.colorInputWidth, c.encodingWidth, 16)
            scratchA = try make(width); scratchB = try make(width)
            encodingGradient = try make(c.encodingWidth)
        }

        /// Activations of their own (encoding, hidden layers, colour input, logits, RGB, σ) for as many
        /// samples as `other`, sharing its inputs, gradients and scratch: the training pipeline's buffers
        /// for the samples kept after compaction, gathered from `other`'s forward pass.
        init(sharingInputsAndScratchOf other: Activations, configuration c: HashGridConfiguration, context: ComputeContext) throws {
            let n = other.capacity
            capacity = n
            func make(_ width: Int) throws -> Tensor<Float> { try context.empty(Float.self, shape: [n, width]) }
            positions = other.positions; directions = other.directions
            encoded = try make(c.encodingWidth)
            densityHidden = try (0..<c.densityHiddenLayers).map { _ in try make(c.densityWidth) }
            colorInput = try make(c.colorInputWidth)
            colorHidden = try (0..<c.colorHiddenLayers).map { _ in try make(c.colorWidth) }
            colorLogits = try make(3); rgb = try make(3); sigma = try make(1)
            rgbGradient = other.rgbGradient; sigmaGradient = other.sigmaGradient
            scratchA = other.scratchA; scratchB = other.scratchB
            encodingGradient = other.encodingGradient
        }
    }

    /// Buffers for `n` samples, regrown (doubling) when too small.
    func activations(for n: Int) throws -> Activations {
        if let buffers, buffers.capacity >= n { return buffers }
        let c = configuration
        let widest = max(c.densityWidth, c.colorWidth, c.colorInputWidth, c.encodingWidth, 16)
        let capacity = max(n, 2 * (buffers?.capacity ?? 0), 256)
        let limit = device.info.maxStorageBufferRange / (4 * widest)
        guard n <= limit else {
            throw KernelError.exceedsDeviceLimit(op: "train", what: "samples per pass", value: n, limit: limit)
        }
        buffers = nil
        let made = try Activations(capacity: min(capacity, limit), configuration: c, context: context)
        buffers = made
        return made
    }

    // MARK: Dispatch helpers

    var specialization: [UInt32] { [UInt32(localSize)] }

    /// The `deviceCounts` binding of a kernel over `count`.
    func countBinding(_ count: SampleCount) -> BufferBinding {
        let words = count.device?.plan.counts ?? noDeviceCount
        return BufferBinding(words.storage, .storageRead, byteCount: 4 * words.count)
    }

    /// Records `kernel` over `count` samples, `perItem` invocations each: a plain dispatch for a host
    /// count (nothing for 0), an indirect one (workgroups from the device count) for a device count.
    func dispatch<Interface>(_ batch: CommandBatch, _ kernel: Kernel<Interface>, _ bindings: Interface.Bindings,
                             push: Interface.PushConstants, over count: SampleCount, perItem: Int) throws {
        if let device = count.device {
            try device.plan.dispatch(batch, kernel, bindings, push: push, word: device.word, capacity: count.bound, perItem: perItem)
        } else if count.bound > 0 {
            try batch.dispatch(kernel, bindings, push: push, groups: groups(count.bound * perItem))
        }
    }

    /// The first samples of a sample-looping kernel's chunks: up to the host count, or up to the bound of
    /// a device count (chunks past the device count are skipped on the device; the first always runs).
    func chunkBegins(_ count: SampleCount, chunk: Int) -> StrideTo<Int> {
        stride(from: 0, to: count.device == nil ? count.bound : max(count.bound, 1), by: chunk)
    }

    /// Records one chunk (`invocations` invocations, whatever the count) of a sample-looping kernel.
    func dispatchChunk<Interface>(_ batch: CommandBatch, _ kernel: Kernel<Interface>, _ bindings: Interface.Bindings,
                                  push: Interface.PushConstants, over count: SampleCount, invocations: Int, chunkBegin: Int) throws {
        let size = groups(invocations)
        if let device = count.device {
            precondition(size.1 == 1, "a chunk's workgroups fit one row")
            try device.plan.dispatch(batch, kernel, bindings, push: push, word: device.word, capacity: count.bound, perItem: 0,
                                     fixedGroups: size.0, chunkBegin: chunkBegin)
        } else {
            try batch.dispatch(kernel, bindings, push: push, groups: size)
        }
    }

    func groups(_ invocations: Int) -> (Int, Int, Int) {
        HashGridField.groups(capacity: invocations, localSize: localSize, maxX: device.info.maxComputeWorkGroupCount[0])
    }

    func read<T: TensorElement>(_ tensor: Tensor<T>, _ count: Int, from offset: Int = 0) -> BufferBinding {
        BufferBinding(tensor.storage, .storageRead, byteOffset: 4 * offset, byteCount: 4 * count)
    }

    func write(_ tensor: Tensor<Float>, _ count: Int, from offset: Int = 0) -> BufferBinding {
        BufferBinding(tensor.storage, .storageWrite, byteOffset: 4 * offset, byteCount: 4 * count)
    }

    func readWrite(_ tensor: Tensor<Float>, _ count: Int, from offset: Int = 0) -> BufferBinding {
        BufferBinding(tensor.storage, .storageReadWrite, byteOffset: 4 * offset, byteCount: 4 * count)
    }

    /// Copies `values` into the start of `tensor`.
    func upload(_ values: [Float], to tensor: Tensor<Float>) throws {
        precondition(values.count <= tensor.count)
        try values.withUnsafeBytes { try context.upload($0, to: tensor.storage) }
    }
}
