import Glibc

/// The occupancy estimate kept during training, laid out and maintained as instant-ngp keeps its density
/// grid (Müller et al. 2022, appendix E.2; `update_density_grid_nerf` in instant-ngp's testbed):
///
/// - `cascades` grids of `resolution`³ cells, each in Morton order; cascade c covers the cube of side 2^c
///   around the centre of the unit cube (instant-ngp's coordinates, where the unit cube is [0, 1]³).
/// - Each cell holds an **optical thickness per minimum step**, σ·Δt_min with Δt_min = √3/1024 of the
///   unit cube's side (instant-ngp's `MIN_CONE_STEPSIZE`), or −1 for cells no training camera sees (never
///   updated, never occupied).
/// - An update evaluates σ at one random point in each of a set of cells (all cells during the first
///   `warmupSteps`, then a random quarter of all cells plus a random quarter drawn among the occupied
///   ones; ``DensityGridDraws``, a counter-based generator the device shares), and sets
///   value ← max(value·decay, new) (decay 0.95), leaving cells at −1 alone.
/// - A cell is occupied when its value exceeds min(0.01, mean of max(value, 0) over cascade 0) (instant-ngp's
///   `update_density_grid_mean_and_bitfield`: unseen cells count as 0, coarser cascades not at all); a cell of
///   cascade c + 1 that overlaps cascade c is also occupied when any of the 8 cascade-c cells inside it is
///   (instant-ngp's `bitfield_max_pool`).
public final class TrainingDensityGrid: @unchecked Sendable {
    public let resolution: Int
    public let cascades: Int
    /// World box of cascade 0 (instant-ngp's unit cube).
    public let unitCube: AABB
    /// cascades × resolution³ values in Morton order.
    public private(set) var values: [Float]
    /// Occupancy derived from `values` after each update (1 = occupied; cascades × resolution³, Morton order).
    public private(set) var occupied: [UInt8]
    public private(set) var meanThickness: Float = 0
    public private(set) var updates = 0

    /// instant-ngp's `NERF_MIN_OPTICAL_THICKNESS`.
    public static let thicknessThreshold: Float = 0.01

    public init(resolution: Int, cascades: Int, unitCube: AABB) throws {
        guard resolution >= 8, resolution <= 512, resolution & (resolution - 1) == 0 else {
            throw KernelError.invalidParameter(op: "train", name: "density grid resolution (power of two, 8…512)", value: "\(resolution)")
        }
        guard (1...8).contains(cascades) else { throw KernelError.invalidParameter(op: "train", name: "cascades", value: "\(cascades)") }
        self.resolution = resolution
        self.cascades = cascades
        self.unitCube = unitCube
        let cells = cascades * resolution * resolution * resolution
        values = [Float](repeating: 0, count: cells)
        occupied = [UInt8](repeating: 1, count: cells)
    }

    var cellsPerCascade: Int { resolution * resolution * resolution }

    /// Unit-cube (instant-ngp) coordinates of a world point.
    @inline(__always)
    func local(_ p: SIMD3<Float>) -> SIMD3<Float> { (p - unitCube.lower) / unitCube.size.x }

    /// Centre of a cell, in unit-cube coordinates.
    func cellCentre(cascade: Int, x: Int, y: Int, z: Int) -> SIMD3<Float> {
        let side = Float(1 << cascade)
        return SIMD3(repeating: 0.5 - side / 2) + (SIMD3(Float(x), Float(y), Float(z)) + 0.5) * side / Float(resolution)
    }

    /// Marks cells whose centre no camera sees as −1 (instant-ngp's `mark_untrained_density_grid`).
    public func markUnseenCells(cameras: [Camera]) {
        let r = resolution
        let shared = UncheckedSendable(values.withUnsafeMutableBufferPointer { $0.baseAddress! })
        let cube = unitCube
        CPUParallel.forEachChunk(cascades * r, costPerItem: r * r * cameras.count * 20) { range in
            for slab in range {
                let cascade = slab / r, z = slab % r
                for y in 0..<r {
                    for x in 0..<r {
                        let centre = cube.lower + cellCentre(cascade: cascade, x: x, y: y, z: z) * cube.size.x
                        let seen = cameras.contains { camera in
                            guard let p = camera.project(centre) else { return false }
                            return p.x >= 0 && p.y >= 0 && p.x < Float(camera.width) && p.y < Float(camera.height)
                        }
                        if !seen { shared.value[cascade * r * r * r + NGPDensityGrid.mortonIndex(x, y, z)] = -1 }
                    }
                }
            }
        }
        rebuildOccupancy()
    }

