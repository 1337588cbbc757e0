import CVulkan
import Glibc

/// The entry point: a backend (a Vulkan device or the CPU) with the tensors, pipelines and command
/// batches that run on it.
///
/// ```swift
/// let context = try ComputeContext()              // .auto: best Vulkan device, else the CPU
/// let a = try context.tensor(aValues, shape: [m, k])
/// let b = try context.tensor(bValues, shape: [k, n])
/// let c = try context.zeros(Float.self, shape: [m, n])
/// try context.gemm(a, b, into: c)
/// let result = try c.toArray()
/// ```
///
/// A context may be used from several threads: queue submission, memory pools and the pipeline cache
/// are synchronised; a ``CommandBatch`` belongs to one thread at a time.
public final class ComputeContext: @unchecked Sendable {
    public enum Backend: Sendable, Hashable {
        /// The best Vulkan device (discrete > integrated > CPU driver), or the CPU when none works.
        /// `VKK_BACKEND=cpu|vulkan` and `VKK_DEVICE=N` override the choice.
        case auto
        /// A Vulkan device: by index in the loader's order, or (nil) the best one.
        case vulkan(deviceIndex: Int? = nil)
        /// The CPU path (OpenBLAS and multi-threaded Swift kernels).
        case cpu
    }

    public struct Options: Sendable {
        /// Enable `VK_LAYER_KHRONOS_validation` with synchronization validation; messages are collected
        /// in ``ComputeContext/validationMessages``. Default: the `VKK_VALIDATION=1` environment variable.
        public var validation: Bool
        /// Use device-local memory with staging copies even on unified-memory devices (tests the discrete-GPU path).
        public var forceStaging: Bool
        /// Suppress the one-line notice printed when `.auto` falls back to the CPU.
        public var quiet: Bool

        public init(validation: Bool? = nil, forceStaging: Bool = false, quiet: Bool = false) {
            self.validation = validation ?? (environment("VKK_VALIDATION") == "1")
            self.forceStaging = forceStaging
            self.quiet = quiet
        }
    }

    /// The backend ops run on (ops switch over it; see ``ResolvedBackend``).
    let backend: ResolvedBackend
    /// The Vulkan device, nil on the CPU backend (for the runtime's own bookkeeping; ops switch over `backend`).
    var device: VulkanDevice? { backend.device }
    /// Why `.auto` chose the CPU, when it did.
    public let fallbackReason: String?
    /// Data kept on this context for the objects it belongs to (field weights, occupancy grids).
    let resident = ResidentCache()

    /// True when kernels run through Vulkan.
    public var isVulkan: Bool { device != nil }
    /// The Vulkan device's description; nil on the CPU backend.
    public var deviceInfo: DeviceInfo? { device?.info }

    /// "vulkan: NAME (KIND)" or "cpu (N threads)".
    public var backendDescription: String {
        if let info = device?.info { return "vulkan: \(info.name) (\(info.kind.rawValue))" }
        return "cpu (\(CPUParallel.threadCount) threads, \(BLASLibrary.shared.shortDescription))"
    }

    public init(backend requestedBackend: Backend = .auto, options: Options = Options()) throws {
        var requested = requestedBackend
        if requestedBackend == .auto {
            switch environment("VKK_BACKEND")?.lowercased() {
            case "cpu": requested = .cpu
            case "vulkan": requested = .vulkan(deviceIndex: nil)
            default: break
            }
        }
        switch requested {
        case .cpu:
            self.backend = .cpu
            fallbackReason = nil
        case .vulkan(let index):
            self.backend = .vulkan(try Self.openDevice(index: index ?? environment("VKK_DEVICE").flatMap(Int.init), options: options))
            fallbackReason = nil
        case .auto:
            do {
                self.backend = .vulkan(try Self.openDevice(index: environment("VKK_DEVICE").flatMap(Int.init), options: options))
                fallbackReason = nil
            } catch let error as VulkanError where error != .validationLayerMissing {
                self.backend = .cpu
                fallbackReason = error.description
                if !options.quiet { printToStandardError("VulkanKernels: \(error); using the CPU backend") }
            }
        }
    }

