import CKernels
import Glibc

extension HashGridField {
    /// Samples per block of the CPU evaluator: the fused kernels' activations for a block (~270 floats a
    /// sample: 8.5 MiB) are reused from block to block.
    static let cpuBlock = 8192

    /// CPU evaluation with the training network's fused kernels (CKernels' nerf_mlp.c): per block, the
    /// samples inside `bounds` are gathered (unit-cube positions and directions), run through the hash
    /// encoding and both MLPs tile by tile on every core, and their σ and RGB scattered back; samples
    /// outside the box get zeros. The fp16 parameters are used widened to fp32 (``weights``), as before;
    /// only the order of the sums inside each layer changed (register-tiled kernels instead of one
    /// OpenBLAS sgemm per layer and a scalar encoding, which ran at ~0.45 M samples/s).
    public func evaluate(samples: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>, count: Int) {
        precondition(samples.count >= 8 * count && output.count >= 4 * count, "hashgrid: sample or output buffer too small")
        let block = min(count, Self.cpuBlock)
        guard block > 0 else { return }
        let network = fusedNetwork
        let activations = HashGridActivations()
        var positions = [Float](repeating: 0, count: 3 * block), directions = positions
        var rows = [Int](repeating: 0, count: block)
        let exponential = colorActivation == .exponential
        for start in stride(from: 0, to: count, by: block) {
            let n = min(block, count - start)
            let s = samples.baseAddress! + 8 * start, out = output.baseAddress! + 4 * start
            // Gather the samples inside the box (instant-ngp's warp_position: x = (p − lower) / size).
            var inside = 0
            for i in 0..<n {
                let unit = (SIMD3(s[8 * i], s[8 * i + 1], s[8 * i + 2]) - bounds.lower) / bounds.size
                guard unit.x >= 0, unit.y >= 0, unit.z >= 0, unit.x <= 1, unit.y <= 1, unit.z <= 1 else {
                    (out + 4 * i).initialize(repeating: 0, count: 4)
                    continue
                }
                positions[3 * inside] = unit.x; positions[3 * inside + 1] = unit.y; positions[3 * inside + 2] = unit.z
                directions[3 * inside] = s[8 * i + 4]; directions[3 * inside + 1] = s[8 * i + 5]; directions[3 * inside + 2] = s[8 * i + 6]
                rows[inside] = i
                inside += 1
            }
            guard inside > 0 else { continue }
            positions.withUnsafeBufferPointer { p in
                directions.withUnsafeBufferPointer { d in
                    activations.setInputs(positions: p.baseAddress!, directions: d.baseAddress!, count: inside, configuration: configuration)
                }
            }
            network.forward(activations)
            for j in 0..<inside {
                let o = out + 4 * rows[j]
                if exponential {
                    for channel in 0..<3 { o[channel] = expf(min(max(activations.colorLogits[3 * j + channel], -10), 10)) }
                } else {
                    o[0] = activations.rgb[3 * j]; o[1] = activations.rgb[3 * j + 1]; o[2] = activations.rgb[3 * j + 2]
                }
                o[3] = activations.sigma[j]
            }
        }
    }
}
