import CVulkan
import Synchronization

/// A piece of a pool block: a byte range of one `VkBuffer` that covers the whole block.
struct DeviceAllocation: @unchecked Sendable {
    let buffer: VkBuffer
    let offset: Int
    let size: Int
    /// Host address of `offset` when the memory is mapped (unified memory, staging).
    let mapped: UnsafeMutableRawPointer?
    fileprivate let blockID: Int
}

/// Bytes held by a pool, for tests that check that repeated work does not grow memory.
public struct MemoryStatistics: Sendable, Equatable {
    /// `vkAllocateMemory` blocks currently held.
    public var blockCount: Int
    /// Bytes in those blocks.
    public var reservedBytes: Int
    /// Bytes handed out to live tensors (after alignment).
    public var usedBytes: Int
    /// Live sub-allocations.
    public var allocationCount: Int
}

/// Sub-allocates buffers from large `VkDeviceMemory` blocks, never one `vkAllocateMemory` per tensor.
///
/// Each block has one `VkBuffer` bound over all of it; a tensor is an aligned byte range of that buffer.
/// Free ranges are kept sorted and coalesced (first fit). A request larger than half a block gets a
/// dedicated block, released as soon as it is freed; of the shared blocks, one empty block is kept.
final class MemoryPool: @unchecked Sendable {
    private final class Block {
        let id: Int
        let memory: VkDeviceMemory
        let buffer: VkBuffer
        let size: Int
        let mapped: UnsafeMutableRawPointer?
        let dedicated: Bool
        var free: [Range<Int>]
        var live = 0

        init(id: Int, memory: VkDeviceMemory, buffer: VkBuffer, size: Int, mapped: UnsafeMutableRawPointer?, dedicated: Bool) {
            self.id = id; self.memory = memory; self.buffer = buffer; self.size = size
            self.mapped = mapped; self.dedicated = dedicated; free = [0..<size]
        }
    }

    private struct State {
        var blocks: [Int: Block] = [:]
        var nextID = 0
        var usedBytes = 0
    }

    let name: String
    private let device: VkDevice
    private let vk: DeviceFunctions
    private let memoryTypeIndex: UInt32
    private let hostVisible: Bool
    private let alignment: Int
    private let blockSize: Int
    private let maxAllocation: Int
    private let state = Mutex(State())

    /// One usage for every block (tensors are sub-allocated from shared VkBuffers): storage and texel
    /// views, copies, and indirect dispatch arguments (kernels write group counts into tensors that
    /// ``CommandBatch/dispatchIndirect(_:_:pushBytes:arguments:byteOffset:)`` reads).
    static let bufferUsage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT.rawValue | VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT.rawValue
        | VK_BUFFER_USAGE_STORAGE_TEXEL_BUFFER_BIT.rawValue | VK_BUFFER_USAGE_TRANSFER_SRC_BIT.rawValue
        | VK_BUFFER_USAGE_TRANSFER_DST_BIT.rawValue | VK_BUFFER_USAGE_INDIRECT_BUFFER_BIT.rawValue

    init(name: String, device: VkDevice, functions: DeviceFunctions, memoryTypeIndex: UInt32, hostVisible: Bool,
         alignment: Int, blockSize: Int, maxAllocation: Int) {
        self.name = name; self.device = device; vk = functions; self.memoryTypeIndex = memoryTypeIndex
        self.hostVisible = hostVisible; self.alignment = alignment
        self.blockSize = min(blockSize, maxAllocation); self.maxAllocation = maxAllocation
    }

    /// Frees every block; called by the device just before `vkDestroyDevice` (tensors hold the
    /// device alive, so none is live by then).
    func releaseAll() {
        state.withLock { state in
            for block in state.blocks.values { release(block) }
            state.blocks.removeAll()
        }
    }

    func allocate(bytes requested: Int) throws -> DeviceAllocation {
        let size = roundUp(max(requested, 16), to: alignment)
        guard size <= maxAllocation else {
            throw KernelError.exceedsDeviceLimit(op: "allocate", what: "tensor bytes", value: requested, limit: maxAllocation)
        }
        return try state.withLock { state throws -> DeviceAllocation in
            if size <= blockSize / 2 {
                for block in state.blocks.values.sorted(by: { $0.id < $1.id }) where !block.dedicated {
                    if let allocation = take(size, from: block) { state.usedBytes += size; return allocation }
                }
            }
            let dedicated = size > blockSize / 2
            let block = try makeBlock(id: state.nextID, size: dedicated ? size : blockSize, dedicated: dedicated)
            state.nextID += 1
            state.blocks[block.id] = block
            guard let allocation = take(size, from: block) else { preconditionFailure("a new block fits its first range") }
            state.usedBytes += size
            return allocation
        }
    }

