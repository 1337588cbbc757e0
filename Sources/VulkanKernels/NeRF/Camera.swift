import Glibc

/// A ray with a unit direction.
public struct Ray: Sendable, Equatable {
    public var origin: SIMD3<Float>
    public var direction: SIMD3<Float>

    public init(origin: SIMD3<Float>, direction: SIMD3<Float>) {
        self.origin = origin
        self.direction = direction
    }

    public func at(_ t: Float) -> SIMD3<Float> { origin + t * direction }
}

/// An axis-aligned box.
public struct AABB: Sendable, Equatable {
    public var lower: SIMD3<Float>
    public var upper: SIMD3<Float>

    public init(lower: SIMD3<Float>, upper: SIMD3<Float>) {
        self.lower = lower
        self.upper = upper
    }

    public var size: SIMD3<Float> { upper - lower }
    public var center: SIMD3<Float> { (lower + upper) / 2 }

    /// Entry and exit distances along `ray` (slab test), clamped to t ≥ 0; nil when the ray misses.
    public func intersect(_ ray: Ray) -> (near: Float, far: Float)? {
        let inverse = 1 / ray.direction
        let t0 = (lower - ray.origin) * inverse
        let t1 = (upper - ray.origin) * inverse
        let near = max(pointwiseMin(t0, t1).max(), 0)
        let far = pointwiseMax(t0, t1).min()
        return near < far ? (near, far) : nil
    }
}

/// A rigid camera-to-world transform: `rotation` columns are the camera's right, up and backward axes
/// in world space (OpenGL convention: the camera looks down its −z axis, +y is up), `translation` its position.
public struct RigidTransform: Sendable, Equatable {
    /// Columns x, y, z of the 3×3 rotation.
    public var rotation: (SIMD3<Float>, SIMD3<Float>, SIMD3<Float>)
    public var translation: SIMD3<Float>

    public init(rotation: (SIMD3<Float>, SIMD3<Float>, SIMD3<Float>), translation: SIMD3<Float>) {
        self.rotation = rotation
        self.translation = translation
    }

    /// From the top three rows of a row-major 4×4 camera-to-world matrix (as `transforms.json` stores it).
    public init(rows matrix: [[Float]]) {
        rotation = (SIMD3(matrix[0][0], matrix[1][0], matrix[2][0]),
                    SIMD3(matrix[0][1], matrix[1][1], matrix[2][1]),
                    SIMD3(matrix[0][2], matrix[1][2], matrix[2][2]))
        translation = SIMD3(matrix[0][3], matrix[1][3], matrix[2][3])
    }

    /// A camera at `eye` looking at `target`, with `up` roughly up.
    public static func lookAt(eye: SIMD3<Float>, target: SIMD3<Float>, up: SIMD3<Float> = SIMD3(0, 0, 1)) -> RigidTransform {
        let backward = normalized(eye - target)
        let right = normalized(cross(up, backward))
        let trueUp = cross(backward, right)
        return RigidTransform(rotation: (right, trueUp, backward), translation: eye)
    }

    /// Rotates a camera-space direction into world space.
    public func apply(direction d: SIMD3<Float>) -> SIMD3<Float> {
        rotation.0 * d.x + rotation.1 * d.y + rotation.2 * d.z
    }

    /// Why this pose cannot place a camera, or nil when it can: every entry finite and the three axes
    /// spanning space (|det| ≥ 10⁻⁶ of the product of their lengths). A singular or non-finite pose would
    /// give degenerate rays and a blank frame, so the renderer and the camera-file readers refuse it.
    public var degeneracy: String? {
        let (x, y, z) = rotation
        let entries = [x, y, z, translation].flatMap { [$0.x, $0.y, $0.z] }
        if let bad = entries.first(where: { !$0.isFinite }) { return "has a non-finite entry (\(bad))" }
        func length(_ v: SIMD3<Float>) -> Double { (Double(v.x) * Double(v.x) + Double(v.y) * Double(v.y) + Double(v.z) * Double(v.z)).squareRoot() }
        let determinant = Double(x.x) * (Double(y.y) * Double(z.z) - Double(y.z) * Double(z.y))
            - Double(y.x) * (Double(x.y) * Double(z.z) - Double(x.z) * Double(z.y))
            + Double(z.x) * (Double(x.y) * Double(y.z) - Double(x.z) * Double(y.y))
        let scale = length(x) * length(y) * length(z)
        guard scale > 0, abs(determinant) >= 1e-6 * scale else { return "is singular (its rotation's determinant is \(determinant))" }
        return nil
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.rotation.0 == rhs.rotation.0 && lhs.rotation.1 == rhs.rotation.1 && lhs.rotation.2 == rhs.rotation.2
            && lhs.translation == rhs.translation
    }
}

