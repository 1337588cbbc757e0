import VulkanKernels
import XCTest

/// One GEMM problem with its float64 reference, used by the dense tests.
struct GEMMCase: CustomStringConvertible {
    var batch = 1
    var m: Int
    var n: Int
    var k: Int
    var transposeA = false, transposeB = false
    var alpha: Float = 1, beta: Float = 0
    /// A or B rank 2 and shared by every batch.
    var broadcastA = false, broadcastB = false
    var seed: UInt64 = 1

    var description: String {
        "batch \(batch) M \(m) N \(n) K \(k) tA \(transposeA) tB \(transposeB) alpha \(alpha) beta \(beta)"
            + (broadcastA ? " shared A" : "") + (broadcastB ? " shared B" : "")
    }

    var aShape: [Int] { (broadcastA || batch == 1 ? [] : [batch]) + (transposeA ? [k, m] : [m, k]) }
    var bShape: [Int] { (broadcastB || batch == 1 ? [] : [batch]) + (transposeB ? [n, k] : [k, n]) }
    var cShape: [Int] { (batch == 1 ? [] : [batch]) + [m, n] }

    /// Values and the reference, with inputs rounded through `Element` first so the reference sees
    /// exactly what the kernel sees.
    func data<Element: BinaryFloatingPoint>(_: Element.Type) -> (a: [Element], b: [Element], c: [Element]) {
        let count = { (shape: [Int]) in shape.reduce(1, *) }
        let a = [Float].random(count: count(aShape), seed: seed).map { Element($0) }
        let b = [Float].random(count: count(bShape), seed: seed &+ 1).map { Element($0) }
        // beta == 0: fill C with NaN, which must not reach the result.
        let c = beta == 0 ? [Element](repeating: .nan, count: count(cShape))
                          : [Float].random(count: count(cShape), seed: seed &+ 2).map { Element($0) }
        return (a, b, c)
    }

    /// C in float64 and, per element, the worst-case rounding bound of an fp32-accumulated result:
    /// (K + 2)·2⁻²³·(|alpha|·Σ|a||b| + |beta·c|) — K products and sums plus the alpha and beta steps
    /// (Higham, Accuracy and Stability of Numerical Algorithms, §3.1, γₙ with unit roundoff 2⁻²⁴, doubled for FMA-free paths).
    func reference(a: [Double], b: [Double], c: [Double]) -> (value: [Double], bound: [Double]) {
        var value = [Double](repeating: 0, count: batch * m * n)
        var bound = value
        let strideA = broadcastA ? 0 : m * k, strideB = broadcastB ? 0 : k * n
        for p in 0..<batch {
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0, magnitude = 0.0
                    for l in 0..<k {
                        let x = a[p * strideA + (transposeA ? l * m + i : i * k + l)]
                        let y = b[p * strideB + (transposeB ? j * k + l : l * n + j)]
                        sum += x * y
                        magnitude += abs(x * y)
                    }
                    let index = p * m * n + i * n + j
                    let scaled = beta == 0 ? 0 : Double(beta) * c[index]
                    value[index] = Double(alpha) * sum + scaled
                    bound[index] = Double(k + 2) * 0x1p-23 * (abs(Double(alpha)) * magnitude + abs(scaled))
                }
            }
        }
        return (value, bound)
    }
}

/// Half the spacing of fp16 values at `x` (round-to-nearest error), and at least half the smallest subnormal.
func float16RoundingBound(_ x: Double) -> Double {
    max(abs(x) * 0x1p-11, 0x1p-25)
}

/// The round-to-nearest error of storing `x` as bf16: its unit roundoff is 2⁻⁸ (8 significant bits), so
/// at most |x|·2⁻⁸, and at least half the smallest subnormal (2⁻¹³⁴).
func bfloat16RoundingBound(_ x: Double) -> Double {
    max(abs(x) * 0x1p-8, 0x1p-134)
}

extension XCTestCase {
    /// Runs `test` on `context` with element type `Element` and checks every element against the reference.
    func checkGEMM<Element: TensorElement & BinaryFloatingPoint>(_ test: GEMMCase, _ type: Element.Type, on context: ComputeContext,
                                                               kernel: GEMMKernel = .automatic,
                                                               file: StaticString = #filePath, line: UInt = #line) throws {
        let (a, b, c) = test.data(Element.self)
        let tensorA = try context.tensor(a, shape: test.aShape)
        let tensorB = try context.tensor(b, shape: test.bShape)
        let tensorC = try context.tensor(c, shape: test.cShape)
        try context.batch {
            try $0.gemm(tensorA, tensorB, into: tensorC, transposeA: test.transposeA, transposeB: test.transposeB,
                        alpha: test.alpha, beta: test.beta, kernel: kernel)
        }
        let result = try tensorC.toArray()
        let (expected, bound) = test.reference(a: a.map(Double.init), b: b.map(Double.init), c: c.map(Double.init))
        var failures = 0
        for index in expected.indices {
            let got = Double(result[index])
            var tolerance = bound[index]
            if Element.self == Float16.self { tolerance += float16RoundingBound(expected[index]) }
            // The fp32 result (within `bound` of the reference) is rounded once to bf16.
            if Element.self == BFloat16.self { tolerance += bfloat16RoundingBound(abs(expected[index]) + bound[index]) }
            if !(abs(got - expected[index]) <= tolerance) {
                failures += 1
                if failures <= 3 {
                    XCTFail("\(test) [\(Element.self), \(kernel), \(context.backendDescription)] element \(index): "
                            + "got \(got), expected \(expected[index]) ± \(tolerance)", file: file, line: line)
                }
            }
        }
        if failures > 3 { XCTFail("\(test): \(failures) elements wrong in all", file: file, line: line) }
    }
}
