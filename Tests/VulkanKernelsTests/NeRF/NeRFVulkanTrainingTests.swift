import Foundation
@testable import VulkanKernels
import XCTest

/// The Vulkan training kernels (``VulkanTrainingNetwork``) against the CPU path (``HashGridNetwork``,
/// ``AdamOptimizer``), stage by stage and for the whole network, on small configurations with dense and
/// hashed levels. The CPU path is itself checked against float64 finite differences
/// (NeRFTrainingGradientTests), so agreement with it within fp32 rounding carries that check over.
final class NeRFVulkanTrainingTests: XCTestCase {
    /// 5 levels × 2 features from resolution 4 with 2^8-entry tables: level 0 dense (4³ = 64 vertices),
    /// levels 1–4 hashed (7³ = 343 and more vertices); MLPs 32 wide, instant-ngp's depths (density 1
    /// hidden layer, colour 2).
    let small = HashGridConfiguration(levels: 5, featuresPerLevel: 2, log2TableSize: 8, baseResolution: 4, perLevelScale: 1.6,
                                      densityWidth: 32, densityHiddenLayers: 1, colorWidth: 32, colorHiddenLayers: 2)
    /// 4 features per level (instant-ngp's default) and 8 levels from resolution 2 with 2^10 tables:
    /// levels 0–3 dense (up to 7³ = 343 vertices), 4–7 hashed; 16-wide MLPs with 2 hidden density
    /// layers (a hidden-to-hidden layer in both MLPs).
    let wide = HashGridConfiguration(levels: 8, featuresPerLevel: 4, log2TableSize: 10, baseResolution: 2, perLevelScale: 1.5,
                                     densityWidth: 16, densityHiddenLayers: 2, colorWidth: 16, colorHiddenLayers: 2)

    /// u = 2^-24, float32's unit roundoff.
    let unitRoundoff = 0x1p-24

    func testConfigurationHasDenseAndHashedLevels() {
        for c in [small, wide] {
            XCTAssertTrue(c.levelGeometry.contains { $0.isDense }, "\(c)")
            XCTAssertTrue(c.levelGeometry.contains { !$0.isDense }, "\(c)")
        }
    }

    // MARK: Inputs

    /// Random positions in the unit cube plus the edge cases: the cube's corners and faces (clamped),
    /// and positions on grid vertices of each level (x·scale + 0.5 an integer: one trilinear weight 1,
    /// the others 0).
    func inputs(_ c: HashGridConfiguration, random count: Int, seed: UInt64) -> (positions: [Float], directions: [Float]) {
        var generator = SeededGenerator(seed: seed)
        var points: [SIMD3<Float>] = [SIMD3(0, 0, 0), SIMD3(1, 1, 1), SIMD3(1, 0, 0.5), SIMD3(0.5, 0.5, 0.5)]
        for level in c.levelGeometry {
            // Vertex k sits at (k − 0.5)/scale.
            for k in [1, 2, Int(level.scale / 2)] where k >= 1 {
                let x = (Float(k) - 0.5) / level.scale
                if x >= 0 && x <= 1 { points.append(SIMD3(x, x, min(1, x + 0.25))) }
            }
        }
        for _ in 0..<count { points.append(SIMD3(generator.unitFloat(), generator.unitFloat(), generator.unitFloat())) }
        var positions: [Float] = [], directions: [Float] = []
        for p in points {
            positions += [p.x, p.y, p.z]
            var d = SIMD3<Float>(generator.unitFloat() * 2 - 1, generator.unitFloat() * 2 - 1, generator.unitFloat() * 2 - 1)
            d /= (d * d).sum().squareRoot()
            directions += [d.x, d.y, d.z]
        }
        return (positions, directions)
    }

    /// Xavier MLP weights (as the trainer initialises them) and grid features uniform in ±1, so that the
    /// encoding matters as much as the weights.
    func network(_ c: HashGridConfiguration, seed: UInt64) throws -> HashGridNetwork {
        try hashGridNetworkWithRandomGrid(c, seed: seed, gridSeed: seed ^ 0x5eed)
    }

