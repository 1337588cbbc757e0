import CKernels
import Glibc

/// tiny-cuda-nn's Adam as instant-ngp's base.json configures it, over the flat parameter array:
///
///     g ← g + λ·θ (MLP weights only),  m ← β1·m + (1 − β1)·g,  v ← β2·v + (1 − β2)·g²,
///     θ ← θ − lr·√(1 − β2^k)/(1 − β1^k) · m/(√v + ε)
///
/// with k counted per parameter. Grid parameters whose gradient is exactly 0 this step are skipped
/// entirely (moments and step count untouched), as tiny-cuda-nn does for non-matrix parameters, so
/// hash-table entries no sample touched keep their state. The grid's gradient is cleared in the same
/// pass (the backward pass scatters into a zeroed grid gradient).
final class AdamOptimizer: @unchecked Sendable {
    var firstMoments: [Float]
    var secondMoments: [Float]
    var steps: [UInt32]
    let matrixCount: Int
    /// √(1 − β2^k)/(1 − β1^k) for k = 0, 1, …: per-parameter step counts never exceed the number of
    /// updates, so the table grows by one entry per update instead of two powf per parameter.
    var debias: [Float] = [0]

    init(parameterCount: Int, matrixCount: Int) {
        firstMoments = [Float](repeating: 0, count: parameterCount)
        secondMoments = firstMoments
        steps = [UInt32](repeating: 0, count: parameterCount)
        self.matrixCount = matrixCount
    }

    /// Restores a saved state after `updates` updates (the debiasing table is rebuilt to that length).
    func restore(firstMoments m: [Float], secondMoments v: [Float], steps k: [UInt32], updates: Int, options: TrainingOptions) throws {
        guard m.count == firstMoments.count, v.count == secondMoments.count, k.count == steps.count else {
            throw KernelError.invalidParameter(op: "train", name: "Adam state", value: "\(m.count) parameters, expected \(firstMoments.count)")
        }
        guard k.allSatisfy({ Int($0) <= updates }) else {
            throw KernelError.invalidParameter(op: "train", name: "Adam state", value: "a parameter step count exceeds the \(updates) steps taken")
        }
        firstMoments = m
        secondMoments = v
        steps = k
        debias = [0]
        for _ in 0..<updates { appendDebias(options) }
    }

    func appendDebias(_ options: TrainingOptions) {
        debias.append(Self.debiasFactor(step: debias.count, options: options))
    }

    /// √(1 − β2^k)/(1 − β1^k), in float64 rounded once (shared with the Vulkan path's Adam kernel).
    static func debiasFactor(step k: Int, options: TrainingOptions) -> Float {
        Float((1 - pow(Double(options.beta2), Double(k))).squareRoot() / (1 - pow(Double(options.beta1), Double(k))))
    }

    /// One update with learning rate `lr`.
    func step(parameters: inout [Float], gradients: inout [Float], options: TrainingOptions, learningRate lr: Float) {
        let count = parameters.count
        appendDebias(options)
        let shared = UncheckedSendable((parameters.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                        gradients.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                        firstMoments.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                        secondMoments.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                        steps.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                        debias.withUnsafeBufferPointer { $0.baseAddress! }))
        let matrixCount = matrixCount
        let (beta1, beta2, epsilon, l2) = (options.beta1, options.beta2, options.epsilon, options.l2Regularization)
        CPUParallel.forEachChunk(count, costPerItem: 4) { range in
            let (theta, g, m, v, k, debias) = shared.value
            vkk_adam(theta, g, m, v, k, debias, Int64(range.lowerBound), Int64(range.upperBound), Int64(matrixCount), lr,
                     beta1, beta2, epsilon, l2)
        }
    }
}
