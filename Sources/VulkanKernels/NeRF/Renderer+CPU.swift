/// The CPU path of ``Renderer``.
extension Renderer {
    /// Marches every ray on the host in rounds like the Vulkan path: rays in parallel, the field evaluated
    /// once per round on all placed samples, compositing front to back.
    func renderOnCPU(field: RadianceField, camera: Camera, options: RenderOptions, parameters: MarchParameters) throws -> RenderedImage {
        let spp = options.samplesPerPixel
        let rayCount = camera.width * camera.height * spp
        let bounds = field.bounds
        var states = [RayState?](repeating: nil, count: rayCount)
        states.withUnsafeMutableBufferPointer { buffer in
            let shared = UncheckedSendable(buffer)
            CPUParallel.forEachChunk(rayCount, costPerItem: 100) { range in
                for i in range {
                    shared.value[i] = MarchParameters.generateRay(index: i, camera: camera, samplesPerPixel: spp, bounds: bounds)
                }
            }
        }
        var live = states.indices.filter { states[$0] != nil }
        var rounds = 0
        while !live.isEmpty {
            rounds += 1
            let k = Self.stepsPerRound(live: live.count, rays: rayCount, options: options)
            // March every live ray (in parallel), each into its own list of steps.
            var stepLists = [[(Float, Float)]](repeating: [], count: live.count)
            states.withUnsafeMutableBufferPointer { stateBuffer in
                stepLists.withUnsafeMutableBufferPointer { lists in
                    let shared = UncheckedSendable((stateBuffer, lists, live))
                    CPUParallel.forEachChunk(live.count, costPerItem: 200 * k) { range in
                        let (stateBuffer, lists, live) = shared.value
                        for j in range {
                            var state = stateBuffer[live[j]]!
                            var steps: [(Float, Float)] = []
                            steps.reserveCapacity(k)
                            parameters.march(&state, maxSteps: k, into: &steps)
                            stateBuffer[live[j]] = state
                            lists[j] = steps
                        }
                    }
                }
            }
            // One batch of samples for the field, rays' samples contiguous.
            var offsets = [Int](repeating: 0, count: live.count + 1)
            for j in live.indices { offsets[j + 1] = offsets[j] + stepLists[j].count }
            let total = offsets[live.count]
            var samples = [Float](repeating: 0, count: 8 * total)
            for j in live.indices {
                let state = states[live[j]]!
                for (n, (t, _)) in stepLists[j].enumerated() {
                    let p = state.origin + t * state.direction, base = 8 * (offsets[j] + n)
                    samples[base] = p.x; samples[base + 1] = p.y; samples[base + 2] = p.z
                    samples[base + 4] = state.direction.x; samples[base + 5] = state.direction.y; samples[base + 6] = state.direction.z
                }
            }
            // Four spare floats so the pointer below exists even when no ray placed a sample.
            let radiance = field.evaluate(samples: samples) + [0, 0, 0, 0]
            var next: [Int] = []
            next.reserveCapacity(live.count)
            radiance.withUnsafeBufferPointer { radiance in
                for j in live.indices {
                    var state = states[live[j]]!
                    let alive = MarchParameters.composite(&state, steps: stepLists[j][...], radiance: radiance.baseAddress! + 4 * offsets[j],
                                                          threshold: options.terminationThreshold)
                    states[live[j]] = state
                    if alive { next.append(live[j]) }
                }
            }
            live = next
        }
        var image = Self.resolve(width: camera.width, height: camera.height, samplesPerPixel: spp, background: options.background,
                                 colour: { i in states[i].map { SIMD4($0.colour, $0.transmittance) } ?? SIMD4(0, 0, 0, 1) },
                                 depthSum: { states[$0]?.depthSum ?? 0 }, samples: { states[$0]?.samples ?? 0 })
        image.rounds = rounds
        return image
    }
}
