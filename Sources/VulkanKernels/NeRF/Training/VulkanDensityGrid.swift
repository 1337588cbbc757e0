/// ``TrainingDensityGrid`` resident on a Vulkan device during training: the values (optical thickness
/// per minimum step, −1 for unseen cells) and the occupancy bitfield the training march reads (bit
/// i & 31 of word i >> 5 for cell i = cascade·resolution³ + Morton index), updated there as the CPU path
/// updates its copy:
///
/// - train_density_draws draws the update's cells and one point in each (``DensityGridDraws``: a
///   counter-based generator, the same draws as the CPU path's; those among occupied cells read the
///   device's bitfield), nothing uploaded;
/// - the network's density-only forward pass evaluates σ at the points, in chunks, all in one batch;
///   train_density_thickness maxes σ·Δt_min into each cell's fresh value; train_density_decay applies
///   value ← max(value·decay, fresh) to the seen cells; train_density_mean and train_density_bitfield
///   derive the threshold, the bitfield and the cascades' max-pooling.
///
/// The host copy of the values is refreshed only when asked (``download()``: snapshots, renders).
final class VulkanDensityGrid {
    let resolution: Int
    let cascades: Int
    let cellCount: Int
    let context: ComputeContext
    let values: Tensor<Float>
    let fresh: Tensor<UInt32>
    let occupancy: Tensor<UInt32>
    let partials: Tensor<Float>
    let stats: Tensor<Float>
    /// Cells of cascade 0 each invocation of train_density_mean's first phase sums.
    let meanChunk: Int
    /// One chunk's drawn cells (train_density_draws → train_density_thickness).
    var cells: Tensor<UInt32>?

    /// Uploads `grid`'s values and occupancy.
    init(grid: TrainingDensityGrid, context: ComputeContext) throws {
        resolution = grid.resolution
        cascades = grid.cascades
        cellCount = grid.values.count
        self.context = context
        let perCascade = resolution * resolution * resolution
        // Both phases of the mean loop at most 32,768 times (lavapipe ends an invocation at 65,535).
        meanChunk = max(256, (perCascade + 32_767) / 32_768)
        values = try context.zeros(Float.self, shape: [cellCount])
        fresh = try context.zeros(UInt32.self, shape: [cellCount])
        occupancy = try context.zeros(UInt32.self, shape: [cellCount / 32])
        partials = try context.zeros(Float.self, shape: [2 * ((perCascade + meanChunk - 1) / meanChunk)])
        stats = try context.zeros(Float.self, shape: [2])
        try upload(grid)
    }

    /// Replaces the device's values and occupancy by `grid`'s (after a resume, or at the start).
    func upload(_ grid: TrainingDensityGrid) throws {
        precondition(grid.values.count == cellCount)
        try values.copy(from: grid.values)
        try occupancy.copy(from: Self.pack(grid.occupied))
    }

    /// The device's occupancy as one byte per cell (1 = occupied).
    func downloadOccupancy() throws -> [UInt8] {
        let words = try occupancy.toArray()
        return (0..<cellCount).map { UInt8(truncatingIfNeeded: words[$0 >> 5] >> UInt32($0 & 31) & 1) }
    }

    /// The device's values, occupancy (one byte per cell) and cascade 0's mean thickness.
    func download() throws -> (values: [Float], occupied: [UInt8], mean: Float) {
        (try values.toArray(), try downloadOccupancy(), try stats.toArray()[0])
    }

    static func pack(_ occupied: [UInt8]) -> [UInt32] {
        var words = [UInt32](repeating: 0, count: (occupied.count + 31) / 32)
        for (i, o) in occupied.enumerated() where o != 0 { words[i >> 5] |= 1 << UInt32(i & 31) }
        return words
    }

