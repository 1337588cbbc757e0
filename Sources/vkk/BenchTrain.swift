import ArgumentParser
import Foundation
import Glibc
import VulkanKernels

/// `vkk bench train`: NeRF training speed and quality over a fixed training time — steps/s, field
/// throughput forward and forward + backward, time per phase, peak memory and the held-out PSNR curve.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "NeRF training: steps/s, samples/s forward and forward+backward, time per phase, peak memory and the held-out PSNR curve over a fixed training time, on a capture or on a built-in scene rendered into one.")

    @OptionGroup var options: BenchOptions

    @Argument(help: "A capture's transforms.json (default: 20 views of the built-in 'spheres' scene rendered at --size, every 5th held out).")
    var capture: String?

    @Option(help: "Seconds of training (evaluations not counted; default 120, --quick 20).")
    var seconds: Double?

    @Option(help: "Held-out PSNR checkpoints over the run (evaluated on every --eval-stride-th pixel of every such row).")
    var checkpoints = 5

    @Option(help: "Evaluate on every N-th pixel of every N-th row.")
    var evalStride = 2

    @Option(help: "Reduce a capture's images by this factor on load.")
    var downscale = 2

    @Option(help: "Held-out views of a capture: every:N or none.")
    var holdout = "every:8"

    @Option(help: "Image size of the built-in scene's views.")
    var size = 128

    @Option(help: "Rays per training step.")
    var batchRays = 4096

    func validate() throws {
        guard checkpoints >= 1, checkpoints <= 100 else { throw ValidationError("--checkpoints must be within 1…100") }
        guard evalStride >= 1 else { throw ValidationError("--eval-stride must be at least 1") }
        guard (1...64).contains(downscale) else { throw ValidationError("--downscale must be within 1…64") }
        guard (8...1024).contains(size) else { throw ValidationError("--size must be within 8…1024") }
        guard batchRays >= 1, batchRays <= 1 << 20 else { throw ValidationError("--batch-rays must be within 1…2^20") }
        if let seconds { guard seconds > 0, seconds <= 86_400 else { throw ValidationError("--seconds must be within (0, 86400]") } }
    }

    func run() throws {
        let context = try options.makeContext()
        let dataset: TrainingDataset
        let source: String
        if let capture {
            dataset = try TrainingDataset.load(transforms: capture, downscale: downscale, holdout: try HoldoutSplit(parsing: holdout))
            source = "\(capture) (downscale \(downscale), holdout \(holdout))"
        } else {
            dataset = try TrainingDataset.rendered(scene: .spheres, views: 20, size: size, holdout: .every(5), context: try ComputeContext(backend: .cpu))
            source = "built-in spheres, 20 views at \(size)x\(size), every 5th held out"
        }
        guard !dataset.heldOut.isEmpty else { throw ValidationError("the capture has no held-out view (use --holdout every:N)") }
        var trainingOptions = TrainingOptions()
        trainingOptions.batchRays = batchRays
        let trainer = try NeRFTrainer(context: context, dataset: dataset, options: trainingOptions)
        let budget = seconds ?? (options.quick ? 20 : 120)
        let table = BenchTable(title: "NeRF training on \(context.backendDescription): \(source), \(dataset.training.count) training views, \(todayUTC())")
        var trained = 0.0
        // Vulkan: the tensor pool's blocks, the most held at the end of any step so far (the trainer's
        // buffers persist across steps; the CPU backend holds none).
        var deviceBytes = 0
        func evaluate() -> Float {
            let values = dataset.heldOut.map { trainer.psnr(of: $0, stride: evalStride) }
            return values.reduce(0, +) / Float(values.count)
        }
        for checkpoint in 1...checkpoints {
            let until = budget * Double(checkpoint) / Double(checkpoints)
            let stepsBefore = trainer.step, secondsBefore = trained
            while trained < until {
                let start = Date()
                try trainer.trainStep()
                trained += Date().timeIntervalSince(start)
                if context.isVulkan { deviceBytes = max(deviceBytes, context.memoryStatistics.reservedBytes) }
            }
            let t = trainer.timings
            table.add(BenchRow([
                "step": .integer(trainer.step), "seconds": .number(trained, digits: 1),
                "steps/s": .number(Double(trainer.step - stepsBefore) / (trained - secondsBefore), digits: 2),
                "held-out PSNR": .number(Double(evaluate()), digits: 2),
                "fwd Msamples/s": t.forward > 0 ? .number(Double(t.samples) / t.forward * 1e-6, digits: 2) : .text("— (one batch)"),
                "fwd+bwd Msamples/s": .number(Double(t.samples) / t.forwardAndBackward * 1e-6, digits: 2),
                "samples/step": .integer(t.samples / max(trainer.step, 1)),
                "peak RSS MB": .number(peakResidentMegabytes(), digits: 0),
                "device MB": context.isVulkan ? .number(Double(deviceBytes) / 1_048_576, digits: 0) : .text("—"),
            ]))
        }
        let t = trainer.timings
        print("time per phase: \(t)")
        if let path = options.json {
            try table.writeJSON(to: path, device: context.backendDescription, extra: [
                "date": todayUTC(), "capture": source, "phase_seconds": "\(t)",
            ])
        }
    }

    /// The process's peak resident memory so far (getrusage: kilobytes on Linux).
    func peakResidentMegabytes() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
