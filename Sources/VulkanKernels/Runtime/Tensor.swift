import CVulkan
import Glibc

/// Bytes behind one tensor: host memory on the CPU backend, a pool sub-allocation on Vulkan.
final class Storage: @unchecked Sendable {
    enum Backing {
        case host(UnsafeMutableRawPointer)
        case device(DeviceAllocation, MemoryPool)
    }

    let byteCount: Int
    let backing: Backing
    /// The context this storage belongs to.
    unowned let owner: ComputeContext
    /// Keeps the device (and so its pools) alive while any tensor exists; nil only for the context's
    /// own resident data (``ResidentCache``), which the context outlives by construction.
    private let retainedOwner: ComputeContext?

    init(backing: Backing, byteCount: Int, owner: ComputeContext) {
        self.backing = backing
        self.byteCount = byteCount
        self.owner = owner
        retainedOwner = owner
    }

    convenience init(byteCount: Int, owner: ComputeContext) throws {
        try self.init(byteCount: byteCount, owner: owner, retainsOwner: true)
    }

    /// Storage for ``ResidentCache`` entries: it does not retain `owner`, so a context's cache does not
    /// keep the context alive.
    convenience init(residentByteCount byteCount: Int, in owner: ComputeContext) throws {
        try self.init(byteCount: byteCount, owner: owner, retainsOwner: false)
    }

    private init(byteCount: Int, owner: ComputeContext, retainsOwner: Bool) throws {
        self.byteCount = byteCount
        self.owner = owner
        retainedOwner = retainsOwner ? owner : nil
        if let device = owner.device {
            backing = .device(try device.tensorPool.allocate(bytes: byteCount), device.tensorPool)
        } else {
            // 64-byte alignment for SIMD loads; at least one cache line so a zero-size tensor still has an address.
            guard let pointer = aligned_alloc(64, roundUp(max(byteCount, 64), to: 64)) else {
                throw KernelError.invalidParameter(op: "allocate", name: "bytes", value: "\(byteCount) (out of memory)")
            }
            backing = .host(pointer)
        }
    }

    deinit {
        switch backing {
        case .host(let pointer): free(pointer)
        case .device(let allocation, let pool): pool.free(allocation)
        }
    }

    /// The bytes as host memory, when they are directly addressable (CPU backend, unified memory).
    var hostPointer: UnsafeMutableRawPointer? {
        switch backing {
        case .host(let pointer): pointer
        case .device(let allocation, _): allocation.mapped
        }
    }

    var allocation: DeviceAllocation? {
        if case .device(let allocation, _) = backing { return allocation }
        return nil
    }
}

/// A typed n-dimensional array owned by a ``ComputeContext``: device memory on Vulkan, host memory on
/// the CPU backend. Row-major (the last dimension is contiguous).
///
/// Create tensors through the context (`context.tensor(_:shape:)`, `context.zeros(_:shape:)`). A tensor
/// keeps its context alive; it can only be used with the context that made it.
public final class Tensor<Element: TensorElement>: @unchecked Sendable, CustomStringConvertible {
    public let shape: [Int]
    /// Number of elements (the product of `shape`; 1 for a scalar shape `[]`).
    public let count: Int
    let storage: Storage

    init(shape: [Int], storage: Storage) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.storage = storage
    }

    public var context: ComputeContext { storage.owner }
    public var dtype: DType { Element.dtype }
    public var rank: Int { shape.count }
    public var byteCount: Int { count * MemoryLayout<Element>.stride }

    public var description: String { "Tensor<\(Element.self)>\(shape)" }

    /// Copies the elements back to the host.
    public func toArray() throws -> [Element] {
        try context.download(storage, count: count, as: Element.self)
    }

    /// Overwrites every element with `values` (row-major order).
    public func copy(from values: [Element]) throws {
        guard values.count == count else { throw KernelError.countMismatch(expected: count, got: values.count) }
        try values.withUnsafeBytes { try context.upload($0, to: storage) }
    }

    /// The same elements under another shape of equal element count; shares storage (no copy).
    public func reshaped(_ newShape: [Int]) throws -> Tensor<Element> {
        guard newShape.allSatisfy({ $0 >= 0 }), newShape.reduce(1, *) == count else {
            throw KernelError.invalidShape(op: "reshaped", operand: "shape", shape: newShape, expected: "\(count) elements")
        }
        return Tensor(shape: newShape, storage: storage)
    }
}
