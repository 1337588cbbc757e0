/// Captures rendered from the built-in analytic scenes: a known ground truth for tests and for
/// `vkk bench train` on machines without a real capture.
extension TrainingDataset {
    /// `views` orbit views of `scene` at `size`×`size` as RGBA images (premultiplied colour = the render
    /// over black, alpha = its opacity), alternating between two elevations so that the scene is seen from
    /// above and from the side; views that `holdout` selects are held out. The cameras are moved into
    /// instant-ngp's world (the scenes' box [−1, 1]³ becomes the unit cube [0, 1]³), as captures are read,
    /// so that a trained field can be written as an instant-ngp snapshot.
    public static func rendered(scene: BuiltInScene, views: Int = 20, size: Int = 64, holdout: HoldoutSplit = .every(5),
                                context: ComputeContext) throws -> TrainingDataset {
        guard (2...1024).contains(views), (8...1024).contains(size) else {
            throw DatasetError("rendered capture: \(views) views of \(size)×\(size) (2…1024 views of 8…1024 pixels)")
        }
        let renderer = Renderer(context: context)
        let field = scene.makeField()
        var options = RenderOptions()
        options.background = SIMD3(0, 0, 0)
        options.step = .uniform(512, across: BuiltInScene.bounds)
        options.occupancy.resolution = 64
        options.occupancy.levels = 3
        var training: [TrainingView] = [], heldOut: [TrainingView] = []
        for i in 0..<views {
            let camera = Camera.orbit(frame: i, of: views, width: size, height: size, elevation: i % 2 == 0 ? 0.9 : 2.0)
            let image = try renderer.render(field: field, camera: camera, options: options)
            var pixels = [UInt8](repeating: 0, count: size * size * 4)
            for p in 0..<(size * size) {
                for c in 0..<3 { pixels[4 * p + c] = UInt8(min(max(image.rgb[3 * p + c], 0), 1) * 255 + 0.5) }
                pixels[4 * p + 3] = UInt8(min(max(image.opacity[p], 0), 1) * 255 + 0.5)
            }
            var local = camera
            local.cameraToWorld.translation = (camera.cameraToWorld.translation - BuiltInScene.bounds.lower) / BuiltInScene.bounds.size.x
            let view = TrainingView(name: "\(scene.rawValue) orbit \(i)", frameIndex: i, camera: local,
                                    image: try TrainingImage(width: size, height: size, hasAlpha: true, pixels: pixels))
            if holdout.isHeldOut(i) { heldOut.append(view) } else { training.append(view) }
        }
        return try TrainingDataset(training: training, heldOut: heldOut, aabbScale: 1)
    }
}