    func cpuForward(_ network: HashGridNetwork, _ positions: [Float], _ directions: [Float]) -> HashGridActivations {
        let activations = HashGridActivations()
        activations.setInputs(positions: positions, directions: directions, configuration: network.configuration)
        network.forward(activations)
        return activations
    }

    func methods(_ context: ComputeContext) -> [VulkanTrainingNetwork.ScatterMethod] {
        context.device!.info.supportsFloat32AtomicAdd ? [.deterministic, .atomicAdd] : [.deterministic]
    }

    // MARK: Stages

    func testAtomicScatterNeedsTheDeviceFeature() throws {
        try onVulkan { context in
            let net = try network(small, seed: 1)
            print("\(context.backendDescription): shaderBufferFloat32AtomicAdd \(context.device!.info.supportsFloat32AtomicAdd)")
            if context.device!.info.supportsFloat32AtomicAdd {
                XCTAssertEqual(try VulkanTrainingNetwork(network: net, context: context).scatterMethod, .atomicAdd)
            } else {
                XCTAssertThrowsError(try VulkanTrainingNetwork(network: net, context: context, scatterMethod: .atomicAdd))
                XCTAssertEqual(try VulkanTrainingNetwork(network: net, context: context).scatterMethod, .deterministic)
            }
            XCTAssertThrowsError(try VulkanTrainingNetwork(network: net, context: Backends.cpu))
        }
    }

    /// Each encoding value is Σ of 8 products w·v with Σw = 1 and |v| ≤ 1: the float32 sum is within
    /// 8u of the exact one and the weights (products of 3 rounded factors) within 4u each, so two
    /// float32 evaluations differ by at most ~24u ≈ 1.5e-6; 4e-6 leaves margin, while a wrong corner or
    /// level moves a value by O(0.1).
    func testEncodingMatchesCPUIncludingGridVerticesAndFaces() throws {
        try onVulkan { context in
            for c in [small, wide] {
                let net = try network(c, seed: 2)
                let (positions, directions) = inputs(c, random: 150, seed: 3)
                let gpu = try VulkanTrainingNetwork(network: net, context: context).encode(positions: positions)
                let cpu = cpuForward(net, positions, directions)
                let n = positions.count / 3
                XCTAssertEqual(gpu.count, n * c.encodingWidth)
                var worst: Float = 0
                for i in 0..<(n * c.encodingWidth) { worst = max(worst, abs(gpu[i] - cpu.encoded[i])) }
                XCTAssertLessThanOrEqual(worst, 4e-6, "\(c.levels) levels × \(c.featuresPerLevel)")
                // The padding columns are exactly zero.
                for i in 0..<n { for k in (c.levels * c.featuresPerLevel)..<c.encodingWidth { XCTAssertEqual(gpu[i * c.encodingWidth + k], 0) } }
            }
        }
    }

    /// The 8 corners (table entry, weight) of unit position x at `level`, with the cell and the fractions
    /// t found in float32 as both paths find them (a position on a grid vertex must fall in the same
    /// cell), the trilinear weights then multiplied in float64.
    func float32Corners(_ x: SIMD3<Float>, _ level: HashGridConfiguration.Level) -> [(Int, Double)] {
        let position = x.replacing(with: 0, where: x .< 0).replacing(with: 1, where: x .> 1) * level.scale + 0.5
        let cell = position.rounded(.down), t = SIMD3<Double>(position - cell)
        return (0..<8).map { corner in
            let d = SIMD3<UInt32>(UInt32(corner & 1), UInt32((corner >> 1) & 1), UInt32(corner >> 2))
            let w = (d.x == 1 ? t.x : 1 - t.x) * (d.y == 1 ? t.y : 1 - t.y) * (d.z == 1 ? t.z : 1 - t.z)
            let v = SIMD3<UInt32>(UInt32(cell.x), UInt32(cell.y), UInt32(cell.z)) &+ d
            return (level.tableOffset + Int(gridEntry(v.x, v.y, v.z, level: level)), w)
        }
    }

