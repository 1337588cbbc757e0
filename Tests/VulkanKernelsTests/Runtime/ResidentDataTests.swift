import VulkanKernels
import XCTest

/// Data a context keeps for a field or a renderer (weights, primitive tables, occupancy words) belongs to
/// the context: it is reused while both live and never keeps the context alive.
final class ResidentDataTests: XCTestCase {
    /// Renders `field` once on a fresh Vulkan context (filling its resident cache) and returns a weak
    /// reference to that context after every strong one is gone.
    private func renderOnThrowawayContext(_ field: RadianceField) throws -> (weak: WeakContext, coverage: Float) {
        // No validation layer: a context of its own per call, and the layer's start-up dominates otherwise
        // (the same kernels run under validation in NeRFRenderTests).
        let context = try ComputeContext(backend: .vulkan(), options: .init(validation: false, quiet: true))
        let renderer = Renderer(context: context)
        var options = RenderOptions()
        options.occupancy.resolution = 32   // a small grid keeps its build (a field evaluation) quick
        options.occupancy.levels = 1
        let image = try renderer.render(field: field, camera: .orbit(frame: 0, of: 1, width: 16, height: 16), options: options)
        return (WeakContext(context), image.opacity.reduce(0, +))
    }

    func testUploadedFieldDataDoesNotKeepTheContextAlive() throws {
        guard Backends.vulkan != nil else { throw XCTSkip("no Vulkan device") }
        let analytic = BuiltInScene.spheres.makeField()
        let voxels = try VoxelGridField.bake(analytic, resolution: 8, directions: 9, on: Backends.cpu)
        for field in [analytic, voxels] as [RadianceField] {
            let first = try renderOnThrowawayContext(field)
            XCTAssertNil(first.weak.context, "\(field.name): the context outlived every reference but the field's data")
            XCTAssertGreaterThan(first.coverage, 0, "\(field.name): nothing rendered")
            // The same field on a new context uploads again and renders the same frame.
            let second = try renderOnThrowawayContext(field)
            XCTAssertNil(second.weak.context)
            // Same device, same kernels, same inputs: the frames are identical.
            XCTAssertEqual(first.coverage, second.coverage, "\(field.name): a stale upload was used")
        }
    }
}

final class WeakContext {
    weak var context: ComputeContext?
    init(_ context: ComputeContext) { self.context = context }
}
