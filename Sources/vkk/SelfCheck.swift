import ArgumentParser
import FoundationEssentials
import VulkanKernels

/// `vkk selfcheck`: every kernel family on the Vulkan device against the CPU path on the same inputs
/// (GEMM fp32/fp16, sparse SpMM in three formats, attention prefill and split decode, a NeRF render).
/// Meant for a machine without the Swift toolchain (the GPU kit): exits non-zero when any check fails.
struct SelfCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selfcheck", abstract: "Each kernel family on the Vulkan device against the CPU path; non-zero exit on a mismatch.")

    @Option(help: "Vulkan device index (as `vkk info` lists them).") var device: Int?
    @Option(help: "Also write the rows as JSON to this file.") var json: String?

    /// fp32: GPU and CPU sum in different orders; relative to the largest reference magnitude, 1e-4
    /// leaves two orders of magnitude over fp32 rounding of these sums (≤ 1024 terms ≤ 1). fp16 storage
    /// rounds the output once more (2^-11 relative).
    static let tolerance32 = 1e-4, tolerance16 = 2e-3
    /// Renders: the same march on both sides; PSNR over 50 dB means they agree to a few 1e-3 per pixel.
    static let minimumPSNR = 50.0

    func run() throws {
        let gpu = try ComputeContext(backend: .vulkan(deviceIndex: device))
        let cpu = try ComputeContext(backend: .cpu)
        let table = BenchTable(title: "selfcheck: \(gpu.backendDescription) against \(cpu.backendDescription), \(todayUTC())")
        var failures = 0
        func record(_ family: String, _ label: String, error: Double, limit: Double, higherIsBetter: Bool = false, seconds: Double) {
            let pass = higherIsBetter ? error >= limit : error <= limit
            if !pass { failures += 1 }
            table.add(BenchRow(["family": .text(family), "case": .text(label), higherIsBetter ? "PSNR dB" : "max rel err": .number(error, digits: 7),
                                "limit": .number(limit, digits: 5), "result": .text(pass ? "pass" : "FAIL"),
                                "s": .number(seconds, digits: 2)]))
        }
        func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
            let start = Date()
            let value = try body()
            return (value, Date().timeIntervalSince(start))
        }

        // Dense GEMM: fp32 and fp16 storage, one transposed operand, past the tile sizes.
        for fp16 in [false, true] {
            let (m, n, k) = (300, 260, 520)
            let a = [Float].benchData(count: m * k, seed: 1), b = [Float].benchData(count: n * k, seed: 2)
            let (error, seconds) = try timed { () throws -> Double in
                func product(_ context: ComputeContext) throws -> [Float] {
                    if fp16 {
                        let c = try context.matmul(try context.tensor(a.map { Float16($0) }, shape: [m, k]),
                                                   try context.tensor(b.map { Float16($0) }, shape: [n, k]), transposeB: true)
                        return try c.toArray().map { Float($0) }
                    }
                    return try context.matmul(try context.tensor(a, shape: [m, k]), try context.tensor(b, shape: [n, k]), transposeB: true).toArray()
                }
                return relativeError(try product(gpu), try product(cpu))
            }
            record("gemm", "\(m)x\(n)x\(k) B^T \(fp16 ? "f16" : "f32")", error: error, limit: fp16 ? Self.tolerance16 : Self.tolerance32, seconds: seconds)
        }

        // Sparse SpMM: CSR at 90%, BSR 16 at 75%, 2:4, against N = 96 columns.
        let (rows, columns, n) = (512, 1024, 96)
        let weight = [Float].benchData(count: rows * columns, seed: 3), bValues = [Float].benchData(count: columns * n, seed: 4)
        let formats: [(String, SparseMatrix<Float>)] = [
            ("csr 90%", .csr(try SparsePruning.magnitude(weight, rows: rows, columns: columns, sparsity: 0.9))),
            ("bsr16 75%", .bsr(try SparsePruning.blockMagnitude(weight, rows: rows, columns: columns, blockSize: 16, sparsity: 0.75))),
            ("2:4", .nm(try SparsePruning.nm(weight, rows: rows, columns: columns, n: 2, m: 4))),
        ]
        for (label, matrix) in formats {
            let (error, seconds) = try timed {
                relativeError(try gpu.spmm(matrix, try gpu.tensor(bValues, shape: [columns, n])).toArray(),
                              try cpu.spmm(matrix, try cpu.tensor(bValues, shape: [columns, n])).toArray())
            }
            record("sparse", "spmm \(rows)x\(columns) \(label) N=\(n)", error: error, limit: Self.tolerance32, seconds: seconds)
        }

        // Attention: causal prefill with grouped heads, and a decode row split along 4096 keys.
        for (label, heads, kvHeads, queries, keys, d, split) in [("prefill L=512 d=64 h=8/kv2 causal", 8, 2, 512, 512, 64, AttentionSplit.automatic),
                                                                ("decode 1x4096 d=128 h=8/kv8 split 4", 8, 8, 1, 4096, 128, .count(4))] {
            let q = [Float].benchData(count: heads * queries * d, seed: 5), k = [Float].benchData(count: kvHeads * keys * d, seed: 6)
            let v = [Float].benchData(count: kvHeads * keys * d, seed: 7)
            let (error, seconds) = try timed {
                let outputs = try [gpu, cpu].map { context in
                    try context.attention(q: try context.tensor(q, shape: [1, heads, queries, d]), k: try context.tensor(k, shape: [1, kvHeads, keys, d]),
                                          v: try context.tensor(v, shape: [1, kvHeads, keys, d]), mask: .causal(), split: split).toArray()
                }
                return relativeError(outputs[0], outputs[1])
            }
            record("attention", label, error: error, limit: Self.tolerance32, seconds: seconds)
        }

        // NeRF: the built-in hash-grid scene and an analytic one, 96 x 96.
        // A 64³ occupancy grid, as the tests use: the default 256³ one evaluates the hash-grid network at
        // 2 × 256³ points, minutes on a CPU driver.
        var options = RenderOptions()
        options.occupancy.resolution = 64
        options.occupancy.levels = 3
        options.occupancy.samplesPerAxis = 2
        for scene in ["spheres", "ngp-blobs"] {
            let camera = Camera.orbit(frame: 1, of: 8, width: 96, height: 96)
            let field = try FieldCatalog.field(named: scene)
            let (value, seconds) = try timed {
                let images = try [gpu, cpu].map { try Renderer(context: $0).render(field: field, camera: camera, options: options) }
                return psnr(images[0].rgb, images[1].rgb)
            }
            record("nerf", "render \(scene) 96x96", error: value, limit: Self.minimumPSNR, higherIsBetter: true, seconds: seconds)
        }

        if let json { try table.writeJSON(to: json, device: gpu.backendDescription, extra: ["date": todayUTC(), "failures": String(failures)]) }
        print(failures == 0 ? "selfcheck: all passed" : "selfcheck: \(failures) FAILED")
        if failures > 0 { throw ExitCode(1) }
    }

    /// max |got - want| / max(max |want|, 1e-30).
    private func relativeError(_ got: [Float], _ want: [Float]) -> Double {
        guard got.count == want.count else { return .infinity }
        var worst = 0.0, scale = 1e-30
        for (g, w) in zip(got, want) {
            worst = max(worst, g.isFinite ? Double(abs(g - w)) : .infinity)
            scale = max(scale, Double(abs(w)))
        }
        return worst / scale
    }
}
