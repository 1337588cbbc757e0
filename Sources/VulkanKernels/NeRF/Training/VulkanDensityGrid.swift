/// ``TrainingDensityGrid`` resident on a Vulkan device during training: the values (optical thickness
/// per minimum step, −1 for unseen cells) and the occupancy bitfield the training march reads (bit
/// i & 31 of word i >> 5 for cell i = cascade·resolution³ + Morton index), updated there as the CPU path
/// updates its copy:
///
/// - the host draws the update's cells and one point in each with the trainer's seeded generator
///   (``TrainingDensityGrid/updateSamples(step:warmupSteps:generator:)``, the same draws as on the CPU;
///   its rejection sampling among occupied cells reads the host's occupancy, refreshed from the
///   device's bitfield first: resolution³/8 bytes per cascade) and uploads the cell indices and points;
/// - the network's density-only forward pass evaluates σ at the points on the device, in chunks;
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
    var indices: Tensor<UInt32>?

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

    /// One update: σ at `positions` (3 floats each, the field's unit cube: the points the host drew, only
    /// those inside the field's box) through `network`'s density-only forward pass, σ·`scale` maxed into
    /// the cells `cellIndices`, then decay, threshold and bitfield (see the type's documentation).
    func update(cellIndices: [UInt32], positions: [Float], scale: Float, decay: Float, network: VulkanTrainingNetwork) throws {
        precondition(positions.count == 3 * cellIndices.count)
        guard cellIndices.allSatisfy({ Int($0) < cellCount }), positions.allSatisfy(\.isFinite) else {
            throw KernelError.invalidParameter(op: "train density grid", name: "cells", value: "indices past \(cellCount) or non-finite points")
        }
        let total = cellIndices.count
        if total > 0 {
            let chunk = try network.activations(for: min(total, 1 << 18)).capacity
            if indices == nil || indices!.count < min(total, chunk) { indices = try context.empty(UInt32.self, shape: [min(total, chunk)]) }
            let indexBuffer = indices!
            for begin in stride(from: 0, to: total, by: chunk) {
                let n = min(chunk, total - begin)
                let b = try network.activations(for: n)
                try positions[(3 * begin)..<(3 * (begin + n))].withUnsafeBytes { try context.upload($0, to: b.positions.storage) }
                try cellIndices[begin..<(begin + n)].withUnsafeBytes { try context.upload($0, to: indexBuffer.storage) }
                try context.batch { batch in
                    try network.encodeForward(batch, b, .host(n), densityOnly: true)
                    try batch.dispatch(Kernel<Shader.nerf_train_density_thickness>(.base, specialization: network.specialization), .init(
                        indices: BufferBinding(indexBuffer.storage, .storageRead, byteCount: 4 * n),
                        sigma: BufferBinding(b.sigma.storage, .storageRead, byteCount: 4 * n),
                        fresh: BufferBinding(fresh.storage, .storageReadWrite, byteCount: 4 * cellCount)),
                        push: .init(count: UInt32(n), scale: scale), groups: network.groups(n))
                }
            }
        }
        try context.batch { batch in
            try batch.dispatch(Kernel<Shader.nerf_train_density_decay>(.base, specialization: network.specialization), .init(
                values: BufferBinding(values.storage, .storageReadWrite, byteCount: 4 * cellCount),
                fresh: BufferBinding(fresh.storage, .storageReadWrite, byteCount: 4 * cellCount)),
                push: .init(count: UInt32(cellCount), decay: decay), groups: network.groups(cellCount))
            try encodeOccupancy(batch, network: network)
        }
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