    /// Every Vulkan device the loader reports, in its order (the numbering of `VKK_DEVICE`).
    public static func availableDevices() throws -> [DeviceInfo] {
        let instance = try makeInstance(validation: false)
        return try instance.physicalDevices().enumerated().map { instance.describe($1, index: $0) }
    }

    /// The device `.auto` (without `VKK_DEVICE`) picks: lowest kind rank, then the lowest index.
    static func preferredIndex(_ devices: [DeviceInfo]) -> Int? {
        devices.min { ($0.kind.rank, $0.index) < ($1.kind.rank, $1.index) }?.index
    }

    private static func makeInstance(validation: Bool) throws(VulkanError) -> VulkanInstance {
        do {
            return try VulkanInstance(validation: validation)
        } catch {
            // VK_ERROR_INCOMPATIBLE_DRIVER from vkCreateInstance is the loader's way of saying it found no driver.
            guard error == .call("vkCreateInstance", VK_ERROR_INCOMPATIBLE_DRIVER.rawValue) else { throw error }
            throw .noDevice("the loader found no driver (check mesa-vulkan-drivers, or VK_DRIVER_FILES / VK_ICD_FILENAMES)")
        }
    }

    private static func openDevice(index: Int?, options: Options) throws -> VulkanDevice {
        let instance = try makeInstance(validation: options.validation)
        let physical = try instance.physicalDevices()
        guard !physical.isEmpty else {
            throw VulkanError.noDevice("the loader found no driver (check VK_DRIVER_FILES / VK_ICD_FILENAMES and mesa-vulkan-drivers)")
        }
        let devices = physical.enumerated().map { instance.describe($1, index: $0) }
        let chosen: Int
        if let index {
            guard devices.indices.contains(index) else { throw VulkanError.deviceIndexOutOfRange(index: index, count: devices.count) }
            chosen = index
        } else {
            chosen = preferredIndex(devices)!
        }
        return try VulkanDevice(instance: instance, physical: physical[chosen], info: devices[chosen], forceStaging: options.forceStaging)
    }

    deinit {
        // Resident tensors do not retain the context: free them while its device still exists.
        resident.removeAll()
    }

    // MARK: Diagnostics

    /// Messages from the validation layer since the context was made (or last cleared). Empty when
    /// validation is off.
    public var validationMessages: [String] { device?.instance.validationLog?.all ?? [] }
    public func clearValidationMessages() { device?.instance.validationLog?.clear() }
    public var validationEnabled: Bool { device?.instance.validationLog != nil }

    /// Memory held for tensors (Vulkan: pool blocks; the CPU backend reports zeros).
    public var memoryStatistics: MemoryStatistics {
        device?.tensorPool.statistics ?? MemoryStatistics(blockCount: 0, reservedBytes: 0, usedBytes: 0, allocationCount: 0)
    }

    /// Compute pipelines created so far; a cached pipeline is not created again.
    public var pipelineCreationCount: Int { device?.pipelines.creationCount ?? 0 }

    // MARK: Tensors

    /// A tensor holding `values` in row-major order.
    public func tensor<Element: TensorElement>(_ values: [Element], shape: [Int]) throws -> Tensor<Element> {
        let tensor: Tensor<Element> = try empty(shape: shape)
        try tensor.copy(from: values)
        return tensor
    }

    /// A tensor of zeros.
    public func zeros<Element: TensorElement>(_ type: Element.Type = Element.self, shape: [Int]) throws -> Tensor<Element> {
        let tensor: Tensor<Element> = try empty(shape: shape)
        if let pointer = tensor.storage.hostPointer {
            memset(pointer, 0, tensor.byteCount)
        } else {
            let batch = try makeBatch()
            try batch.fill(tensor.storage, word: 0)
            try batch.commit()
        }
        return tensor
    }