    /// One update, in one command batch: the draws of ``DensityGridDraws`` for (`seed`, `step`)
    /// (train_density_draws: cells and points in the field's unit cube, from `unitCube`, the grid's world
    /// box, and `bounds`, the field's), σ at the points through `network`'s density-only forward pass,
    /// σ·`scale` maxed into the cells, then decay, threshold and bitfield (see the type's documentation).
    /// The draws run in chunks of the network's activation buffers.
    func update(seed: UInt64, step: Int, warmup: Bool, unitCube: AABB, bounds: AABB, scale: Float, decay: Float,
                network: VulkanTrainingNetwork) throws {
        guard scale.isFinite, decay.isFinite, bounds.size.x > 0, bounds.size.y > 0, bounds.size.z > 0 else {
            throw KernelError.invalidParameter(op: "train density grid", name: "scale/decay/bounds", value: "\(scale), \(decay), \(bounds)")
        }
        let draws = DensityGridDraws(seed: seed, step: step, resolution: resolution, cascades: cascades, warmup: warmup)
        let total = draws.count
        let b = try network.activations(for: min(total, 1 << 18))
        let chunk = b.capacity
        if cells == nil || cells!.count < chunk { cells = try context.empty(UInt32.self, shape: [chunk]) }
        let cellBuffer = cells!
        try context.batch { batch in
            for begin in stride(from: 0, to: total, by: chunk) {
                let n = min(chunk, total - begin)
                try encodeDraws(batch, draws, unitCube: unitCube, bounds: bounds, begin: begin, count: n, cells: cellBuffer,
                                positions: b.positions, network: network)
                try network.encodeForward(batch, b, .host(n), densityOnly: true)
                try batch.dispatch(Kernel<Shader.nerf_train_density_thickness>(.base, specialization: network.specialization), .init(
                    indices: BufferBinding(cellBuffer.storage, .storageRead, byteCount: 4 * n),
                    sigma: BufferBinding(b.sigma.storage, .storageRead, byteCount: 4 * n),
                    fresh: BufferBinding(fresh.storage, .storageReadWrite, byteCount: 4 * cellCount)),
                    push: .init(count: UInt32(n), scale: scale), groups: network.groups(n))
            }
            try batch.dispatch(Kernel<Shader.nerf_train_density_decay>(.base, specialization: network.specialization), .init(
                values: BufferBinding(values.storage, .storageReadWrite, byteCount: 4 * cellCount),
                fresh: BufferBinding(fresh.storage, .storageReadWrite, byteCount: 4 * cellCount)),
                push: .init(count: UInt32(cellCount), decay: decay), groups: network.groups(cellCount))
            try encodeOccupancy(batch, network: network)
        }
    }

    /// train_density_draws for draws [begin, begin + count) of `draws`: their cells (GRID_NO_CELL for
    /// none, unseen or outside the field's box) into `cells`, their points in the field's unit cube into
    /// `positions`.
    func encodeDraws(_ batch: CommandBatch, _ draws: DensityGridDraws, unitCube: AABB, bounds: AABB, begin: Int, count n: Int,
                     cells: Tensor<UInt32>, positions: Tensor<Float>, network: VulkanTrainingNetwork) throws {
        precondition(cells.count >= n && positions.count >= 3 * n && begin + n <= draws.count)
        try batch.dispatch(Kernel<Shader.nerf_train_density_draws>(.base, specialization: network.specialization), .init(
            occupancy: BufferBinding(occupancy.storage, .storageRead, byteCount: 4 * (cellCount / 32)),
            values: BufferBinding(values.storage, .storageRead, byteCount: 4 * cellCount),
            cells: BufferBinding(cells.storage, .storageWrite, byteCount: 4 * n),
            positions: BufferBinding(positions.storage, .storageWrite, byteCount: 12 * n)),
            push: .init(drawBegin: UInt32(begin), count: UInt32(n), seedLow: UInt32(truncatingIfNeeded: draws.seed),
                        seedHigh: UInt32(truncatingIfNeeded: draws.seed >> 32), step: draws.step, warmup: draws.warmup ? 1 : 0,
                        resolution: UInt32(resolution), cascades: UInt32(cascades),
                        unitLowerX: unitCube.lower.x, unitLowerY: unitCube.lower.y, unitLowerZ: unitCube.lower.z, unitSize: unitCube.size.x,
                        boxLowerX: bounds.lower.x, boxLowerY: bounds.lower.y, boxLowerZ: bounds.lower.z,
                        boxSizeX: bounds.size.x, boxSizeY: bounds.size.y, boxSizeZ: bounds.size.z),
            groups: network.groups(n))
    }

    /// The threshold, the bitfield and the max-pooling of the cascades from the current values.
    func encodeOccupancy(_ batch: CommandBatch, network: VulkanTrainingNetwork) throws {
        let perCascade = resolution * resolution * resolution
        let pieces = (perCascade + meanChunk - 1) / meanChunk
        for phase in 0..<2 {
            try batch.dispatch(Kernel<Shader.nerf_train_density_mean>(.base, specialization: network.specialization), .init(
                values: BufferBinding(values.storage, .storageRead, byteCount: 4 * perCascade),
                partials: BufferBinding(partials.storage, .storageReadWrite, byteCount: 8 * pieces),
                stats: BufferBinding(stats.storage, .storageWrite, byteCount: 8)),
                push: .init(cells: UInt32(perCascade), chunk: UInt32(meanChunk), phase: UInt32(phase),
                            thresholdCap: TrainingDensityGrid.thicknessThreshold),
                groups: network.groups(phase == 0 ? pieces : 1))
        }
        for cascade in 0..<cascades {
            try batch.dispatch(Kernel<Shader.nerf_train_density_bitfield>(.base, specialization: network.specialization), .init(
                values: BufferBinding(values.storage, .storageRead, byteCount: 4 * cellCount),
                stats: BufferBinding(stats.storage, .storageRead, byteCount: 8),
                occupancy: BufferBinding(occupancy.storage, .storageReadWrite, byteCount: 4 * (cellCount / 32))),
                push: .init(cells: UInt32(cellCount), resolution: UInt32(resolution), phase: cascade == 0 ? 0 : 1, cascade: UInt32(cascade)),
                groups: network.groups(cascade == 0 ? cellCount / 32 : perCascade))
        }
    }
}
