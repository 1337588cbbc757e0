import ArgumentParser
import Foundation
import VulkanKernels

/// `vkk bench nerf`: occupancy-grid marching against dense uniform marching, same frame, same run.
struct BenchNeRF: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nerf",
        abstract: "Rays/s, samples/s and samples per ray of NeRF rendering, grid vs uniform marching, with PSNR to the float64 reference.")

    @Option(help: "Built-in scene.") var scene = "shell"
    @Option(help: "Image width and height.") var resolution = 800
    @OptionGroup var backend: BackendOptions
    @Option(help: "Timed renders of the grid mode (the median is reported; uniform modes are timed once).") var repeats = 3
    @Option(help: "Reference (4096 float64 steps per ray) on every Nth pixel per axis.") var psnrStride = 8
    @Option(help: "Occupancy grid cells per axis (level 0); default: the renderer's (256).") var gridResolution: Int?
    @Flag(help: "Also time uniform marching without early termination (slow: every ray takes every step).")
    var fullUniform = false
    @Option(help: "Also write the rows as JSON to this file.") var json: String?

    func validate() throws {
        guard resolution > 0, resolution <= 8192, resolution * resolution <= Renderer.maximumPixels else {
            throw ValidationError("--resolution takes 1…\(Int(Double(Renderer.maximumPixels).squareRoot())) (at most \(Renderer.maximumPixels) pixels), got \(resolution)")
        }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        guard psnrStride >= 1 else { throw ValidationError("--psnr-stride must be at least 1") }
    }

    func run() throws {
        guard let builtIn = BuiltInScene(rawValue: scene) else { throw ValidationError("unknown scene \(scene)") }
        let field = builtIn.makeField()
        let context = try backend.makeContext()
        let renderer = Renderer(context: context)
        let camera = Camera.orbit(frame: 0, of: 1, width: resolution, height: resolution)
        print("NeRF bench: scene '\(scene)', \(resolution)x\(resolution), 1 spp, \(context.backendDescription)")

        let gridStart = Date()
        var options = RenderOptions()
        if let gridResolution { options.occupancy.resolution = gridResolution }
        let grid = try renderer.occupancyGrid(for: field, settings: options.occupancy)
        let gridSeconds = Date().timeIntervalSince(gridStart)
        print("occupancy grid \(grid.settings.resolution)^3 x \(grid.settings.levels) levels built in \(formatted(gridSeconds, digits: 2)) s, "
              + "\(formatted(100 * grid.occupiedFraction(), digits: 2))% of level 0 occupied")

        let pixels = stride(from: psnrStride / 2, to: resolution, by: psnrStride).flatMap { y in
            stride(from: psnrStride / 2, to: resolution, by: psnrStride).map { y * resolution + $0 }
        }
        let referenceStart = Date()
        let reference = ReferenceRenderer.render(field: field, camera: camera, options: options, samplesPerRay: 4096, pixels: pixels)
        print("reference: \(pixels.count) pixels x 4096 float64 steps in \(formatted(Date().timeIntervalSince(referenceStart), digits: 1)) s")
        let referenceRGB = pixels.flatMap { p in (0..<3).map { reference.rgb[3 * p + $0] } }

        var uniform = options
        uniform.skipEmptySpace = false
        var uniformNoTermination = uniform
        uniformNoTermination.terminationThreshold = 0
        var medians: [String: Double] = [:]
        let table = BenchTable(title: "nerf '\(scene)' \(resolution)x\(resolution), 1 spp, grid \(grid.settings.resolution)^3, on \(context.backendDescription), \(todayUTC())")
        let uniformName = "uniform \(RenderOptions.defaultStepsPerDiagonal) steps"
        var modes = [("occupancy grid", options), (uniformName, uniform)]
        if fullUniform { modes.append(("uniform, no termination", uniformNoTermination)) }
        for (index, (name, modeOptions)) in modes.enumerated() {
            // Warm-up (pipelines, memory) once; the slow uniform modes are timed once.
            if index == 0 { _ = try renderer.render(field: field, camera: camera, options: modeOptions) }
            var times: [Double] = []
            var image: RenderedImage!
            for _ in 0..<(index == 0 ? max(repeats, 1) : 1) {
                image = try renderer.render(field: field, camera: camera, options: modeOptions)
                times.append(image.seconds)
            }
            let seconds = median(times)
            medians[name] = seconds
            let rgb = pixels.flatMap { p in (0..<3).map { image.rgb[3 * p + $0] } }
            table.add(BenchRow([
                "mode": .text(name), "ms/frame": .number(1000 * seconds, digits: 1),
                "Mrays/s": .number(Double(image.rayCount) / seconds / 1e6, digits: 2),
                "Msamples/s": .number(Double(image.sampleCount) / seconds / 1e6, digits: 1),
                "samples/ray": .number(Double(image.sampleCount) / Double(image.rayCount), digits: 2),
                "per hit ray": .number(image.meanSamplesPerRay(), digits: 2), "rounds": .integer(image.rounds),
                "PSNR dB": .number(psnr(rgb, referenceRGB), digits: 2),
            ]))
        }
        let gridFrame = medians["occupancy grid"]!
        print("speedup of occupancy-grid marching over uniform marching (same run): \(formatted(medians[uniformName]! / gridFrame, digits: 1))x")
        if let full = medians["uniform, no termination"] {
            print("speedup over uniform marching without early termination: \(formatted(full / gridFrame, digits: 1))x")
        }
        if let json {
            try table.writeJSON(to: json, device: context.backendDescription,
                                extra: ["date": todayUTC(), "grid build seconds": formatted(gridSeconds, digits: 2)])
        }
    }
}
