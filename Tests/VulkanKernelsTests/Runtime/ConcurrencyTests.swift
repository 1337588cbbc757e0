import Foundation
import VulkanKernels
import XCTest

/// One context shared by many threads: each thread allocates its own tensors and records its own batches
/// (a batch belongs to one thread; `CommandBatch` is not Sendable, so the compiler keeps it there), and
/// every result is compared with the CPU backend's.
final class ConcurrencyTests: XCTestCase {
    /// fp32 results of these sizes (K ≤ 128 terms) agree with the CPU backend to this fraction of the
    /// largest magnitude: both accumulate in fp32, in different orders.
    static let tolerance: Float = 1e-4

    func testManyThreadsShareOneContextWithCorrectResults() throws {
        let threads = 8, rounds = 6
        // Per-thread inputs and their CPU results, computed first on one thread.
        let cpu = Backends.cpu
        let cases = try (0..<threads).map { thread in try MixedCase(seed: UInt64(thread), reference: cpu) }
        onEveryBackend { context in
            let failures = Locked([String]())
            DispatchQueue.concurrentPerform(iterations: threads) { thread in
                do {
                    for round in 0..<rounds {
                        let problems = try cases[thread].run(on: context)
                        if !problems.isEmpty { failures.withLock { $0.append("thread \(thread) round \(round): \(problems)") } }
                    }
                } catch {
                    failures.withLock { $0.append("thread \(thread): \(error)") }
                }
            }
            XCTAssertEqual(failures.withLock { $0 }, [], "on \(context.backendDescription)")
        }
    }
}

/// GEMM, SpMM and fused attention on one thread's own inputs, in one batch, checked against the CPU
/// backend's results.
struct MixedCase: Sendable {
    let a: [Float], b: [Float], weight: CSRMatrix<Float>, x: [Float], q: [Float], k: [Float], v: [Float]
    private(set) var expected: (gemm: [Float], spmm: [Float], attention: [Float])

    init(seed: UInt64, reference: ComputeContext) throws {
        a = .random(count: 48 * 64, seed: seed * 10 + 1)
        b = .random(count: 64 * 40, seed: seed * 10 + 2)
        weight = try SparsePruning.magnitude([Float].random(count: 96 * 128, seed: seed * 10 + 3), rows: 96, columns: 128, sparsity: 0.8)
        x = .random(count: 128 * 24, seed: seed * 10 + 4)
        q = .random(count: 2 * 33 * 32, seed: seed * 10 + 5)
        k = .random(count: 2 * 45 * 32, seed: seed * 10 + 6)
        v = .random(count: 2 * 45 * 32, seed: seed * 10 + 7)
        expected = (gemm: [], spmm: [], attention: [])
        let results = try outputs(on: reference)
        expected = (results.0, results.1, results.2)
    }

    private func outputs(on context: ComputeContext) throws -> ([Float], [Float], [Float]) {
        let at = try context.tensor(a, shape: [48, 64]), bt = try context.tensor(b, shape: [64, 40])
        let c = try context.zeros(Float.self, shape: [48, 40])
        let w = try context.upload(weight), xt = try context.tensor(x, shape: [128, 24])
        let y = try context.zeros(Float.self, shape: [96, 24])
        let qt = try context.tensor(q, shape: [1, 2, 33, 32])
        let kt = try context.tensor(k, shape: [1, 2, 45, 32]), vt = try context.tensor(v, shape: [1, 2, 45, 32])
        let out = try context.zeros(Float.self, shape: [1, 2, 33, 32])
        let batch = try context.makeBatch()
        try batch.gemm(at, bt, into: c)
        try batch.spmm(w, xt, into: y)
        try batch.attention(q: qt, k: kt, v: vt, into: out, mask: .causal())
        try batch.commit()
        return (try c.toArray(), try y.toArray(), try out.toArray())
    }

    /// The ops that disagree with the reference (empty when all agree).
    func run(on context: ComputeContext) throws -> [String] {
        let (gemm, spmm, attention) = try outputs(on: context)
        var problems: [String] = []
        for (name, got, want) in [("gemm", gemm, expected.gemm), ("spmm", spmm, expected.spmm), ("attention", attention, expected.attention)] {
            let scale = max(want.map(abs).max() ?? 0, 1e-6)
            let error = got.count == want.count ? zip(got, want).map { abs($0 - $1) }.max() ?? 0 : .infinity
            if !(error <= ConcurrencyTests.tolerance * scale) { problems.append("\(name) off by \(error)") }
        }
        return problems
    }
}
