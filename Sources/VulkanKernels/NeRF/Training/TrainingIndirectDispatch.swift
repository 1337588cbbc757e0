/// How many samples (or rows) a recorded training pass covers: a number the host knows, or a word of a
/// device buffer that an earlier command of the same batch writes (the march's sample count, the
/// compaction's kept count), at most `bound`. The kernels read it through `trainingCount` in
/// Shaders/common/nerf_training.glsl: the push constant `count` is `bound` and `countWord` the word (or
/// NO_DEVICE_COUNT), and the device count is clamped to the bound there, so every buffer is bound and
/// read for `bound` rows whatever the device wrote.
struct SampleCount {
    /// The host's count, or the capacity of the buffers when the count is a device word.
    let bound: Int
    /// The device word and its dispatch plan; nil for a host count.
    let device: (word: UInt32, plan: TrainingIndirectDispatch)?

    static func host(_ n: Int) -> SampleCount { SampleCount(bound: n, device: nil) }

    /// Word `word` of `plan.counts`, clamped to `capacity`.
    static func device(word: UInt32, capacity: Int, plan: TrainingIndirectDispatch) -> SampleCount {
        SampleCount(bound: capacity, device: (word, plan))
    }

    /// The push constant `countWord`.
    var countWord: UInt32 { device?.word ?? TrainingIndirectDispatch.noDeviceCount }
}

/// The indirect dispatches of a training step whose counts are known only on the device. Each recorded
/// dispatch gets a slot (one per distinct shape: count word, capacity, invocations per sample or fixed
/// workgroups of a chunk); train_dispatch_arguments, recorded right after the command that writes a
/// count, turns the count into every slot's workgroup counts, which vkCmdDispatchIndirect then reads.
///
/// The shape table is host data that the argument kernel reads at execution time: slots added while a
/// batch is recorded are uploaded by ``commitShapes()`` before the batch is submitted (a step records
/// the same shapes every time, so after the first step nothing is uploaded). When a recording needs more
/// slots than the table holds, the table grows and the caller records the batch again.
final class TrainingIndirectDispatch {
    struct Shape: Hashable {
        var word: UInt32
        var capacity: UInt32
        /// Invocations per sample (0 for a fixed-group chunk).
        var perItem: UInt32
        var fixedGroups: UInt32
        var chunkBegin: UInt32
    }

    static let noDeviceCount: UInt32 = 0xFFFF_FFFF
    /// uvec4s per shape in the table (train_dispatch_arguments' `shapes`).
    static let wordsPerShape = 8

    let context: ComputeContext
    /// The words the counts are read from (the pipeline's totals).
    let counts: Tensor<UInt32>
    let specialization: [UInt32]
    let localSize: Int
    let maxGroupsX: Int
    private(set) var shapes: [Shape] = []
    private var slots: [Shape: Int] = [:]
    private(set) var table: Tensor<UInt32>
    private(set) var arguments: Tensor<UInt32>
    private var capacity: Int
    private var uploaded = 0
    private var overflowed = false

    init(counts: Tensor<UInt32>, context: ComputeContext, specialization: [UInt32], localSize: Int, maxGroupsX: Int,
         initialSlots: Int = 64) throws {
        self.counts = counts
        self.context = context
        self.specialization = specialization
        self.localSize = localSize
        self.maxGroupsX = maxGroupsX
        capacity = initialSlots
        (table, arguments) = try Self.makeBuffers(slots: initialSlots, context: context)
    }

    private static func makeBuffers(slots: Int, context: ComputeContext) throws -> (Tensor<UInt32>, Tensor<UInt32>) {
        // Unused rows match no count word.
        let table = try context.tensor([UInt32](repeating: noDeviceCount, count: wordsPerShape * slots), shape: [slots, wordsPerShape])
        return (table, try context.zeros(UInt32.self, shape: [slots, 3]))
    }

    /// The slot of `shape` (added when new). Past the table's capacity it returns slot 0 and marks the
    /// recording as overflowed (``commitShapes()`` then asks for it again).
    func slot(_ shape: Shape) -> Int {
        if let slot = slots[shape] { return slot }
        guard shapes.count < capacity else {
            overflowed = true
            return 0
        }
        slots[shape] = shapes.count
        shapes.append(shape)
        return shapes.count - 1
    }

    /// Records `kernel` over `count` samples, `perItem` invocations each (or, with `fixedGroups`, that
    /// many workgroups, skipped on the device when `chunkBegin` > 0 is not below the count).
    func dispatch<Interface>(_ batch: CommandBatch, _ kernel: Kernel<Interface>, _ bindings: Interface.Bindings,
                             push: Interface.PushConstants, word: UInt32, capacity: Int, perItem: Int,
                             fixedGroups: Int = 0, chunkBegin: Int = 0) throws {
        precondition(capacity >= 0 && UInt64(capacity) * UInt64(max(perItem, 1)) < UInt64(Int32.max),
                     "indirect dispatch of \(capacity) × \(perItem) invocations")
        let slot = slot(Shape(word: word, capacity: UInt32(capacity), perItem: UInt32(perItem), fixedGroups: UInt32(fixedGroups),
                              chunkBegin: UInt32(chunkBegin)))
        try batch.dispatchIndirect(kernel, bindings, push: push, arguments: arguments.storage, byteOffset: 12 * slot)
    }

    /// Records train_dispatch_arguments for the slots of count word `word` (after the command that writes it).
    func encodeArguments(_ batch: CommandBatch, word: UInt32) throws {
        try batch.dispatch(Kernel<Shader.nerf_train_dispatch_arguments>(.base, specialization: specialization), .init(
            shapes: BufferBinding(table.storage, .storageRead, byteCount: 4 * table.count),
            arguments: BufferBinding(arguments.storage, .storageWrite, byteCount: 4 * arguments.count),
            deviceCounts: BufferBinding(counts.storage, .storageRead, byteCount: 4 * counts.count)),
            push: .init(shapeCount: UInt32(capacity), countWord: word, maxGroupsX: UInt32(maxGroupsX)),
            groups: ((capacity + localSize - 1) / localSize, 1, 1))
    }

    /// Call after recording a batch that used this plan, before submitting it: uploads the shapes added
    /// since the last call and returns true, or, when the recording ran out of slots, grows the table
    /// and returns false (discard that batch and record it again).
    func commitShapes() throws -> Bool {
        if overflowed {
            overflowed = false
            capacity *= 2
            (table, arguments) = try Self.makeBuffers(slots: capacity, context: context)
            uploaded = 0
            return false
        }
        if uploaded < shapes.count {
            var rows: [UInt32] = []
            rows.reserveCapacity(Self.wordsPerShape * capacity)
            for shape in shapes {
                rows += [shape.word, shape.capacity, shape.perItem, shape.fixedGroups, shape.chunkBegin, 0, 0, 0]
            }
            rows += [UInt32](repeating: Self.noDeviceCount, count: Self.wordsPerShape * (capacity - shapes.count))
            try table.copy(from: rows)
            uploaded = shapes.count
        }
        return true
    }
}