    func free(_ allocation: DeviceAllocation) {
        state.withLock { state in
            guard let block = state.blocks[allocation.blockID] else { return }
            state.usedBytes -= allocation.size
            block.live -= 1
            insert(allocation.offset..<(allocation.offset + allocation.size), into: block)
            guard block.live == 0 else { return }
            let emptyShared = state.blocks.values.filter { !$0.dedicated && $0.live == 0 }.count
            if block.dedicated || emptyShared > 1 {
                state.blocks[block.id] = nil
                release(block)
            }
        }
    }

    var statistics: MemoryStatistics {
        state.withLock { state in
            MemoryStatistics(blockCount: state.blocks.count,
                             reservedBytes: state.blocks.values.reduce(0) { $0 + $1.size },
                             usedBytes: state.usedBytes,
                             allocationCount: state.blocks.values.reduce(0) { $0 + $1.live })
        }
    }

    private func take(_ size: Int, from block: Block) -> DeviceAllocation? {
        guard let index = block.free.firstIndex(where: { $0.count >= size }) else { return nil }
        let range = block.free[index]
        if range.count == size { block.free.remove(at: index) } else { block.free[index] = (range.lowerBound + size)..<range.upperBound }
        block.live += 1
        return DeviceAllocation(buffer: block.buffer, offset: range.lowerBound, size: size,
                                mapped: block.mapped.map { $0 + range.lowerBound }, blockID: block.id)
    }

    private func insert(_ range: Range<Int>, into block: Block) {
        let index = block.free.firstIndex { $0.lowerBound > range.lowerBound } ?? block.free.endIndex
        block.free.insert(range, at: index)
        // Coalesce with the neighbours.
        if index + 1 < block.free.count, block.free[index].upperBound == block.free[index + 1].lowerBound {
            block.free[index] = block.free[index].lowerBound..<block.free[index + 1].upperBound
            block.free.remove(at: index + 1)
        }
        if index > 0, block.free[index - 1].upperBound == block.free[index].lowerBound {
            block.free[index - 1] = block.free[index - 1].lowerBound..<block.free[index].upperBound
            block.free.remove(at: index)
        }
    }

    private func makeBlock(id: Int, size: Int, dedicated: Bool) throws(VulkanError) -> Block {
        var bufferInfo = VkBufferCreateInfo()
        bufferInfo.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO
        bufferInfo.size = VkDeviceSize(size)
        bufferInfo.usage = Self.bufferUsage
        bufferInfo.sharingMode = VK_SHARING_MODE_EXCLUSIVE
        var buffer: VkBuffer?
        try check(vk.createBuffer(device, &bufferInfo, nil, &buffer), "vkCreateBuffer (\(size) bytes)")
        var requirements = VkMemoryRequirements()
        vk.getBufferMemoryRequirements(device, buffer, &requirements)
        var allocateInfo = VkMemoryAllocateInfo()
        allocateInfo.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO
        allocateInfo.allocationSize = requirements.size
        allocateInfo.memoryTypeIndex = memoryTypeIndex
        var memory: VkDeviceMemory?
        let allocated = vk.allocateMemory(device, &allocateInfo, nil, &memory)
        guard allocated == VK_SUCCESS else {
            vk.destroyBuffer(device, buffer, nil)
            throw .call("vkAllocateMemory (\(name), \(size) bytes)", allocated.rawValue)
        }
        var mapped: UnsafeMutableRawPointer?
        do {
            try check(vk.bindBufferMemory(device, buffer, memory, 0), "vkBindBufferMemory")
            if hostVisible { try check(vk.mapMemory(device, memory, 0, VkDeviceSize(VK_WHOLE_SIZE), 0, &mapped), "vkMapMemory") }
        } catch {
            vk.destroyBuffer(device, buffer, nil)
            vk.freeMemory(device, memory, nil)
            throw error
        }
        return Block(id: id, memory: memory!, buffer: buffer!, size: size, mapped: mapped, dedicated: dedicated)
    }

    private func release(_ block: Block) {
        vk.destroyBuffer(device, block.buffer, nil)
        vk.freeMemory(device, block.memory, nil)  // unmaps implicitly
    }
}

@inline(__always)
func roundUp(_ value: Int, to multiple: Int) -> Int { (value + multiple - 1) / multiple * multiple }