    /// The scatter against a float64 sum of the same terms, entry by entry. An entry receiving k terms
    /// t_j = w_j·g_j (w_j carrying ≤ 4u relative error from its 3 rounded factors, the product one more)
    /// is, summed recursively in float32, within (k + 5)·u·Σ|t_j| of the exact sum (Higham, Accuracy and
    /// Stability, §4.2): that bound, doubled, per entry. Entries no sample touches must stay exactly 0,
    /// and the deterministic kernel must give the same bits twice.
    func testScatterMatchesFloat64SumsForBothMethods() throws {
        try onVulkan { context in
            for c in [small, wide] {
                let net = try network(c, seed: 4)
                let (positions, directions) = inputs(c, random: 300, seed: 5)
                let n = positions.count / 3
                var generator = SeededGenerator(seed: 6)
                let gradient = (0..<(n * c.encodingWidth)).map { _ in generator.unitFloat() * 2 - 1 }
                var exact = [Double](repeating: 0, count: c.gridParameterCount), magnitude = exact
                var terms = [Int](repeating: 0, count: c.gridParameterCount)
                for i in 0..<n {
                    let x = SIMD3<Float>(positions[3 * i], positions[3 * i + 1], positions[3 * i + 2])
                    for (l, corners) in c.levelGeometry.map({ float32Corners(x, $0) }).enumerated() {
                        for (entry, w) in corners {
                            for f in 0..<c.featuresPerLevel {
                                let t = w * Double(gradient[i * c.encodingWidth + l * c.featuresPerLevel + f])
                                exact[entry * c.featuresPerLevel + f] += t
                                magnitude[entry * c.featuresPerLevel + f] += abs(t)
                                terms[entry * c.featuresPerLevel + f] += 1
                            }
                        }
                    }
                }
                var cpu = [Float](repeating: 0, count: c.gridParameterCount)
                let activations = HashGridActivations()
                activations.setInputs(positions: positions, directions: directions, configuration: c)
                gradient.withUnsafeBufferPointer { g in
                    cpu.withUnsafeMutableBufferPointer { out in net.scatterEncodingGradient(activations, g.baseAddress!, out.baseAddress!) }
                }
                for method in methods(context) {
                    let device = try VulkanTrainingNetwork(network: net, context: context, scatterMethod: method)
                    let gpu = try device.scatter(positions: positions, encodingGradient: gradient)
                    XCTAssertEqual(gpu.count, c.gridParameterCount)
                    var failures = 0
                    for e in 0..<c.gridParameterCount {
                        if terms[e] == 0 {
                            if gpu[e] != 0 { failures += 1 }
                            continue
                        }
                        let bound = 2 * Double(terms[e] + 5) * unitRoundoff * magnitude[e]
                        if abs(Double(gpu[e]) - exact[e]) > bound || abs(Double(cpu[e]) - exact[e]) > bound { failures += 1 }
                    }
                    XCTAssertEqual(failures, 0, "\(method), \(c.levels) levels: entries outside their bound")
                    XCTAssertGreaterThan(terms.filter { $0 > 0 }.count, c.gridParameterCount / 20, "the samples touch too few entries to test")
                    if method == .deterministic {
                        let again = try device.scatter(positions: positions, encodingGradient: gradient)
                        XCTAssertEqual(again.map(\.bitPattern), gpu.map(\.bitPattern), "the deterministic scatter changed between runs")
                    }
                }
            }
        }
    }