    /// A tensor holding `values` for ``resident`` (does not retain this context; see ``ResidentCache``).
    func residentTensor<Element: TensorElement>(_ values: [Element], shape: [Int]) throws -> Tensor<Element> {
        let tensor = Tensor<Element>(shape: shape, storage: try Storage(residentByteCount: values.count * MemoryLayout<Element>.stride, in: self))
        try tensor.copy(from: values)
        return tensor
    }

    /// A tensor whose contents are unspecified until written.
    public func empty<Element: TensorElement>(_ type: Element.Type = Element.self, shape: [Int]) throws -> Tensor<Element> {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw KernelError.invalidShape(op: "tensor", operand: "shape", shape: shape, expected: "non-negative dimensions")
        }
        let (count, overflow) = shape.reduce((1, false)) { partial, dimension in
            let product = partial.0.multipliedReportingOverflow(by: dimension)
            return (product.partialValue, partial.1 || product.overflow)
        }
        let bytes = count.multipliedReportingOverflow(by: MemoryLayout<Element>.stride)
        guard !overflow, !bytes.overflow else {
            throw KernelError.invalidShape(op: "tensor", operand: "shape", shape: shape, expected: "a size that fits in memory")
        }
        return Tensor(shape: shape, storage: try Storage(byteCount: bytes.partialValue, owner: self))
    }

    // MARK: Batches

    /// A new batch; record ops into it and `commit()` it.
    public func makeBatch() throws -> CommandBatch { try CommandBatch(context: self) }

    /// Records `body` into one batch, submits it and waits for it.
    @discardableResult
    public func batch<Result>(_ body: (CommandBatch) throws -> Result) throws -> Result {
        let batch = try makeBatch()
        let result = try body(batch)
        try batch.commit()
        return result
    }

    // MARK: Transfers

    func upload(_ bytes: UnsafeRawBufferPointer, to storage: Storage, byteOffset: Int = 0) throws {
        guard bytes.count > 0 else { return }
        if let pointer = storage.hostPointer {
            (pointer + byteOffset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            return
        }
        guard let device, let stagingPool = device.stagingPool else { preconditionFailure("device storage without a staging pool") }
        let stagingAllocation = try stagingPool.allocate(bytes: bytes.count)
        let staging = Storage(adopting: stagingAllocation, pool: stagingPool, byteCount: bytes.count, owner: self)
        staging.hostPointer!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        let batch = try makeBatch()
        try batch.copy(from: staging, to: storage, destinationOffset: byteOffset, bytes: bytes.count)
        try batch.commit()
    }

    func download<Element>(_ storage: Storage, count: Int, as type: Element.Type) throws -> [Element] {
        let bytes = count * MemoryLayout<Element>.stride
        if let pointer = storage.hostPointer {
            return Array(UnsafeBufferPointer(start: pointer.assumingMemoryBound(to: Element.self), count: count))
        }
        guard let device, let stagingPool = device.stagingPool else { preconditionFailure("device storage without a staging pool") }
        guard bytes > 0 else { return [] }
        let staging = Storage(adopting: try stagingPool.allocate(bytes: bytes), pool: stagingPool, byteCount: bytes, owner: self)
        let batch = try makeBatch()
        try batch.copy(from: storage, to: staging, bytes: bytes)
        try batch.commit()
        return Array(UnsafeBufferPointer(start: staging.hostPointer!.assumingMemoryBound(to: Element.self), count: count))
    }
}

extension Storage {
    /// Wraps an allocation made directly from a pool (staging buffers).
    convenience init(adopting allocation: DeviceAllocation, pool: MemoryPool, byteCount: Int, owner: ComputeContext) {
        self.init(backing: .device(allocation, pool), byteCount: byteCount, owner: owner)
    }
}

/// Writes one line to standard error (unbuffered, safe from any thread).
func printToStandardError(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}

func environment(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}