    /// The world positions of one update's cells (one random point in each) and their value indices:
    /// the draws of ``DensityGridDraws`` for (`seed`, `step`), without those that found no cell and those
    /// whose cell no camera sees. train_density_draws makes the same draws on the device.
    func updateSamples(step: Int, warmupSteps: Int, seed: UInt64) -> (indices: [Int], positions: [Float]) {
        let draws = DensityGridDraws(seed: seed, step: step, resolution: resolution, cascades: cascades, warmup: step < warmupSteps)
        var indices: [Int] = [], positions: [Float] = []
        indices.reserveCapacity(draws.count)
        positions.reserveCapacity(3 * draws.count)
        let perCascade = cellsPerCascade, r = resolution
        for d in 0..<draws.count {
            guard let index = draws.cell(d, occupied: { occupied[$0] != 0 }), values[index] >= 0 else { continue }
            let cascade = index / perCascade
            let (x, y, z) = Self.mortonDecode(index % perCascade)
            let jitter = draws.jitter(d)
            let side = Float(1 << cascade)
            let local = SIMD3(repeating: 0.5 - side / 2) + (SIMD3(Float(x), Float(y), Float(z)) + jitter) * side / Float(r)
            let world = unitCube.lower + local * unitCube.size.x
            indices.append(index)
            positions += [world.x, world.y, world.z]
        }
        return (indices, positions)
    }

    /// Applies one update: `thickness[k]` = σ·Δt_min at the point sampled in cell `indices[k]`.
    func applyUpdate(indices: [Int], thickness: [Float], decay: Float) {
        var fresh = [Float](repeating: 0, count: values.count)
        for (k, index) in indices.enumerated() { fresh[index] = max(fresh[index], thickness[k]) }
        for i in values.indices where values[i] >= 0 { values[i] = max(values[i] * decay, fresh[i]) }
        updates += 1
        rebuildOccupancy()
    }

    func rebuildOccupancy() {
        var sum: Double = 0
        for i in 0..<cellsPerCascade { sum += Double(max(values[i], 0)) }
        meanThickness = Float(sum / Double(cellsPerCascade))
        let threshold = min(Self.thicknessThreshold, meanThickness)
        for i in values.indices { occupied[i] = values[i] > threshold ? 1 : 0 }
        // A coarser cascade's inner half also carries the finer cascade's occupancy.
        let r = resolution, perCascade = cellsPerCascade
        guard cascades > 1 else { return }
        for cascade in 1..<cascades {
            for z in 0..<r { for y in 0..<r { for x in 0..<r {
                let fine = (cascade - 1) * perCascade + NGPDensityGrid.mortonIndex(x, y, z)
                guard occupied[fine] != 0 else { continue }
                let coarse = cascade * perCascade + NGPDensityGrid.mortonIndex(x / 2 + r / 4, y / 2 + r / 4, z / 2 + r / 4)
                occupied[coarse] = 1
            } } }
        }
    }

    /// Replaces the values (a resumed snapshot's grid) and rebuilds the occupancy from them, as after the
    /// `updates`-th update.
    public func restore(values newValues: [Float], updates count: Int) throws {
        guard newValues.count == values.count, newValues.allSatisfy({ $0.isFinite && $0 >= -1 }) else {
            throw KernelError.invalidParameter(op: "train", name: "density grid values",
                                               value: "\(newValues.count) values (expected \(values.count) finite values ≥ −1)")
        }
        values = newValues
        updates = count
        if count > 0 { rebuildOccupancy() } else { occupied = [UInt8](repeating: 1, count: values.count) }
    }

    // MARK: Device copies (VulkanDensityGrid)

    /// Takes the values, occupancy and mean of a device-resident copy.
    func replaceState(values newValues: [Float], occupied newOccupied: [UInt8], meanThickness mean: Float) {
        precondition(newValues.count == values.count && newOccupied.count == occupied.count)
        values = newValues
        occupied = newOccupied
        meanThickness = mean
    }

    /// Counts an update applied to the device-resident copy.
    func countDeviceUpdate() { updates += 1 }