    /// Every activation of the forward pass. Each MLP output is a sum of ≤ 64 float32 products (γ_64 ≈
    /// 64u ≈ 4e-6 of Σ|terms|), fed by inputs that carry the previous layers' errors, with Σ|terms| up to
    /// ~10× the result for Xavier weights: after ≤ 5 layers, 2e-4 of the layer's largest magnitude
    /// (at least 1) bounds the difference with margin; a wrong weight or ReLU is O(0.1) off.
    func testForwardActivationsMatchCPU() throws {
        try onVulkan { context in
            for c in [small, wide] {
                let net = try network(c, seed: 7)
                let (positions, directions) = inputs(c, random: 200, seed: 8)
                let n = positions.count / 3
                let cpu = cpuForward(net, positions, directions)
                let device = try VulkanTrainingNetwork(network: net, context: context)
                let (rgb, sigma) = try device.forward(positions: positions, directions: directions)
                let gpu = try device.activationValues()
                func check(_ name: String, _ a: [Float], _ b: [Float], _ count: Int) {
                    let scale = max(1, b[0..<count].map { abs($0) }.max() ?? 0)
                    var worst: Float = 0
                    for i in 0..<count { worst = max(worst, abs(a[i] - b[i])) }
                    XCTAssertLessThanOrEqual(worst, 2e-4 * scale, "\(name): worst \(worst), scale \(scale)")
                }
                check("encoding", gpu.encoded, cpu.encoded, n * c.encodingWidth)
                for (k, h) in gpu.densityHidden.enumerated() { check("density hidden \(k)", h, cpu.densityHidden[k], n * c.densityWidth) }
                check("colour input (density outputs, SH)", gpu.colorInput, cpu.colorInput, n * c.colorInputWidth)
                for (k, h) in gpu.colorHidden.enumerated() { check("colour hidden \(k)", h, cpu.colorHidden[k], n * c.colorWidth) }
                check("logits", gpu.logits, cpu.colorLogits, 3 * n)
                check("rgb", rgb, cpu.rgb, 3 * n)
                // σ = exp(raw): relative.
                for i in 0..<n { XCTAssertEqual(sigma[i], cpu.sigma[i], accuracy: 2e-4 * max(cpu.sigma[i], 1e-6)) }
            }
        }
    }

