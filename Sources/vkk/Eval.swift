import ArgumentParser
import Foundation
import VulkanKernels

/// `vkk eval`: a trained snapshot's renders against a capture's images — PSNR and SSIM per view and mean.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render an instant-ngp snapshot at a capture's cameras and score it against the capture's images (PSNR, SSIM).")

    @Argument(help: "The snapshot (.ingp or .msgpack), e.g. one `vkk train -o` wrote.")
    var snapshot: String
    @Option(help: "The capture's transforms.json: its cameras (read in instant-ngp's world) and the images they point to.")
    var camera: String
    @Option(help: "Folder the frames' image paths are relative to (default: the transforms.json's folder).")
    var images: String?
    @Option(help: "Which frames: none (every frame with an image) or every:N (the held-out views of `vkk train --holdout every:N`).")
    var holdout = "none"
    @Option(help: "Reduce every image (and camera) by this integer factor, as `vkk train --downscale` did.")
    var downscale = 1
    @Option(help: "Background colour R,G,B in [0, 1] that renders and images with alpha are composited over.")
    var background = "1,1,1"
    @Option(help: "Write each view's render beside its ground truth as a PNG into this folder.")
    var output: String?
    @Option(help: "Write the scores (per view and mean) as JSON.")
    var json: String?
    @OptionGroup var backend: BackendOptions

    func run() throws {
        let channels = background.split(separator: ",").compactMap { Float($0) }
        guard channels.count == 3, channels.allSatisfy({ $0.isFinite && $0 >= 0 && $0 <= 1 }) else {
            throw ValidationError("--background needs R,G,B in [0, 1]")
        }
        let backgroundColour = SIMD3(channels[0], channels[1], channels[2])
        let split = try HoldoutSplit(parsing: holdout)
        let field = try HashGridField.load(snapshot: snapshot)
        let dataset = try TrainingDataset.load(transforms: camera, downscale: downscale, holdout: split, imageFolder: images)
        if !dataset.skippedFrames.isEmpty {
            let names = dataset.skippedFrames.map { "\($0.name) (\($0.reason))" }.joined(separator: ", ")
            FileHandle.standardError.write(Data("vkk eval: skipped \(dataset.skippedFrames.count) frame(s) whose image is missing or unreadable: \(names)\n".utf8))
        }
        let views: [TrainingView]
        if case .none = split { views = dataset.training } else { views = dataset.heldOut }
        guard !views.isEmpty else { throw CommandError("\(camera): no view to evaluate with --holdout \(holdout)") }
        let context = try backend.makeContext()
        let renderer = Renderer(context: context)
        var options = RenderOptions()
        options.background = backgroundColour
        if let output { try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true) }
        var rows: [(name: String, psnr: Double, ssim: Double)] = []
        print("evaluating \(views.count) view(s) of \(camera) against \(snapshot) on \(context.backendDescription)")
        for view in views {
            let w = view.image.width, h = view.image.height
            let rendered = try renderer.render(field: field, camera: view.camera, options: options)
            var truth = [Float](repeating: 0, count: 3 * w * h)
            for y in 0..<h {
                for x in 0..<w {
                    let c = view.image.colour(x: x, y: y, over: backgroundColour)
                    for k in 0..<3 { truth[3 * (y * w + x) + k] = c[k] }
                }
            }
            let clamped = rendered.rgb.map { min(max($0, 0), 1) }
            let psnr = try ImageMetrics.psnr(clamped, truth, width: w, height: h)
            let ssim = try ImageMetrics.ssim(clamped, truth, width: w, height: h)
            rows.append((view.name, psnr, ssim))
            print(String(format: "%@  PSNR %.2f dB  SSIM %.4f", view.name, psnr, ssim))
            if let output {
                var pixels = [UInt8](repeating: 0, count: 2 * w * h * 3)
                for y in 0..<h {
                    for x in 0..<w {
                        for c in 0..<3 {
                            pixels[3 * (y * 2 * w + x) + c] = UInt8(clamped[3 * (y * w + x) + c] * 255 + 0.5)
                            pixels[3 * (y * 2 * w + w + x) + c] = UInt8(min(max(truth[3 * (y * w + x) + c], 0), 1) * 255 + 0.5)
                        }
                    }
                }
                let name = String(format: "eval_%04d.png", view.frameIndex)
                try PNG.write8(pixels, width: 2 * w, height: h, channels: 3, to: (output as NSString).appendingPathComponent(name))
            }
        }
        let meanPSNR = rows.map(\.psnr).reduce(0, +) / Double(rows.count)
        let meanSSIM = rows.map(\.ssim).reduce(0, +) / Double(rows.count)
        print(String(format: "mean over %d view(s): PSNR %.2f dB  SSIM %.4f", rows.count, meanPSNR, meanSSIM))
        if let json {
            let summary: [String: Any] = [
                "snapshot": snapshot, "camera": camera, "holdout": holdout, "downscale": downscale,
                "views": rows.map { ["view": $0.name, "psnr": $0.psnr, "ssim": $0.ssim] },
                "mean_psnr": meanPSNR, "mean_ssim": meanSSIM,
            ]
            let data = try JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: json))
        }
    }
}
