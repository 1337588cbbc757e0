import FoundationEssentials
import Glibc
import VulkanKernels

/// One printed and JSON-written benchmark row: ordered column names and values.
struct BenchRow {
    var columns: [(String, BenchValue)]

    init(_ columns: KeyValuePairs<String, BenchValue>) { self.columns = columns.map { ($0.key, $0.value) } }
}

enum BenchValue {
    case text(String)
    case integer(Int)
    /// A number printed with `digits` decimals.
    case number(Double, digits: Int)

    var printed: String {
        switch self {
        case .text(let text): text
        case .integer(let value): String(value)
        case .number(let value, let digits): value.isFinite ? formatted(value, digits: digits) : "—"
        }
    }

    var json: String {
        switch self {
        case .text(let text): jsonString(text)
        case .integer(let value): String(value)
        case .number(let value, _): value.isFinite ? String(value) : "null"
        }
    }
}

/// `value` with exactly `digits` decimals (rounded half away from zero).
func formatted(_ value: Double, digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    guard scaled < 9e15 else { return String(value) }
    let whole = Int(scaled) / Int(scale), fraction = Int(scaled) % Int(scale)
    let fractionText = String(fraction)
    let sign = value < 0 && scaled > 0 ? "-" : ""
    return sign + String(whole) + (digits > 0 ? "." + String(repeating: "0", count: digits - fractionText.count) + fractionText : "")
}

/// A JSON string literal.
func jsonString(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case _ where scalar.value < 0x20: result += "\\u00" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16)
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}

/// Prints rows as an aligned table as they arrive (header once) and collects them for `--json`.
final class BenchTable {
    private var rows: [BenchRow] = []
    private var widths: [Int] = []
    private let title: String

    init(title: String) { self.title = title }

    var isEmpty: Bool { rows.isEmpty }

    func add(_ row: BenchRow) {
        if rows.isEmpty {
            print(title)
            // The baseline every "vs BLAS" column is measured against, and the C kernels' path.
            print("  \(BLASLibrary.shared.description); C kernels: \(CPUKernelPath.current)")
            widths = row.columns.map { max($0.0.count, 8) }
            print(line(row.columns.map(\.0)))
        }
        rows.append(row)
        print(line(row.columns.map(\.1.printed)))
        fflush(nil)
    }

    private func line(_ cells: [String]) -> String {
        zip(cells, widths).map { cell, width in String(repeating: " ", count: max(0, width - cell.count)) + cell }
            .joined(separator: "  ")
    }

    /// Writes `{"benchmark": title, "device": …, "rows": [{column: value, …}, …]}`.
    func writeJSON(to path: String, device: String, extra: [String: String] = [:]) throws {
        var text = "{\n  \"benchmark\": \(BenchValue.text(title).json),\n  \"device\": \(BenchValue.text(device).json),\n"
        var fields = extra
        fields["blas"] = fields["blas"] ?? BLASLibrary.shared.description
        fields["cpu_kernels"] = fields["cpu_kernels"] ?? CPUKernelPath.current
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) { text += "  \(BenchValue.text(key).json): \(BenchValue.text(value).json),\n" }
        text += "  \"rows\": [\n"
        text += rows.map { row in
            "    {" + row.columns.map { "\(BenchValue.text($0.0).json): \($0.1.json)" }.joined(separator: ", ") + "}"
        }.joined(separator: ",\n")
        text += "\n  ]\n}\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        print("wrote \(path)")
    }
}

/// One run of `body`, recorded into its own batch between two timestamps: GPU time on Vulkan, host
/// time on the CPU backend.
func timedSeconds(_ context: ComputeContext, _ body: (CommandBatch) throws -> Void) throws -> Double {
    let batch = try context.makeBatch()
    let start = try batch.timestamp()
    try body(batch)
    let end = try batch.timestamp()
    try batch.commit()
    return try batch.seconds(from: start, to: end)
}

