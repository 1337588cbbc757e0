import Glibc

/// The analytic scenes built into the library, by name (`vkk render --scene NAME`).
///
/// All live in the box [−1, 1]³ and have compact-support densities, so their exact volume-rendered
/// images are computable by ``ReferenceRenderer``.
public enum BuiltInScene: String, CaseIterable, Sendable {
    /// Thin, nearly opaque striped shells with much empty space around them.
    case shell
    /// A semi-transparent cloud of soft coloured puffs (no surface anywhere).
    case cloud
    /// Several solid spheres with view-dependent (specular) highlights.
    case spheres

    public static let bounds = AABB(lower: SIMD3(repeating: -1), upper: SIMD3(repeating: 1))

    public func makeField() -> AnalyticField {
        // The primitives are valid by construction (the initializer only rejects bad user input).
        try! AnalyticField(name: rawValue, bounds: Self.bounds, primitives: primitives)
    }

    public var primitives: [AnalyticPrimitive] {
        switch self {
        case .shell:
            [AnalyticPrimitive(kind: .shell, center: SIMD3(0, 0, 0), radius: 0.55, thickness: 0.02, maxDensity: 4000,
                               colour: SIMD3(0.95, 0.55, 0.2), stripeAmount: 0.6, stripeFrequency: 14),
             AnalyticPrimitive(kind: .shell, center: SIMD3(0.62, -0.58, 0.5), radius: 0.2, thickness: 0.02, maxDensity: 4000,
                               colour: SIMD3(0.25, 0.6, 0.95), stripeAmount: 0.5, stripeFrequency: 30),
             AnalyticPrimitive(kind: .shell, center: SIMD3(-0.6, 0.55, -0.45), radius: 0.25, thickness: 0.02, maxDensity: 4000,
                               colour: SIMD3(0.4, 0.9, 0.35), stripeAmount: 0.4, stripeFrequency: 22)]
        case .cloud:
            [AnalyticPrimitive(kind: .blob, center: SIMD3(0, 0, 0), radius: 0.6, maxDensity: 3,
                               colour: SIMD3(0.9, 0.9, 0.95), stripeAmount: 0.3, stripeFrequency: 6),
             AnalyticPrimitive(kind: .blob, center: SIMD3(0.45, 0.2, 0.15), radius: 0.45, maxDensity: 4,
                               colour: SIMD3(0.95, 0.6, 0.5), stripeAmount: 0.2, stripeFrequency: 9),
             AnalyticPrimitive(kind: .blob, center: SIMD3(-0.4, -0.3, 0.2), radius: 0.5, maxDensity: 2.5,
                               colour: SIMD3(0.5, 0.7, 0.95)),
             AnalyticPrimitive(kind: .blob, center: SIMD3(0.1, -0.45, -0.3), radius: 0.4, maxDensity: 5,
                               colour: SIMD3(0.6, 0.95, 0.6), stripeAmount: 0.4, stripeFrequency: 11),
             AnalyticPrimitive(kind: .blob, center: SIMD3(-0.2, 0.5, -0.25), radius: 0.38, maxDensity: 6,
                               colour: SIMD3(0.95, 0.85, 0.4)),
             AnalyticPrimitive(kind: .blob, center: SIMD3(0.3, 0.45, 0.5), radius: 0.3, maxDensity: 8,
                               colour: SIMD3(0.8, 0.5, 0.9))]
        case .spheres:
            [AnalyticPrimitive(kind: .solid, center: SIMD3(-0.45, -0.35, -0.2), radius: 0.32, thickness: 0.04, maxDensity: 300,
                               colour: SIMD3(0.85, 0.2, 0.2), specular: 0.7, shininess: 16),
             AnalyticPrimitive(kind: .solid, center: SIMD3(0.4, -0.3, -0.15), radius: 0.28, thickness: 0.04, maxDensity: 300,
                               colour: SIMD3(0.2, 0.75, 0.3), specular: 0.6, shininess: 8),
             AnalyticPrimitive(kind: .solid, center: SIMD3(0, 0.45, 0), radius: 0.35, thickness: 0.04, maxDensity: 300,
                               colour: SIMD3(0.2, 0.35, 0.9), stripeAmount: 0.3, stripeFrequency: 18, specular: 0.8, shininess: 24),
             AnalyticPrimitive(kind: .solid, center: SIMD3(0.05, -0.05, 0.5), radius: 0.2, thickness: 0.04, maxDensity: 300,
                               colour: SIMD3(0.9, 0.8, 0.3), specular: 0.5, shininess: 4)]
        }
    }
}

extension Camera {
    /// The camera of frame `frame` of `count` on a circular orbit around the scene: radius 3, 0.9 above
    /// the equator, looking at the origin with +z up, 40° horizontal field of view.
    public static func orbit(frame: Int, of count: Int, width: Int, height: Int, radius: Float = 3, elevation: Float = 0.9) -> Camera {
        let angle = 2 * Float.pi * Float(frame) / Float(max(count, 1)) + 0.6
        let eye = SIMD3<Float>(radius * cosf(angle), radius * sinf(angle), elevation)
        return Camera(width: width, height: height, fieldOfViewX: 40 * Float.pi / 180,
                      cameraToWorld: .lookAt(eye: eye, target: SIMD3(0, 0, 0)))
    }

    /// The same orbit in instant-ngp's world (snapshots, captures read with ``TransformsConvention/instantNGP(scale:offset:)``):
    /// ``orbit(frame:of:width:height:radius:elevation:)`` moved by instant-ngp's own world change with scale ½
    /// and offset ½, which maps the built-in scenes' box [−1, 1]³ onto the unit cube and their +z up to +y.
    public static func instantNGPOrbit(frame: Int, of count: Int, width: Int, height: Int) -> Camera {
        var camera = orbit(frame: frame, of: count, width: width, height: height)
        camera.cameraToWorld = TransformsFile.ngpPose(camera.cameraToWorld, scale: 0.5, offset: SIMD3(repeating: 0.5))
        return camera
    }
}