    /// dL/dθ for L = Σ a·rgb + b·σ, GPU against CPU, range by range (each MLP layer, each grid level).
    /// Both are float32 evaluations of the same sums, in different orders: each gradient is a sum of at
    /// most a few hundred float32 products of O(1) terms (≤ 2^9·u ≈ 3e-5 of the largest gradient even if
    /// every rounding adds up), plus the activations' own rounding (≈1e-6 relative): 2e-4 of the range's
    /// largest gradient, as in the CPU path's finite-difference test. `steepDensity` scales the density
    /// output's row 0 so that half the log-densities lie beyond ±25, where instant-ngp's derivative
    /// clamps at ±15.
    func checkNetworkGradient(_ c: HashGridConfiguration, steepDensity: Bool, samples: Int = 250, context: ComputeContext) throws {
        var net = try network(c, seed: 9)
        let (positions, directions) = inputs(c, random: samples, seed: 10)
        // Sums of up to n terms: beyond a few thousand samples the worst-case bound n·u exceeds 2e-4.
        let tolerance = max(2e-4, 2 * Float(samples) * 0x1p-24)
        if steepDensity {
            // Scale the density output's row 0 so that the median |log-density| becomes 25.
            let densityOutput = c.densityLayers.last!
            let densityOutputStart = c.densityParameterCount - densityOutput.outputs * densityOutput.inputs
            let unscaled = cpuForward(net, positions, directions)
            let raw = (0..<(positions.count / 3)).map { abs(unscaled.colorInput[$0 * c.colorInputWidth]) }.sorted()
            let factor = 25 / raw[raw.count / 2]
            for k in 0..<densityOutput.inputs { net.parameters[densityOutputStart + k] *= factor }
        }
        let n = positions.count / 3
        var generator = SeededGenerator(seed: 11)
        let a = (0..<(3 * n)).map { _ in generator.unitFloat() * 2 - 1 }
        // σ's gradient small where σ is huge, as compositing makes it (dL/dσ ∝ dt·T).
        let b = (0..<n).map { _ in (generator.unitFloat() * 2 - 1) * (steepDensity ? 1e-6 : 1) }
        let activations = cpuForward(net, positions, directions)
        if steepDensity {
            let raw = (0..<n).map { activations.colorInput[$0 * c.colorInputWidth] }
            XCTAssertGreaterThan(raw.filter { $0 > 15 }.count, n / 10, "too few log-densities above 15 to test the clamp")
        }
        var cpu = [Float](repeating: 0, count: c.parameterCount)
        net.backward(activations, rgbGradient: a, sigmaGradient: b, gradients: &cpu, scratch: HashGridBackwardScratch())
        var ranges: [(String, Range<Int>)] = []
        var offset = 0
        for (k, shape) in c.densityLayers.enumerated() {
            ranges.append(("density layer \(k)", offset..<(offset + shape.outputs * shape.inputs))); offset += shape.outputs * shape.inputs
        }
        for (k, shape) in c.colorLayers.enumerated() {
            ranges.append(("colour layer \(k)", offset..<(offset + shape.outputs * shape.inputs))); offset += shape.outputs * shape.inputs
        }
        for (l, level) in c.levelGeometry.enumerated() {
            let start = c.gridParameterOffset + level.tableOffset * c.featuresPerLevel
            ranges.append(("grid level \(l)\(level.isDense ? " (dense)" : " (hashed)")", start..<(start + level.tableSize * c.featuresPerLevel)))
        }
        for method in methods(context) {
            let device = try VulkanTrainingNetwork(network: net, context: context, scatterMethod: method)
            try device.forward(positions: positions, directions: directions)
            try device.backward(rgbGradient: a, sigmaGradient: b)
            let gpu = try device.gradientValues()
            for (name, range) in ranges {
                let scale = range.map { abs(cpu[$0]) }.max() ?? 0
                XCTAssertGreaterThan(scale, 0, "\(name): no gradient reached these parameters")
                let worst = range.map { abs(gpu[$0] - cpu[$0]) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, tolerance * scale, "\(method) \(name): worst |GPU − CPU| \(worst), scale \(scale)")
            }
            // The colour output layer's padding rows: exactly 0, as on the CPU.
            let last = c.colorLayers.last!
            let lastStart = c.gridParameterOffset - last.outputs * last.inputs
            XCTAssertTrue(gpu[(lastStart + 3 * last.inputs)..<c.gridParameterOffset].allSatisfy { $0 == 0 })
        }
    }

    func testNetworkGradientMatchesCPU() throws {
        try onVulkan { context in
            try checkNetworkGradient(small, steepDensity: false, context: context)
            try checkNetworkGradient(wide, steepDensity: false, context: context)
        }
    }

    /// 70,000 samples: more than lavapipe's 65,535 loop iterations per invocation in the sample loops of
    /// the weight gradient and the deterministic scatter, which the host splits into chunks (without
    /// them the sums silently lost about half their terms). Sums of n terms are within n·u of each
    /// other at worst: 2·n·u ≈ 8e-3 of the largest gradient, still far below a lost half.
    func testLongBatchesMatchCPU() throws {
        try onVulkan { context in try checkNetworkGradient(small, steepDensity: false, samples: 70_000, context: context) }
    }

    /// Log-densities beyond ±15: σ's derivative must be exp(clamp(raw, −15, 15)) on both paths
    /// (an unclamped exp(40·…) would be off by orders of magnitude).
    func testDensityDerivativeClampMatchesCPU() throws {
        try onVulkan { context in try checkNetworkGradient(small, steepDensity: true, context: context) }
    }

