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
        print(String(format: "occupancy grid %d^3 x %d levels built in %.2f s, %.2f%% of level 0 occupied",
                     grid.settings.resolution, grid.settings.levels, Date().timeIntervalSince(gridStart), 100 * grid.occupiedFraction()))

        let pixels = stride(from: psnrStride / 2, to: resolution, by: psnrStride).flatMap { y in
            stride(from: psnrStride / 2, to: resolution, by: psnrStride).map { y * resolution + $0 }
        }
        let referenceStart = Date()
        let reference = ReferenceRenderer.render(field: field, camera: camera, options: options, samplesPerRay: 4096, pixels: pixels)
        print(String(format: "reference: %d pixels x 4096 float64 steps in %.1f s", pixels.count, Date().timeIntervalSince(referenceStart)))
        let referenceRGB = pixels.flatMap { p in (0..<3).map { reference.rgb[3 * p + $0] } }

        var uniform = options
        uniform.skipEmptySpace = false
        var uniformNoTermination = uniform
        uniformNoTermination.terminationThreshold = 0
        var medians: [String: Double] = [:]
        print("mode                      ms/frame   Mrays/s  Msamples/s  samples/ray  per hit ray  rounds  PSNR dB")
        var modes = [("occupancy grid", options), ("uniform 1024 steps", uniform)]
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
            let median = times.sorted()[times.count / 2]
            medians[name] = median
            let rgb = pixels.flatMap { p in (0..<3).map { image.rgb[3 * p + $0] } }
            print(String(format: "%@ %9.1f %9.2f %11.1f %12.2f %12.2f %7d %8.2f", name.padding(toLength: 24, withPad: " ", startingAt: 0), 1000 * median,
                         Double(image.rayCount) / median / 1e6, Double(image.sampleCount) / median / 1e6,
                         Double(image.sampleCount) / Double(image.rayCount), image.meanSamplesPerRay(), image.rounds,
                         psnr(rgb, referenceRGB)))
        }
        print(String(format: "speedup of occupancy-grid marching over uniform marching (same run): %.1fx",
                     medians["uniform 1024 steps"]! / medians["occupancy grid"]!))
        if let full = medians["uniform, no termination"] {
            print(String(format: "speedup over uniform marching without early termination: %.1fx", full / medians["occupancy grid"]!))
        }
    }
}
