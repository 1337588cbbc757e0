import CKernels
import Glibc

extension HashGridField {
    /// Samples per block of the CPU evaluator: large enough that each layer is one efficient OpenBLAS
    /// GEMM, small enough that the activations (block × 64 floats, twice) stay in cache-sized megabytes.
    static let cpuBlock = 8192

    /// CPU evaluation: per block of samples, the encoding and the elementwise steps run on
    /// `CPUParallel` threads and each MLP layer is one OpenBLAS `sgemm` (activations × Wᵀ), which
    /// threads itself.
    public func evaluate(samples: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>, count: Int) {
        precondition(samples.count >= 8 * count && output.count >= 4 * count, "hashgrid: sample or output buffer too small")
        let c = configuration
        let block = min(count, Self.cpuBlock)
        guard block > 0 else { return }
        let width = max(c.encodingWidth, c.densityWidth, c.colorWidth, c.colorInputWidth)
        var a = [Float](repeating: 0, count: block * width), b = a
        var inside = [Bool](repeating: false, count: block)
        weights.withUnsafeBufferPointer { w in
            for start in stride(from: 0, to: count, by: block) {
                let n = min(block, count - start)
                a.withUnsafeMutableBufferPointer { a in
                    b.withUnsafeMutableBufferPointer { b in
                        inside.withUnsafeMutableBufferPointer { inside in
                            evaluateBlock(samples.baseAddress! + 8 * start, output.baseAddress! + 4 * start, n,
                                          w.baseAddress!, a.baseAddress!, b.baseAddress!, inside.baseAddress!)
                        }
                    }
                }
            }
        }
    }

    private func evaluateBlock(_ samples: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ n: Int,
                               _ w: UnsafePointer<Float>, _ a: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>,
                               _ inside: UnsafeMutablePointer<Bool>) {
        let c = configuration
        let shared = UncheckedSendable((samples, output, a, inside))
        // Encoding, one row of `a` (width encodingWidth, zero padded) per sample.
        CPUParallel.forEachChunk(n, costPerItem: c.levels * 64) { range in
            let (samples, output, a, inside) = shared.value
            for i in range {
                let s = samples + 8 * i
                let unit = (SIMD3(s[0], s[1], s[2]) - bounds.lower) / bounds.size
                let row = a + i * c.encodingWidth
                row.initialize(repeating: 0, count: c.encodingWidth)
                inside[i] = unit.x >= 0 && unit.y >= 0 && unit.z >= 0 && unit.x <= 1 && unit.y <= 1 && unit.z <= 1
                if inside[i] { encode(unit: unit, into: row) } else { (output + 4 * i).initialize(repeating: 0, count: 4) }
            }
        }
        var offset = 0
        var (input, result) = (a, b)
        // layer: result[n × outputs] = input[n × inputs] · W[outputs × inputs]ᵀ, ReLU unless last.
        func layer(_ outputs: Int, _ inputs: Int, rows: Int? = nil, relu: Bool) {
            let used = rows ?? outputs
            vkk_sgemm(0, 1, Int64(n), Int64(used), Int64(inputs), 1, input, Int64(inputs), w + offset, Int64(inputs), 0,
                      result, Int64(used))
            offset += outputs * inputs
            if relu {
                let values = UncheckedSendable(result)
                CPUParallel.forEachChunk(n * used) { range in
                    for i in range where values.value[i] < 0 { values.value[i] = 0 }
                }
            }
            swap(&input, &result)
        }
        let densityLayers = c.densityLayers
        for (index, shape) in densityLayers.enumerated() { layer(shape.outputs, shape.inputs, relu: index < densityLayers.count - 1) }
        // `input` now holds the 16 density outputs per sample; build the colour input [outputs, SH(dir)].
        let densityOut = UncheckedSendable((input, result, samples, output, inside))
        CPUParallel.forEachChunk(n, costPerItem: 40) { range in
            let (densityOutputs, colorInput, samples, output, inside) = densityOut.value
            for i in range where inside[i] {
                let row = colorInput + i * 32
                row.update(from: densityOutputs + i * 16, count: 16)
                let s = samples + 8 * i
                sphericalHarmonicsDegree4(SIMD3(s[4], s[5], s[6])) { row[16 + $0] = $1 }
                output[4 * i + 3] = expf(densityOutputs[i * 16])
            }
        }
        swap(&input, &result)
        let colorLayers = c.colorLayers
        for (index, shape) in colorLayers.enumerated() {
            let last = index == colorLayers.count - 1
            layer(shape.outputs, shape.inputs, rows: last ? 3 : nil, relu: !last)
        }
        let colors = UncheckedSendable((input, output, inside))
        let exponential = colorActivation == .exponential
        CPUParallel.forEachChunk(n, costPerItem: 40) { range in
            let (logits, output, inside) = colors.value
            for i in range where inside[i] {
                for channel in 0..<3 {
                    let x = logits[3 * i + channel]
                    output[4 * i + channel] = exponential ? expf(min(max(x, -10), 10)) : 1 / (1 + expf(-x))
                }
            }
        }
    }
}
