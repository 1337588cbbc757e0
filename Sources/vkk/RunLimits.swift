import ArgumentParser
import Foundation
import VulkanKernels

/// A failure of a command that is not an option-syntax error: printed as one line, `Error: <message>`,
/// exit status 1 (ArgumentParser prints a `CustomStringConvertible` error's description as it is).
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Up-front checks of what a run's options ask for, so that an impossible run fails at once with one
/// readable line (and a non-zero exit status) instead of aborting in an allocation half way through.
enum RunLimits {
    /// Sizes parsed from options multiplied without overflow, or a ValidationError naming the option.
    static func product(_ factors: [Int], _ what: String) throws -> Int {
        var product = 1
        for factor in factors {
            let (next, overflow) = product.multipliedReportingOverflow(by: factor)
            guard factor >= 0, !overflow else { throw ValidationError("\(what): \(factors.map { "\($0)" }.joined(separator: " × ")) is too large") }
            product = next
        }
        return product
    }

    /// Memory this machine can still give a process (`MemAvailable` in /proc/meminfo), or nil elsewhere.
    static var availableHostBytes: Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
        }
        return nil
    }

    /// Throws unless `bytes` (what a run of `what` will hold at once, host and device copies counted)
    /// fit the memory this machine has available and, on Vulkan, the device's local heap.
    static func checkMemory(_ bytes: Int, for what: String, context: ComputeContext?) throws {
        func gib(_ value: Int) -> String { formatted(Double(value) / Double(1 << 30), digits: 2) + " GiB" }
        if let available = availableHostBytes, bytes > available {
            throw CommandError("\(what) needs about \(gib(bytes)) of memory; this machine has \(gib(available)) available")
        }
        if let info = context?.deviceInfo, info.deviceLocalHeapBytes > 0, bytes > info.deviceLocalHeapBytes {
            throw CommandError("\(what) needs about \(gib(bytes)) of device memory; \(info.name) has \(gib(info.deviceLocalHeapBytes))")
        }
    }

    /// Bytes of fp32 data Σ Π term (each term a product of sizes from options, e.g. [copies, rows, columns]),
    /// computed without overflow.
    static func floatBytes(_ terms: [[Int]], _ what: String) throws -> Int {
        var total = 0
        for term in terms {
            let (sum, overflow) = total.addingReportingOverflow(try product(term + [4], what))
            guard !overflow else { throw ValidationError("\(what) is too large") }
            total = sum
        }
        return total
    }

    /// Bytes of `elements` fp32 values (the benchmarks' host data is fp32 whatever the storage type).
    static func floats(_ elements: Int, _ what: String) throws -> Int { try product([elements, 4], what) }
}

/// Foundation errors (a folder that cannot be created, a file that cannot be written) as one line: the
/// path and the system's reason, never `Error Domain=NSCocoaErrorDomain …`.
func readableError(_ error: any Error) -> any Error {
    let bridged = error as NSError
    guard bridged.domain == NSCocoaErrorDomain || bridged.domain == NSPOSIXErrorDomain else { return error }
    let path = (bridged.userInfo[NSFilePathErrorKey] as? String) ?? (bridged.userInfo[NSURLErrorKey] as? URL)?.path
    var reason = bridged.localizedDescription
    if let underlying = bridged.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        reason = String(cString: strerror(Int32(underlying.code)))
    } else if bridged.domain == NSPOSIXErrorDomain {
        reason = String(cString: strerror(Int32(bridged.code)))
    }
    return CommandError((path.map { "\($0): " } ?? "") + reason)
}