/// A perspective camera: intrinsics in pixels, optional OpenCV lens distortion, and a camera-to-world pose.
///
/// Pixel (0, 0) is the top-left pixel; its centre is at image coordinates (0.5, 0.5). Image point (u, v)
/// has normalised coordinates x_d = (u − cx)/fx, y_d = (v − cy)/fy (y down the image); the ray through it
/// goes through the undistorted point (x, y) = `distortion.undistort(x_d, y_d)`, i.e. has camera-space
/// direction (x, −y, −1), normalised (OpenGL axes: +y up, looking down −z). Without distortion
/// (x, y) = (x_d, y_d). ``project(_:)`` is the exact inverse.
public struct Camera: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var focalX: Float
    public var focalY: Float
    public var principalX: Float
    public var principalY: Float
    public var cameraToWorld: RigidTransform
    /// Lens distortion applied by ``ray(u:v:)`` and ``project(_:)`` (zero: a pinhole camera).
    public var distortion: CameraDistortion

    public init(width: Int, height: Int, focalX: Float, focalY: Float, principalX: Float? = nil, principalY: Float? = nil,
                cameraToWorld: RigidTransform, distortion: CameraDistortion = CameraDistortion()) {
        self.width = width
        self.height = height
        self.focalX = focalX
        self.focalY = focalY
        self.principalX = principalX ?? Float(width) / 2
        self.principalY = principalY ?? Float(height) / 2
        self.cameraToWorld = cameraToWorld
        self.distortion = distortion
    }

    /// A camera with square pixels and horizontal field of view `fieldOfViewX` (radians), as NeRF-synthetic's `camera_angle_x`.
    public init(width: Int, height: Int, fieldOfViewX: Float, cameraToWorld: RigidTransform) {
        let focal = Float(width) / 2 / tanf(fieldOfViewX / 2)
        self.init(width: width, height: height, focalX: focal, focalY: focal, cameraToWorld: cameraToWorld)
    }

    /// The same camera rendering `width`×`height` pixels: focal lengths and principal point scale with the
    /// image (per axis), distortion (in normalised coordinates) and pose stay.
    public func resized(width: Int, height: Int) -> Camera {
        let sx = Float(width) / Float(self.width), sy = Float(height) / Float(self.height)
        return Camera(width: width, height: height, focalX: focalX * sx, focalY: focalY * sy, principalX: principalX * sx,
                      principalY: principalY * sy, cameraToWorld: cameraToWorld, distortion: distortion)
    }

    /// The ray through image point (u, v) (pixel centre of pixel (i, j) is (i + 0.5, j + 0.5)).
    public func ray(u: Float, v: Float) -> Ray {
        var normalised = SIMD2<Float>((u - principalX) / focalX, (v - principalY) / focalY)
        if !distortion.isZero { normalised = distortion.undistort(normalised) }
        let local = SIMD3<Float>(normalised.x, -normalised.y, -1)
        return Ray(origin: cameraToWorld.translation, direction: normalized(cameraToWorld.apply(direction: local)))
    }

    /// The ray through the centre of pixel (x, y).
    public func ray(pixelX x: Int, pixelY y: Int) -> Ray {
        ray(u: Float(x) + 0.5, v: Float(y) + 0.5)
    }

    /// The image point (u, v) where world point `point` appears, or nil when it is not in front of the camera
    /// (camera-space z ≥ 0). The exact inverse of ``ray(u:v:)``: `project(ray(u: u, v: v).at(t)) ≈ (u, v)` for
    /// every t > 0, up to float rounding and the undistortion's convergence. Points outside the image
    /// project outside [0, width) × [0, height); the caller decides what that means.
    public func project(_ point: SIMD3<Float>) -> SIMD2<Float>? {
        project(cameraSpace: cameraToWorld.inverseApply(point: point))
    }

    /// ``project(_:)`` of a point already in camera space (x right, y up, looking down −z).
    public func project(cameraSpace local: SIMD3<Float>) -> SIMD2<Float>? {
        guard local.z < 0 else { return nil }
        var normalised = SIMD2<Float>(local.x / -local.z, local.y / local.z)
        if !distortion.isZero { normalised = distortion.distort(normalised) }
        return SIMD2(focalX * normalised.x + principalX, focalY * normalised.y + principalY)
    }
}

extension RigidTransform {
    /// The world-to-camera map: p ↦ R⁻¹(p − t), with the general 3×3 inverse (cofactors over the
    /// determinant), so that it inverts ``apply(direction:)`` exactly even when a file's rotation is not
    /// quite orthonormal.
    public func inverseApply(point p: SIMD3<Float>) -> SIMD3<Float> {
        let inverse = inverseRotationRows
        let d = p - translation
        return SIMD3(dot(inverse.0, d), dot(inverse.1, d), dot(inverse.2, d))
    }

    /// Rows of R⁻¹ (R's columns are `rotation`): row i of the inverse is (column j × column k)/det for
    /// (i, j, k) cyclic.
    public var inverseRotationRows: (SIMD3<Float>, SIMD3<Float>, SIMD3<Float>) {
        let (a, b, c) = rotation
        let determinant = dot(a, cross(b, c))
        return (cross(b, c) / determinant, cross(c, a) / determinant, cross(a, b) / determinant)
    }
}

// Vector helpers of the NeRF code. Internal: a library must not put global `dot`, `cross` or `length`
// into every client module.
func dot(_ a: SIMD3<Float>, _ b: SIMD3<Float>) -> Float { (a * b).sum() }
func cross(_ a: SIMD3<Float>, _ b: SIMD3<Float>) -> SIMD3<Float> {
    SIMD3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
}
func length(_ a: SIMD3<Float>) -> Float { dot(a, a).squareRoot() }
func normalized(_ a: SIMD3<Float>) -> SIMD3<Float> { a / length(a) }
