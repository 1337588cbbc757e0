import ArgumentParser
import VulkanKernels

struct BenchGEMM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "Dense GEMM suite: square 256…4096 and transformer shapes, against OpenBLAS sgemm on this CPU in the same run.")

    @OptionGroup var options: BenchOptions

    @Option(help: "Storage type: f32, f16 or bf16 (16-bit storage, fp32 accumulation).")
    var dtype: DTypeChoice = .f32

    @Flag(help: "bf16 storage (the same as --dtype bf16).")
    var bf16 = false

    @Option(help: "Vulkan kernel: \(GEMMKernel.allCases.map(\.rawValue).joined(separator: ", ")).")
    var algorithm: GEMMKernel = .automatic

    @Flag(help: "Skip the naive one-invocation-per-output shader comparison.")
    var noNaive = false

    @Option(help: "Only these cases, as MxNxK (e.g. 2048x2048x2048); repeatable.")
    var shape: [String] = []

    enum DTypeChoice: String, ExpressibleByArgument { case f32, f16, bf16 }

    /// --bf16 or --dtype.
    var storage: DTypeChoice { bf16 ? .bf16 : dtype }

    func validate() throws {
        if bf16 && dtype != .f32 && dtype != .bf16 { throw ValidationError("--bf16 and --dtype \(dtype.rawValue) exclude each other") }
    }

    struct Case {
        var label: String
        var m: Int, n: Int, k: Int
    }

    func cases() throws -> [Case] {
        if !shape.isEmpty {
            return try shape.map { text in
                let parts = text.split(separator: "x").compactMap { Int($0) }
                guard parts.count == 3, parts.allSatisfy({ $0 > 0 }) else { throw ValidationError("--shape takes MxNxK, got \(text)") }
                return Case(label: "custom", m: parts[0], n: parts[1], k: parts[2])
            }
        }
        let squares = options.quick ? [256, 512, 1024] : [256, 512, 1024, 2048, 4096]
        var cases = squares.map { Case(label: "square", m: $0, n: $0, k: $0) }
        // A linear layer: weight [out, in] times activations [in, tokens] (M = out, N = tokens, K = in).
        let tokens = options.quick ? [1, 16] : [1, 16, 256]
        cases += tokens.map { Case(label: "4096x4096 w, \($0) tok", m: 4096, n: $0, k: 4096) }
        if !options.quick { cases.append(Case(label: "16384x4096 w, 256 tok", m: 16384, n: 256, k: 4096)) }
        return cases
    }

    func run() throws {
        let context = try options.makeContext()
        let blas = try ComputeContext(backend: .cpu)
        let table = BenchTable(title: "gemm \(storage.rawValue) on \(context.backendDescription), \(todayUTC())")
        // Host data, device tensors and the OpenBLAS copies of A, B and C at once.
        for test in try cases() {
            let what = "gemm \(test.m)x\(test.n)x\(test.k)"
            try RunLimits.checkMemory(RunLimits.floatBytes([[3, test.m, test.k], [3, test.k, test.n], [3, test.m, test.n]], what), for: what, context: context)
        }
        for test in try cases() {
            let row: BenchRow = switch storage {
            case .f32: try measure(Float.self, test, context: context, blas: blas)
            case .f16: try measure(Float16.self, test, context: context, blas: blas)
            case .bf16: try measure(BFloat16.self, test, context: context, blas: blas)
            }
            table.add(row)
        }
        if let path = options.json {
            try table.writeJSON(to: path, device: context.backendDescription, extra: ["date": todayUTC(), "dtype": storage.rawValue])
        }
    }

    private func measure<Element: TensorElement & BinaryFloatingPoint>(_: Element.Type, _ test: Case, context: ComputeContext,
                                                                    blas: ComputeContext) throws -> BenchRow {
        let (m, n, k) = (test.m, test.n, test.k)
        let a = try context.tensor([Float].benchData(count: m * k, seed: 1).map { Element($0) }, shape: [m, k])
        let b = try context.tensor([Float].benchData(count: k * n, seed: 2).map { Element($0) }, shape: [k, n])
        let c = try context.zeros(Element.self, shape: [m, n])
        let flops = 2 * Double(m) * Double(n) * Double(k)
        let bytes = Double(m * k + k * n + m * n) * Double(MemoryLayout<Element>.stride)

        // OpenBLAS sgemm (sgemv for N = 1) on this machine's CPU, same shape, same run (fp32 always: it is
        // the reference). The two sides alternate run by run: timed one after the other, a memory-bound
        // case of a few milliseconds (N = 1 reads 64 MB in ~2 ms) put whatever the machine did between the
        // two series (other load, frequency, OpenBLAS threads waking) into the ratio; on the CPU backend,
        // where both sides are the same OpenBLAS call, that drift was all the ratio measured.
        let blasA = try blas.tensor([Float].benchData(count: m * k, seed: 1), shape: [m, k])
        let blasB = try blas.tensor([Float].benchData(count: k * n, seed: 2), shape: [k, n])
        let blasC = try blas.zeros(Float.self, shape: [m, n])
        var times: [Double] = [], blasTimes: [Double] = []
        for run in 0..<(max(1, options.warmup) + options.repeats) {
            let t = try timedSeconds(context) { try $0.gemm(a, b, into: c, kernel: algorithm) }
            let tBLAS = try timedSeconds(blas) { try $0.gemm(blasA, blasB, into: blasC) }
            if run >= max(1, options.warmup) { times.append(t); blasTimes.append(tBLAS) }
        }
        let seconds = median(times), blasSeconds = median(blasTimes)

        // The naive one-invocation-per-output shader, for the square cases up to 2048 on Vulkan.
        var naiveSeconds = Double.nan
        if context.isVulkan && !noNaive && test.label == "square" && m <= 2048 {
            naiveSeconds = try medianSeconds(context, warmup: 1, repeats: max(1, options.repeats / 2)) {
                try $0.gemm(a, b, into: c, kernel: .naive)
            }
        }
        let kernel = context.isVulkan ? (algorithm == .automatic ? context.automaticGEMMKernel(n: n)?.rawValue ?? "?" : algorithm.rawValue)
                                      : (n == 1 ? "openblas sgemv" : "openblas")
        return BenchRow([
            "case": .text(test.label), "M": .integer(m), "N": .integer(n), "K": .integer(k), "kernel": .text(kernel),
            "ms": .number(seconds * 1e3, digits: 3), "GFLOP/s": .number(flops / seconds * 1e-9, digits: 1),
            "GB/s": .number(bytes / seconds * 1e-9, digits: 2),
            "BLAS GFLOP/s": .number(flops / blasSeconds * 1e-9, digits: 1), "vs BLAS": .number(blasSeconds / seconds, digits: 3),
            "x naive": .number(naiveSeconds / seconds, digits: 1),
        ])
    }
}

extension GEMMKernel: ExpressibleByArgument {}