    /// Three Adam updates on both paths from the same gradients, with some grid gradients exactly 0
    /// (those parameters and their state must not move). Per-parameter step counts must match exactly;
    /// parameters and moments within a few float32 roundings of each update: the update
    /// lr·debias·m/(√v + ε) is a handful of roundings (the device's √ may be 1–3 ulp off), so
    /// 1e-6·|θ| + 1e-5·lr per step bounds the difference.
    func testAdamMatchesCPU() throws {
        try onVulkan { context in
            let c = small
            let net = try network(c, seed: 12)
            let device = try VulkanTrainingNetwork(network: net, context: context)
            var options = TrainingOptions()
            options.l2Regularization = 1e-3
            let optimizer = AdamOptimizer(parameterCount: c.parameterCount, matrixCount: net.matrixParameterCount)
            var parameters = net.parameters
            var generator = SeededGenerator(seed: 13)
            var untouched = Set<Int>()
            for step in 0..<3 {
                var gradients = (0..<c.parameterCount).map { _ in generator.unitFloat() * 2 - 1 }
                for i in stride(from: c.gridParameterOffset + step, to: c.parameterCount, by: 3) { gradients[i] = 0; if step == 0 { untouched.insert(i) } }
                for i in untouched { gradients[i] = 0 }
                try device.gradients.copy(from: gradients)
                let lr = Float(1e-2) * Float(step + 1)
                optimizer.step(parameters: &parameters, gradients: &gradients, options: options, learningRate: lr)
                try device.step(options: options, learningRate: lr)
            }
            let gpu = try device.parameterValues()
            let state = try device.adamState()
            XCTAssertEqual(state.steps, optimizer.steps)
            var worst: Float = 0
            for i in 0..<c.parameterCount {
                worst = max(worst, abs(gpu[i] - parameters[i]) - 1e-6 * abs(parameters[i]))
                XCTAssertEqual(state.firstMoments[i], optimizer.firstMoments[i], accuracy: 1e-6 * max(1, abs(optimizer.firstMoments[i])))
                XCTAssertEqual(state.secondMoments[i], optimizer.secondMoments[i], accuracy: 1e-6 * max(1, abs(optimizer.secondMoments[i])))
            }
            XCTAssertLessThanOrEqual(worst, 3 * 1e-5 * 3e-2)
            for i in untouched {
                XCTAssertEqual(gpu[i], net.parameters[i])
                XCTAssertEqual(state.steps[i], 0)
            }
            // The grid gradient is consumed (cleared) by the update.
            XCTAssertTrue(try device.gradientValues()[c.gridParameterOffset...].allSatisfy { $0 == 0 })
        }
    }

    func testBadInputIsRefusedBeforeDispatch() throws {
        try onVulkan { context in
            let device = try VulkanTrainingNetwork(network: try network(small, seed: 14), context: context)
            XCTAssertThrowsError(try device.forward(positions: [0, 0], directions: [0, 0]))
            XCTAssertThrowsError(try device.forward(positions: [0, .nan, 0], directions: [1, 0, 0]))
            try device.forward(positions: [0.5, 0.5, 0.5], directions: [1, 0, 0])
            XCTAssertThrowsError(try device.backward(rgbGradient: [0, 0], sigmaGradient: [0]))
            XCTAssertThrowsError(try device.backward(rgbGradient: [0, 0, .infinity], sigmaGradient: [0]))
            try device.forward(positions: [0.5, 0.5, 0.5], directions: [1, 0, 0], densityOnly: true)
            XCTAssertThrowsError(try device.backward(rgbGradient: [0, 0, 0], sigmaGradient: [0]))
        }
    }
}

/// ``NeRFTrainer`` on a Vulkan context against the CPU path, on NeRFTrainingTests' capture.
final class NeRFVulkanTrainerTests: XCTestCase {
    /// Fewer rays and samples than NeRFTrainingTests.options: lavapipe runs the training kernels on the
    /// CPU, and the comparisons need only a batch.
    static var options: TrainingOptions {
        var options = NeRFTrainingTests.options
        options.batchRays = 256
        options.maxSamplesPerStep = 1 << 12
        return options
    }

