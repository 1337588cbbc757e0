import ArgumentParser
import Foundation
import VulkanKernels

/// `vkk render`: radiance-field scenes to PNG frames, headless.
struct Render: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render a radiance field to PNG images (no arguments: the built-in 'shell' scene to render.png).")

    @Option(help: "Built-in scene (\(FieldCatalog.builtInNames.joined(separator: ", "))) or a scene file of a registered format.")
    var scene = "shell"
    @Option(help: "Camera file: transforms.json (instant-ngp, nerfstudio, NeRF-synthetic; as stored, distortion applied) or nerfstudio camera_path.json. Renders every frame's camera at the file's resolution unless --resolution is given.")
    var camera: String?
    @Flag(help: "Read the --camera transforms.json in instant-ngp's world (position × scale + offset, axes cycled: the unit cube), the coordinates of instant-ngp snapshots (implied for --scene SNAPSHOT.ingp/.msgpack; needed for ngp-blobs).")
    var instantNgpWorld = false
    @Option(help: "Image size: WIDTHxHEIGHT, or one number: that width at the camera file's aspect ratio (a square without a camera file). Default 800x800, or the camera file's.")
    var resolution: String?
    @Option(help: "Rays per pixel.")
    var spp = 1
    @Option(name: [.short, .long], help: "Output folder.")
    var output = "."
    @Flag(help: "Also write depth: 16-bit PNG (1/1000 world units) and a colour-mapped preview.")
    var depth = false
    @Flag(help: "Also write an RGBA PNG with opacity as alpha.")
    var alpha = false
    @Option(help: "Render N frames on a circular orbit around the scene (a snapshot: around instant-ngp's unit cube, +y up).")
    var orbit: Int?
    @Option(help: "Frame range START:END (END exclusive) of the orbit or camera file; either side may be empty.")
    var frames: String?
    @Option(help: "Render only shard I of N (I/N, 0-based) of the selected frames: contiguous blocks, for job schedulers.")
    var shard: String?
    @Option(help: "Background colour R,G,B in [0, 1].")
    var background = "1,1,1"
    @Flag(help: "March uniformly through the bounding box (no empty-space skipping), for comparisons.")
    var noSkipping = false
    @OptionGroup var backend: BackendOptions

    /// Frames an orbit may have (a camera list of this size costs a few MiB).
    static let maximumFrames = 1_000_000

    func run() throws {
        let requested = try resolution.map(parseResolution)
        let (width, height) = requested ?? (800, 800)
        var options = RenderOptions()
        options.samplesPerPixel = spp
        let channels = background.split(separator: ",").compactMap { Float($0) }
        guard channels.count == 3 else { throw ValidationError("--background needs R,G,B") }
        options.background = SIMD3(channels[0], channels[1], channels[2])
        options.skipEmptySpace = !noSkipping
        try options.validate()

        let field = try FieldCatalog.field(named: scene)
        // An instant-ngp snapshot lives in instant-ngp's world: read its camera file in that world too.
        let lowered = scene.lowercased()
        let instantNgpWorld = instantNgpWorld || lowered.hasSuffix(".ingp") || lowered.hasSuffix(".msgpack")
        var cameras: [Camera]
        let single = camera == nil && orbit == nil
        if self.instantNgpWorld && camera == nil { throw ValidationError("--instant-ngp-world needs --camera transforms.json") }
        if let camera, instantNgpWorld {
            cameras = try TransformsFile.read(contentsOf: camera, convention: .instantNGP(),
                                              imageSize: requested.map { (width: $0.0, height: $0.1) }).cameras
            if let (width, height) = requested { cameras = cameras.map { $0.resized(width: width, height: height) } }
        } else if let camera, let width = singleNumberResolution {
            // One number with a camera file: that width, the file's aspect ratio (a square only when the
            // file gives no image size, e.g. NeRF-synthetic's val/test files).
            if let native = try? FieldCatalog.cameras(fromFile: camera) {
                cameras = native.map { $0.resized(width: width, height: max(1, (width * $0.height + $0.width / 2) / $0.width)) }
            } else {
                cameras = try FieldCatalog.cameras(fromFile: camera, width: width, height: width)
            }
        } else if let camera {
            cameras = try FieldCatalog.cameras(fromFile: camera, width: requested?.0, height: requested?.1)
        } else {
            let count = orbit ?? 1
            guard count > 0, count <= Self.maximumFrames else { throw ValidationError("--orbit takes 1…\(Self.maximumFrames) frames, got \(count)") }
            // A snapshot lives in instant-ngp's world: orbit its unit cube, +y up.
            cameras = (0..<count).map {
                instantNgpWorld ? Camera.instantNGPOrbit(frame: $0, of: count, width: width, height: height)
                    : Camera.orbit(frame: $0, of: count, width: width, height: height)
            }
        }
        let selected = try selectFrames(cameras.count)
        // Every selected camera is checked before the first frame: a size the renderer refuses, or a
        // singular or non-finite pose (which would render a blank frame), fails the run up front.
        for index in selected {
            do { try Renderer.validate(cameras[index]) } catch {
                throw CommandError("frame \(index)\(camera.map { " of \($0)" } ?? ""): \(error)")
            }
        }
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)

        let context = try backend.makeContext()
        let renderer = Renderer(context: context)
        let gridStart = Date()
        if options.skipEmptySpace { _ = try renderer.occupancyGrid(for: field, settings: options.occupancy) }
        let gridSeconds = Date().timeIntervalSince(gridStart)
        let progress = ProgressBar(total: selected.count)
        let start = Date()
        var rays = 0, samples = 0, hitSamples = 0.0, hitFrames = 0
        for (done, index) in selected.enumerated() {
            let image = try renderer.render(field: field, camera: cameras[index], options: options)
            let stem = single ? "render" : "frame_" + zeroPadded(index, width: 5)
            let base = (output as NSString).appendingPathComponent(stem)
            try PNG.write(image, to: base + ".png")
            if depth {
                try PNG.writeDepth(image, to: base + "_depth.png")
                try PNG.writeDepthPreview(image, to: base + "_depth_preview.png")
            }
            if alpha { try PNG.writeWithAlpha(image, background: options.background, to: base + "_rgba.png") }
            rays += image.rayCount
            samples += image.sampleCount
            let perHit = image.meanSamplesPerRay()
            if perHit > 0 { hitSamples += perHit; hitFrames += 1 }
            progress.update(done: done + 1, elapsed: Date().timeIntervalSince(start))
        }
        progress.finish()
        let seconds = Date().timeIntervalSince(start)
        let (shownWidth, shownHeight) = cameras.first.map { ($0.width, $0.height) } ?? (width, height)
        let plural = selected.count == 1 ? "" : "s"
        let hitMean = hitFrames > 0 ? hitSamples / Double(hitFrames) : 0
        print("rendered \(selected.count) frame\(plural) of '\(field.name)' (\(shownWidth)x\(shownHeight), \(spp) spp) on "
              + "\(context.backendDescription) in \(formatted(seconds, digits: 2)) s (grid \(formatted(gridSeconds, digits: 2)) s): "
              + "\(formatted(Double(rays) / seconds / 1e6, digits: 3)) M rays/s, "
              + "\(formatted(Double(samples) / Double(max(rays, 1)), digits: 1)) samples/ray (\(formatted(hitMean, digits: 1)) on rays that hit) -> \(output)")
    }

    /// `--resolution N` (one number), which keeps a camera file's aspect ratio.
    private var singleNumberResolution: Int? {
        guard let resolution, !resolution.lowercased().contains("x") else { return nil }
        return Int(resolution)
    }

    private func parseResolution(_ resolution: String) throws -> (Int, Int) {
        let parts = resolution.lowercased().split(separator: "x").compactMap { Int($0) }
        guard (parts.count == 1 || parts.count == 2), parts.allSatisfy({ $0 > 0 && $0 <= 8192 }) else {
            throw ValidationError("--resolution: expected WIDTHxHEIGHT or N with sides 1…8192, got \(resolution)")
        }
        let size = (parts[0], parts.count == 2 ? parts[1] : parts[0])
        // The renderer's own limit, checked here so that the run fails before any work.
        guard size.0 * size.1 <= Renderer.maximumPixels else {
            throw ValidationError("--resolution \(size.0)x\(size.1) has \(size.0 * size.1) pixels; the renderer takes at most \(Renderer.maximumPixels) per frame")
        }
        return size
    }

    /// The frame indices this invocation renders: the --frames range, then this --shard's block of it.
    private func selectFrames(_ count: Int) throws -> [Int] {
        var range = 0..<count
        if let frames {
            let parts = frames.split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
            guard parts.count == 2, case let first = parts[0] ?? 0, case let last = parts[1] ?? count,
                  0 <= first, first < last, last <= count else {
                throw ValidationError("--frames: expected START:END within 0:\(count), got \(frames)")
            }
            range = first..<last
        }
        guard let shard else { return Array(range) }
        let parts = shard.split(separator: "/").compactMap { Int($0) }
        guard parts.count == 2, parts[1] > 0, (0..<parts[1]).contains(parts[0]) else {
            throw ValidationError("--shard: expected I/N with 0 <= I < N, got \(shard)")
        }
        let (i, n) = (parts[0], parts[1])
        // count · i / n in double width: i and n come from the command line and may be near Int.max.
        func share(_ part: Int) -> Int { n.dividingFullWidth(range.count.multipliedFullWidth(by: part)).quotient }
        let lower = range.lowerBound + share(i), upper = range.lowerBound + share(i + 1)
        // A shard that selects nothing is a scheduling mistake (more shards than frames), not a success.
        guard lower < upper else {
            throw ValidationError("--shard \(shard) selects no frame of \(range.count) (use at most \(range.count) shards)")
        }
        return Array(lower..<upper)
    }
}

