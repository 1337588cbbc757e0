import ArgumentParser
import Foundation
import VulkanKernels

/// `vkk train`: fits instant-ngp's hash-grid NeRF to a capture (transforms.json + images), on the CPU path
/// or (`--backend vulkan`) with the network's forward, backward and Adam on a Vulkan device.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a hash-grid radiance field from a transforms.json capture (CPU path by default; --backend vulkan runs the training step on a Vulkan device).")

    @Argument(help: "The capture's transforms.json (NeRF-synthetic, instant-ngp or nerfstudio); its images are PNG or JPEG.")
    var transforms: String
    @Option(name: [.short, .long], help: "Write the trained field as an instant-ngp style snapshot (.msgpack, or .ingp compressed).")
    var output: String?
    @Option(help: "Training steps (the run also stops at --time-limit).")
    var steps = 30_000
    @Option(help: "Stop after this many seconds of training (evaluation not counted).")
    var timeLimit: Double?
    @Option(help: "Reduce every image by this integer factor on load (box filter).")
    var downscale = 1
    @Option(help: "Held-out views: every:N (views 0, N, 2N, … are not trained on) or none.")
    var holdout = "every:8"
    @Option(help: "Rays per training step.")
    var batchRays = 4096
    @Option(help: "At most this many samples per step (rays past the budget sit the step out; instant-ngp aims at 2^18).")
    var maxSamples = 1 << 18
    @Option(help: "Steps during which every density-grid update re-evaluates all cells (instant-ngp: 256); later updates sample half the cells.")
    var gridWarmup = 256
    @Flag(help: "Back-propagate every marched sample, not only those before each ray's early termination (for comparisons).")
    var noCompaction = false
    @Option(help: "Evaluate the held-out views every N steps (0: only at the end).")
    var evalEvery = 0
    @Option(help: "Evaluate on every N-th pixel of every N-th row (1: whole images; larger: a quicker estimate).")
    var evalStride = 1
    @Option(help: "Seed of every random choice (the CPU path is deterministic for a seed and thread count).")
    var seed: UInt64 = 1337
    @Option(help: "Loss: huber (instant-ngp's default) or l2; overrides --config's.")
    var loss: String?
    @Option(help: "instant-ngp network config (configs/nerf/*.json): encoding, networks, loss and optimizer; unsupported keys or values are errors naming the key. Default: base.json's values (without its Ema wrapper).")
    var config: String?
    @Option(help: "Write the run's summary (steps, seconds, held-out PSNR per view and mean, throughput) as JSON.")
    var json: String?
    @Option(help: "Continue training from this snapshot (one `vkk train -o` wrote for the same capture and settings): weights, density grid, Adam state and step; --steps is the total, the snapshot's steps included.")
    var resume: String?
    @Flag(help: "Leave Adam's moments and the fp32 master weights out of the -o snapshot (smaller; instant-ngp's default; a resume then restarts Adam's moments).")
    var noOptimizerState = false
    @Option(help: "Write a PNG of each held-out view (render and ground truth side by side) into this folder.")
    var images: String?
    @Option(help: "cpu (default) or vulkan: where the step runs (on vulkan everything after drawing the rays: march, network forward and backward, compositing and loss, compaction, Adam and the density grid). On a CPU driver such as lavapipe the CPU path is much faster.")
    var backend: TrainBackend = .cpu
    @Option(help: "Vulkan device index (as `vkk info` lists them) for --backend vulkan.")
    var device: Int?
    @Option(help: "Hash-gradient scatter on Vulkan: atomic (float atomics; the default where the device has them) or deterministic.")
    var scatter: TrainScatter?

    /// Throws unless `path`'s folder exists and is writable: checked before training, so that a run does
    /// not end, minutes later, in a snapshot or summary it cannot write.
    func checkDestination(_ path: String, option: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        let directory = folder.isEmpty ? "." : folder
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("\(option) \(path): the folder \(directory) does not exist")
        }
        guard FileManager.default.isWritableFile(atPath: directory) else {
            throw ValidationError("\(option) \(path): the folder \(directory) is not writable")
        }
    }

    func run() throws {
        if let output { try checkDestination(output, option: "-o") }
        if let json { try checkDestination(json, option: "--json") }
        if let images { try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true) }
        let lossChoice = try loss.map { name -> TrainingLoss in
            guard let choice = TrainingLoss(rawValue: name) else { throw ValidationError("--loss must be huber or l2") }
            return choice
        }
        let split = try HoldoutSplit(parsing: holdout)
        let loadStart = Date()
        let dataset = try TrainingDataset.load(transforms: transforms, downscale: downscale, holdout: split)
        if !dataset.skippedFrames.isEmpty {
            let names = dataset.skippedFrames.map { "\($0.name) (\($0.reason))" }.joined(separator: ", ")
            FileHandle.standardError.write(Data("vkk train: skipped \(dataset.skippedFrames.count) frame(s) whose image is missing or unreadable: \(names)\n".utf8))
        }
        let first = dataset.training[0].image
        print("loaded \(dataset.training.count) training + \(dataset.heldOut.count) held-out views (\(first.width)×\(first.height)), "
              + "aabb_scale \(dataset.aabbScale), in \(String(format: "%.1f", Date().timeIntervalSince(loadStart))) s")
        var options = TrainingOptions()
        var configuration: HashGridConfiguration? = nil
        if let config {
            let parsed = try InstantNGPConfig.read(contentsOf: config, aabbScale: dataset.aabbScale)
            options = parsed.options
            configuration = parsed.configuration
        }
        options.batchRays = batchRays
        options.maxSamplesPerStep = maxSamples
        options.densityGridWarmupSteps = gridWarmup
        options.compactBackward = !noCompaction
        options.seed = seed
        if let lossChoice { options.loss = lossChoice }
        let context = try ComputeContext(backend: backend == .cpu ? .cpu : .vulkan(deviceIndex: device))
        let scatterMethod: VulkanTrainingNetwork.ScatterMethod? = switch scatter {
        case .atomic: .atomicAdd
        case .deterministic: .deterministic
        case nil: nil
        }
        let trainer = try NeRFTrainer(context: context, dataset: dataset, configuration: configuration, options: options,
                                      scatterMethod: scatterMethod)
        if backend == .vulkan { print("training on \(context.backendDescription)") }
        if let resume {
            try trainer.resume(from: try NGPSnapshot.read(contentsOf: resume))
            print("resumed from \(resume) at step \(trainer.step)")
        }
        let firstStep = trainer.step
        var curve: [(step: Int, seconds: Double, psnr: Float)] = []
        func evaluate() -> [Float] { dataset.heldOut.map { trainer.psnr(of: $0, stride: evalStride) } }
        let start = Date()
        var trainingSeconds = 0.0, lastPrint = 0.0
        var report: TrainingStepReport? = nil
        var runningPSNR: Float = 0
        while trainer.step < steps && (timeLimit.map { trainingSeconds < $0 } ?? true) {
            let stepStart = Date()
            report = try trainer.trainStep()
            trainingSeconds += Date().timeIntervalSince(stepStart)
            runningPSNR = runningPSNR == 0 ? report!.psnr : 0.95 * runningPSNR + 0.05 * report!.psnr
            if trainingSeconds - lastPrint >= 5 || trainer.step == steps {
                lastPrint = trainingSeconds
                let rate = Double(trainer.step - firstStep) / trainingSeconds
                let eta = timeLimit.map { max(0, min($0 - trainingSeconds, Double(steps - trainer.step) / rate)) } ?? Double(steps - trainer.step) / rate
                print(String(format: "step %d/%d  %.2f steps/s  loss %.5f  running PSNR %.2f dB  %d samples/step  grid %.1f%% occupied  ETA %.0f s",
                             trainer.step, steps, rate, report!.loss, runningPSNR, report!.samples, 100 * trainer.densityGrid.occupiedFraction, eta))
            }
            if evalEvery > 0, trainer.step % evalEvery == 0, !dataset.heldOut.isEmpty {
                let values = evaluate()
                let mean = values.reduce(0, +) / Float(values.count)
                curve.append((trainer.step, trainingSeconds, mean))
                print(String(format: "step %d (%.0f s of training): held-out PSNR %.2f dB", trainer.step, trainingSeconds, mean))
            }
        }
        let heldOut = evaluate()
        let mean = heldOut.isEmpty ? Float.nan : heldOut.reduce(0, +) / Float(heldOut.count)
        if !heldOut.isEmpty, curve.last?.step != trainer.step { curve.append((trainer.step, trainingSeconds, mean)) }
        let t = trainer.timings
        // On Vulkan the forward pass is part of one device batch: no forward-only rate (NaN, null in JSON).
        let forwardRate = t.forward > 0 ? Double(t.samples) / t.forward : .nan, trainRate = Double(t.samples) / t.forwardAndBackward
        print("trained \(trainer.step - firstStep) steps\(firstStep > 0 ? " (to step \(trainer.step))" : "") in \(String(format: "%.1f", trainingSeconds)) s (\(String(format: "%.2f", Double(trainer.step - firstStep) / trainingSeconds)) steps/s); "
              + "held-out PSNR \(String(format: "%.2f", mean)) dB over \(heldOut.count) views")
        print("time: \(t)")
        let forwardText = forwardRate.isNaN ? "— (inside the device batch)" : String(format: "%.2f", forwardRate / 1e6)
        let bothText = String(format: "%.2f", trainRate / 1e6) + (t.deviceBatch > 0 ? " (the whole device batch)" : "")
        print("field throughput: \(forwardText) M samples/s forward, \(bothText) M samples/s forward+backward"
              + " (\(backend == .cpu ? "CPU" : "Vulkan"), \(t.samples) samples)")
        if let images {
            for view in dataset.heldOut {
                let w = view.image.width, h = view.image.height
                let rendered = trainer.render(camera: view.camera, background: options.evaluationBackground)
                var pixels = [UInt8](repeating: 0, count: 2 * w * h * 3)
                for y in 0..<h {
                    for x in 0..<w {
                        let truth = view.image.colour(x: x, y: y, over: options.evaluationBackground)
                        for c in 0..<3 {
                            pixels[3 * (y * 2 * w + x) + c] = UInt8(min(max(rendered[3 * (y * w + x) + c], 0), 1) * 255 + 0.5)
                            pixels[3 * (y * 2 * w + w + x) + c] = UInt8(min(max(truth[c], 0), 1) * 255 + 0.5)
                        }
                    }
                }
                let name = String(format: "heldout_%04d.png", view.frameIndex)
                try PNG.write8(pixels, width: 2 * w, height: h, channels: 3, to: (images as NSString).appendingPathComponent(name))
            }
        }
        if let output {
            try trainer.snapshot(includeOptimizerState: !noOptimizerState).write(to: output)
            print("wrote \(output)")
        }
        if let json {
            let summary: [String: Any] = [
                "transforms": transforms, "steps": trainer.step, "training_seconds": trainingSeconds,
                "wall_seconds": Date().timeIntervalSince(start), "downscale": downscale, "batch_rays": batchRays, "max_samples": maxSamples, "eval_stride": evalStride, "grid_warmup": gridWarmup, "seed": seed,
                "loss": options.loss.rawValue, "config": config ?? "", "holdout": holdout, "backend": backend.rawValue,
                "held_out": zip(dataset.heldOut, heldOut).map { ["view": $0.0.name, "frame": $0.0.frameIndex, "psnr": Double($0.1)] },
                "held_out_mean_psnr": Double(mean),
                "curve": curve.map { ["step": $0.step, "seconds": $0.seconds, "psnr": Double($0.psnr)] },
                "samples_per_second_forward": forwardRate.isNaN ? NSNull() as Any : forwardRate, "samples_per_second_forward_backward": trainRate,
                "samples": t.samples, "back_propagated_samples": t.usedSamples, "compaction": !noCompaction,
                "phase_seconds": ["density_grid": t.densityGrid, "ray_sampling": t.raySampling, "marching": t.marching,
                                  "forward": t.forward, "compositing": t.compositing, "compaction": t.compaction, "backward": t.backward,
                                  "hash_scatter": t.hashScatter, "optimizer": t.optimizer, "device_batch": t.deviceBatch],
            ]
            let data = try JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: json))
        }
    }
}

enum TrainBackend: String, ExpressibleByArgument, CaseIterable {
    case cpu, vulkan
}

enum TrainScatter: String, ExpressibleByArgument, CaseIterable {
    case atomic, deterministic
}
