import VulkanKernels
import XCTest

final class GEMMTests: XCTestCase {
    /// 1×1×1, 1×N, M×1, K = 1, primes, tile ± 1 (the subgroup kernel's tile is 16 × 32), K = 0.
    static let edgeShapes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (1, 37, 5), (23, 1, 7), (5, 9, 1), (37, 53, 29), (15, 31, 3), (16, 32, 4), (17, 33, 5),
        (31, 63, 15), (33, 65, 17), (64, 64, 64), (7, 11, 0), (130, 70, 67),
        // N a multiple of 4 below or past the 32-column tile: right-edge tiles on the fast path.
        (5, 4, 9), (18, 12, 33), (21, 16, 40), (3, 20, 8), (40, 36, 13),
    ]

    func testEdgeShapesFloat32() throws {
        onEveryBackend { context in
            for (index, shape) in Self.edgeShapes.enumerated() {
                try checkGEMM(GEMMCase(m: shape.m, n: shape.n, k: shape.k, seed: UInt64(index)), Float.self, on: context)
            }
        }
    }

    func testAllTransposeCombinationsWithAlphaBeta() throws {
        onEveryBackend { context in
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    for shape in [(m: 19, n: 45, k: 23), (m: 40, n: 36, k: 64), (m: 3, n: 1, k: 9)] {
                        try checkGEMM(GEMMCase(m: shape.m, n: shape.n, k: shape.k, transposeA: transposeA, transposeB: transposeB,
                                               alpha: -0.75, beta: 0.5), Float.self, on: context)
                    }
                }
            }
        }
    }

    func testBetaZeroIgnoresNaNInC() throws {
        onEveryBackend { context in
            // GEMMCase fills C with NaN whenever beta == 0.
            try checkGEMM(GEMMCase(m: 20, n: 40, k: 12, alpha: 2, beta: 0), Float.self, on: context)
            try checkGEMM(GEMMCase(m: 20, n: 1, k: 12, alpha: 2, beta: 0), Float.self, on: context)
        }
    }

    func testKZeroScalesC() throws {
        onEveryBackend { context in
            try checkGEMM(GEMMCase(m: 9, n: 13, k: 0, beta: 0.25), Float.self, on: context)
            try checkGEMM(GEMMCase(m: 9, n: 1, k: 0, beta: 0.25), Float.self, on: context)
            try checkGEMM(GEMMCase(m: 9, n: 13, k: 0, beta: 0), Float.self, on: context)
        }
    }

    func testBatchedWithStridesAndSharedOperands() throws {
        onEveryBackend { context in
            try checkGEMM(GEMMCase(batch: 3, m: 17, n: 35, k: 20, alpha: 1, beta: 0.5), Float.self, on: context)
            try checkGEMM(GEMMCase(batch: 4, m: 8, n: 36, k: 12, broadcastB: true), Float.self, on: context)
            try checkGEMM(GEMMCase(batch: 2, m: 9, n: 5, k: 7, transposeA: true, transposeB: true, broadcastA: true), Float.self, on: context)
            try checkGEMM(GEMMCase(batch: 5, m: 33, n: 1, k: 40, transposeA: true), Float.self, on: context)
        }
    }

    func testFloat16StorageAccumulatesInFloat32() throws {
        onEveryBackend { context in
            for shape in [(m: 1, n: 1, k: 1), (m: 37, n: 53, k: 29), (m: 16, n: 32, k: 256), (m: 33, n: 1, k: 100)] {
                try checkGEMM(GEMMCase(m: shape.m, n: shape.n, k: shape.k, alpha: 1.5, beta: -1), Float16.self, on: context)
                try checkGEMM(GEMMCase(m: shape.m, n: shape.n, k: shape.k, transposeA: true, transposeB: true), Float16.self, on: context)
            }
            try checkGEMM(GEMMCase(batch: 3, m: 12, n: 20, k: 9, broadcastA: true), Float16.self, on: context)
        }
    }

    /// bf16 A, B and C: the inputs are exact in fp32, so only the fp32 accumulation and C's final rounding
    /// to bf16 (plus C's own rounding when beta reads it) separate the result from the float64 reference.
    func testBFloat16StorageAccumulatesInFloat32() throws {
        onEveryBackend { context in
            for shape in [(m: 1, n: 1, k: 1), (m: 37, n: 53, k: 29), (m: 16, n: 32, k: 256), (m: 33, n: 1, k: 100)] {
                try checkGEMM(GEMMCase(m: shape.m, n: shape.n, k: shape.k, alpha: 1.5, beta: -1), BFloat16.self, on: context)
                try checkGEMM(GEMMCase(m: shape.m, n: shape.n, k: shape.k, transposeA: true, transposeB: true), BFloat16.self, on: context)
            }
            try checkGEMM(GEMMCase(batch: 3, m: 12, n: 20, k: 9, broadcastA: true), BFloat16.self, on: context)
        }
    }

    /// Every Vulkan kernel, forced, over the edge shapes it accepts.
    func testEveryVulkanKernel() throws {
        try onVulkan { context in
            for algorithm in GEMMKernel.allCases where algorithm != .automatic {
                for (index, shape) in Self.edgeShapes.enumerated() where algorithm != .gemv || shape.n == 1 {
                    for transpose in [false, true] {
                        let test = GEMMCase(m: shape.m, n: shape.n, k: shape.k, transposeA: transpose, transposeB: transpose,
                                            alpha: 0.5, beta: index % 2 == 0 ? 0 : 2, seed: UInt64(index))
                        try checkGEMM(test, Float.self, on: context, kernel: algorithm)
                        try checkGEMM(test, Float16.self, on: context, kernel: algorithm)
                        try checkGEMM(test, BFloat16.self, on: context, kernel: algorithm)
                    }
                }
                if algorithm == .gemv {
                    for m in [1, 7, 64, 300] {
                        try checkGEMM(GEMMCase(m: m, n: 1, k: 257, transposeA: false, beta: 1), Float.self, on: context, kernel: algorithm)
                        try checkGEMM(GEMMCase(m: m, n: 1, k: 257, transposeA: true), Float.self, on: context, kernel: algorithm)
                    }
                }
            }
        }
    }

    func testMatmulAllocatesTheResult() throws {
        onEveryBackend { context in
            let a = try context.tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
            let b = try context.tensor([1, 0, 0, 1, 1, 1] as [Float], shape: [3, 2])
            let c = try context.matmul(a, b)
            XCTAssertEqual(c.shape, [2, 2])
            XCTAssertEqual(try c.toArray(), [4, 5, 10, 11])
        }
    }
}