/// `value` in decimal with leading zeros to at least `width` digits (frame file names).
func zeroPadded(_ value: Int, width: Int) -> String {
    let digits = String(value)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}

/// A one-line progress bar with frames/s and ETA, drawn only when stdout is a terminal.
final class ProgressBar {
    let total: Int
    let enabled = isatty(STDOUT_FILENO) != 0

    init(total: Int) { self.total = total }

    func update(done: Int, elapsed: Double) {
        guard enabled else { return }
        let width = 30
        let filled = width * done / max(total, 1)
        let rate = Double(done) / max(elapsed, 1e-9)
        let eta = Double(total - done) / max(rate, 1e-9)
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        print("\r[\(bar)] \(done)/\(total) frames  \(formatted(rate, digits: 2)) frames/s  ETA \(formatted(eta, digits: 0)) s ", terminator: "")
        fflush(nil)
    }

    func finish() {
        if enabled { print("") }
    }
}

extension BackendOptions {
    /// The context these options select.
    func makeContext() throws -> ComputeContext {
        let choice: ComputeContext.Backend = switch backend {
        case .auto: device.map { .vulkan(deviceIndex: $0) } ?? .auto
        case .vulkan: .vulkan(deviceIndex: device)
        case .cpu: .cpu
        }
        return try ComputeContext(backend: choice, options: .init(validation: validation))
    }
}