/// Median of `repeats` timed runs (``timedSeconds(_:_:)``) after `warmup` untimed ones.
func medianSeconds(_ context: ComputeContext, warmup: Int, repeats: Int, _ body: (CommandBatch) throws -> Void) throws -> Double {
    var times: [Double] = []
    for run in 0..<(warmup + repeats) {
        let seconds = try timedSeconds(context, body)
        if run >= warmup { times.append(seconds) }
    }
    return median(times)
}

/// Medians of several timed runs made in turn (1, 2, …, 1, 2, …; each `timer` runs its body once and
/// returns its seconds), after `warmup` untimed rounds: on a shared machine, load that comes and goes then
/// falls on every side of a ratio alike.
func interleavedMedians(warmup: Int, repeats: Int, _ timers: [() throws -> Double]) throws -> [Double] {
    var times = [[Double]](repeating: [], count: timers.count)
    for run in 0..<(warmup + repeats) {
        for (index, timer) in timers.enumerated() {
            let seconds = try timer()
            if run >= warmup { times[index].append(seconds) }
        }
    }
    return times.map(median)
}

/// Median of host-timed runs of `body` (for OpenBLAS and other CPU references).
func medianHostSeconds(warmup: Int, repeats: Int, _ body: () throws -> Void) rethrows -> Double {
    var times: [Double] = []
    for run in 0..<(warmup + repeats) {
        var start = timespec(), end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        try body()
        clock_gettime(CLOCK_MONOTONIC, &end)
        if run >= warmup { times.append(Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) * 1e-9) }
    }
    return median(times)
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// A date stamp for results files (UTC, YYYY-MM-DD).
func todayUTC() -> String {
    var now = time(nil)
    var parts = tm()
    gmtime_r(&now, &parts)
    return String(format4: Int(parts.tm_year) + 1900) + "-" + String(twoDigits: Int(parts.tm_mon) + 1) + "-" + String(twoDigits: Int(parts.tm_mday))
}

extension String {
    init(twoDigits value: Int) { self = value < 10 ? "0\(value)" : "\(value)" }
    init(format4 value: Int) { self = String(value) }
}

// MARK: - Benchmark inputs

extension Array where Element == Float {
    /// Deterministic values in [-1, 1) for benchmark inputs (a cheap LCG: the values do not matter, only
    /// that they are finite and not all equal).
    static func benchData(count: Int, seed: UInt32) -> [Float] {
        var state = seed &* 2_654_435_761 &+ 1
        return (0..<count).map { _ in
            state = state &* 1_664_525 &+ 1_013_904_223
            return Float(state >> 8) / Float(1 << 23) - 1
        }
    }
}

extension Array where Element == Float {
    /// Samples as a ray marcher produces them: 32 ordered samples along each of count/32 rays that cross
    /// the unit cube from an orbit around it (neighbouring samples touch neighbouring grid cells, as in a
    /// render; uniformly random positions would instead measure DRAM latency on the hashed levels).
    static func benchSamples(count: Int) -> [Float] {
        let perRay = 32
        let rays = (count + perRay - 1) / perRay
        let side = Int(Double(rays).squareRoot().rounded(.up))
        let box = AABB(lower: SIMD3(repeating: 0), upper: SIMD3(repeating: 1))
        let camera = Camera(width: side, height: side, fieldOfViewX: 0.9,
                            cameraToWorld: .lookAt(eye: SIMD3(1.9, -0.8, 1.2), target: SIMD3(0.5, 0.5, 0.5)))
        var samples = [Float](repeating: 0, count: count * 8)
        for i in 0..<count {
            let r = i / perRay
            let ray = camera.ray(pixelX: r % side, pixelY: r / side)
            let (near, far) = box.intersect(ray) ?? (0, 1)
            let p = ray.at(near + (far - near) * (Float(i % perRay) + 0.5) / Float(perRay))
            samples.replaceSubrange((8 * i)..<(8 * i + 8), with: [p.x, p.y, p.z, 0, ray.direction.x, ray.direction.y, ray.direction.z, 0])
        }
        return samples
    }
}