    /// One step on each backend from the same seed and density grid: the same rays and samples (marched on
    /// the device on Vulkan), the same samples kept after compaction, a loss equal to float32 rounding, and the same
    /// gradient. Adam's first step sets m = (1 − β1)·g, so the first moments compare the whole gradient
    /// (the grid's included, which Adam clears) range by range within 2e-4 of the range's largest, the
    /// tolerance of the network gradient tests. The parameters then move by lr·sign(g) (Adam's first step
    /// normalises): they must agree to float32 rounding wherever the gradient is above that tolerance;
    /// where it is within it (rounding noise around 0) the sign, and so the step, may differ.
    func testVulkanTrainingStepEqualsCPUStep() throws {
        try onVulkan { context in
            let dataset = NeRFTrainingTests.capture
            let c = NeRFTrainingTests.configuration
            let cpu = try NeRFTrainer(context: Backends.cpu, dataset: dataset, configuration: c, options: Self.options)
            let gpu = try NeRFTrainer(context: context, dataset: dataset, configuration: c, options: Self.options)
            XCTAssertEqual(cpu.network.parameters, gpu.network.parameters)
            // One density grid for both (the device's update differs by float32 rounding of σ, which can
            // move a cell across the threshold; NeRFVulkanPipelineTests compares the updates): the CPU's.
            try cpu.updateDensityGrid()
            try gpu.updateDensityGrid()
            try gpu.storedGrid.restore(values: cpu.densityGrid.values, updates: 1)
            try gpu.pipeline!.grid.upload(gpu.storedGrid)
            gpu.hostGridStale = false
            let a = try cpu.trainStep(updatingGrid: false), b = try gpu.trainStep(updatingGrid: false)
            XCTAssertEqual(a.rays, b.rays)
            XCTAssertEqual(a.samples, b.samples)
            XCTAssertEqual(a.usedSamples, b.usedSamples)
            XCTAssertGreaterThan(a.samples, 1000, "too few samples for a meaningful step")
            XCTAssertEqual(a.loss, b.loss, accuracy: 1e-4 * a.loss)
            let device = try XCTUnwrap(gpu.deviceNetwork)
            let gpuFirst = try device.adamState().firstMoments
            let cpuFirst = cpu.optimizer.firstMoments
            var ranges: [(String, Range<Int>)] = []
            var offset = 0
            for (k, shape) in (c.densityLayers + c.colorLayers).enumerated() {
                let rows = k == c.densityLayers.count + c.colorLayers.count - 1 ? 3 : shape.outputs
                ranges.append(("MLP layer \(k)", offset..<(offset + rows * shape.inputs))); offset += shape.outputs * shape.inputs
            }
            for (l, level) in c.levelGeometry.enumerated() {
                let start = c.gridParameterOffset + level.tableOffset * c.featuresPerLevel
                ranges.append(("grid level \(l)", start..<(start + level.tableSize * c.featuresPerLevel)))
            }
            let lr = Self.options.learningRate
            let before = try HashGridNetwork.initialized(configuration: c, seed: Self.options.seed).parameters
            for (name, range) in ranges {
                let scale = range.map { abs(cpuFirst[$0]) }.max() ?? 0
                XCTAssertGreaterThan(scale, 0, "\(name): no gradient")
                let worst = range.map { abs(gpuFirst[$0] - cpuFirst[$0]) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, 2e-4 * scale, "\(name): first moments (0.1·gradient) differ by \(worst), scale \(scale)")
                var flips = 0, bad = 0
                for i in range {
                    let d = abs(gpu.network.parameters[i] - cpu.network.parameters[i])
                    if d <= 1e-6 * abs(before[i]) + 1e-4 * lr { continue }
                    if abs(cpuFirst[i]) <= 2e-4 * scale && d <= 2.001 * lr { flips += 1 } else { bad += 1 }
                }
                XCTAssertEqual(bad, 0, "\(name): parameters that moved differently with a clear gradient (\(flips) within the noise)")
            }
        }
    }