    /// Fraction of non-negative cells that are occupied.
    public var occupiedFraction: Float {
        var seen = 0, busy = 0
        for i in values.indices where values[i] >= 0 { seen += 1; if occupied[i] != 0 { busy += 1 } }
        return seen > 0 ? Float(busy) / Float(seen) : 0
    }

    /// The grid as instant-ngp's snapshot stores it (fp16 values, Morton order, −1 kept).
    public func snapshotGrid() throws -> NGPDensityGrid {
        try NGPDensityGrid(resolution: resolution, cascades: cascades, values: values.map { Float16(min($0, 65504)) })
    }

    static func mortonDecode(_ index: Int) -> (Int, Int, Int) {
        func compact(_ v: Int) -> Int {
            var v = v & 0x0924_9249
            v = (v | v >> 2) & 0x030c_30c3
            v = (v | v >> 4) & 0x0300_f00f
            v = (v | v >> 8) & 0x0300_00ff
            v = (v | v >> 16) & 0x0000_03ff
            return v
        }
        return (compact(index), compact(index >> 1), compact(index >> 2))
    }
}

/// The random draws of one density-grid update, from a counter-based generator: each number is a hash of
/// (seed, update step, draw index, purpose), so draws are independent of each other and of the order
/// they are made in, and the device (Shaders/common/nerf_grid_draws.glsl, train_density_draws) makes the
/// same ones. During warm-up draw d is cell d; afterwards each cascade has 2·u draws (u = resolution³/4),
/// the first u uniformly random cells, the other u the first occupied cell among up to ``tries`` random
/// ones (none when all miss), as instant-ngp's update_density_grid_nerf lays them out.
struct DensityGridDraws {
    let seed: UInt64
    let step: UInt32
    let resolution: Int
    let cascades: Int
    let warmup: Bool

    /// instant-ngp's generate_grid_samples_nerf_nonuniform also tries 10 cells.
    static let tries: UInt32 = 10
    static let jitterPurpose: UInt32 = 16

    init(seed: UInt64, step: Int, resolution: Int, cascades: Int, warmup: Bool) {
        self.seed = seed
        self.step = UInt32(truncatingIfNeeded: step)
        self.resolution = resolution
        self.cascades = cascades
        self.warmup = warmup
    }

    var perCascade: Int { resolution * resolution * resolution }
    var uniformDraws: Int { perCascade / 4 }
    var count: Int { warmup ? cascades * perCascade : cascades * 2 * uniformDraws }

    /// Chris Wellons' "lowbias32" integer finaliser (hash-prospector; public domain).
    @inline(__always)
    static func mix(_ value: UInt32) -> UInt32 {
        var x = value
        x ^= x >> 16
        x &*= 0x7feb_352d
        x ^= x >> 15
        x &*= 0x846c_a68b
        x ^= x >> 16
        return x
    }

    @inline(__always)
    func hash(_ draw: Int, _ purpose: UInt32) -> UInt32 {
        var h = Self.mix(UInt32(truncatingIfNeeded: seed) ^ 0x9e37_79b9)
        h = Self.mix(h ^ UInt32(truncatingIfNeeded: seed >> 32))
        h = Self.mix(h ^ step)
        h = Self.mix(h ^ UInt32(truncatingIfNeeded: draw))
        return Self.mix(h ^ purpose)
    }

    /// The cell of draw `d` (cascade·resolution³ + Morton index), or nil when an occupied-cell draw
    /// found none.
    func cell(_ d: Int, occupied: (Int) -> Bool) -> Int? {
        if warmup { return d }
        let cascade = d / (2 * uniformDraws), j = d % (2 * uniformDraws)
        let base = cascade * perCascade
        if j < uniformDraws { return base + Int(hash(d, 0) % UInt32(perCascade)) }
        for t in 0..<Self.tries {
            let candidate = base + Int(hash(d, t) % UInt32(perCascade))
            if occupied(candidate) { return candidate }
        }
        return nil
    }

    /// Draw `d`'s point within its cell, each coordinate in [0, 1) with 24 random bits.
    func jitter(_ d: Int) -> SIMD3<Float> {
        func unit(_ purpose: UInt32) -> Float { Float(hash(d, purpose) >> 8) * (1 / 16_777_216) }
        return SIMD3(unit(Self.jitterPurpose), unit(Self.jitterPurpose + 1), unit(Self.jitterPurpose + 2))
    }
}