    /// With the deterministic scatter every Vulkan kernel sums in a fixed order, so two runs from one
    /// seed give the same bits (as the CPU path does); a different seed trains differently.
    func testDeterministicScatterMakesVulkanTrainingReproducible() throws {
        try onVulkan { context in
            func run(seed: UInt64) throws -> [Float] {
                var options = Self.options
                options.seed = seed
                let trainer = try NeRFTrainer(context: context, dataset: NeRFTrainingTests.capture, configuration: NeRFTrainingTests.configuration,
                                              options: options, scatterMethod: .deterministic)
                for _ in 0..<3 { try trainer.trainStep() }
                return trainer.network.parameters
            }
            let a = try run(seed: 7), b = try run(seed: 7), c = try run(seed: 8)
            XCTAssertTrue(a.map(\.bitPattern) == b.map(\.bitPattern), "two deterministic Vulkan runs with one seed differ")
            XCTAssertFalse(a == c, "a different seed should train differently")
        }
    }

    /// Steps of the short Vulkan run (256 rays, ≤ 4096 samples per step).
    static let shortRunSteps = 150
    /// Held-out PSNR the short run must pass. Measured on lavapipe (2 cores, atomic scatter, 3 runs):
    /// the untrained network scores 10.7–12.4 dB on the 4 held-out views and 150 steps reach a mean of
    /// 19.81, 19.89 and 19.84 dB (13–14 s each) with the density grid updated on the host, and 19.79 dB
    /// (13.9 s) with the whole step on the device since 2026-12-06 (the CPU path: 19.82 dB). While the
    /// device's occupancy threshold came from a plain fp32 sum it reached only 19.24–19.27 dB: the mean
    /// was biased high, so fewer cells were occupied — the drop this test would show for such a bias
    /// is ~0.6 dB, too small for the threshold, so NeRFVulkanPipelineTests pins the mean itself
    /// (testOccupancyThresholdOfANearlyUniformGrid). The threshold sits ~3 dB below, as NeRFTrainingTests'
    /// does on the CPU, so that the atomic scatter's run-to-run rounding cannot fail it, while a broken
    /// backward stage (no grid gradient: the mean colour only; no σ gradient: no geometry) stays near
    /// the untrained ~12 dB.
    static let heldOutPSNRThreshold: Float = 17

    /// A short run on Vulkan learns the scene: held-out PSNR rises from the untrained network's past the
    /// threshold, and the density grid carves out empty space, as in NeRFTrainingTests on the CPU.
    func testShortVulkanRunRaisesHeldOutPSNR() throws {
        try onVulkan { context in
            let dataset = NeRFTrainingTests.capture
            let trainer = try NeRFTrainer(context: context, dataset: dataset, configuration: NeRFTrainingTests.configuration, options: Self.options)
            let before = dataset.heldOut.map { trainer.psnr(of: $0) }
            let start = Date()
            for _ in 0..<Self.shortRunSteps { try trainer.trainStep() }
            let after = dataset.heldOut.map { trainer.psnr(of: $0) }
            let mean = after.reduce(0, +) / Float(after.count)
            print("Vulkan training (\(trainer.deviceNetwork!.scatterMethod)): held-out PSNR \(before.map { String(format: "%.2f", $0) }) -> "
                  + "\(after.map { String(format: "%.2f", $0) }) (mean \(mean)) in \(Date().timeIntervalSince(start)) s; "
                  + "grid occupied \(trainer.densityGrid.occupiedFraction); \(trainer.timings)")
            XCTAssertGreaterThan(mean, Self.heldOutPSNRThreshold)
            XCTAssertLessThan(trainer.densityGrid.occupiedFraction, 0.5, "the density grid should have carved out empty space")
        }
    }
}
