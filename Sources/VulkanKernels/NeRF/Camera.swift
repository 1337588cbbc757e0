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

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.rotation.0 == rhs.rotation.0 && lhs.rotation.1 == rhs.rotation.1 && lhs.rotation.2 == rhs.rotation.2
            && lhs.translation == rhs.translation
    }
}

/// A pinhole camera: intrinsics in pixels plus a camera-to-world pose.
///
/// Pixel (0, 0) is the top-left pixel; its centre is at image coordinates (0.5, 0.5). A ray through
/// image point (u, v) has camera-space direction ((u − cx)/fx, −(v − cy)/fy, −1), normalised.
public struct Camera: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var focalX: Float
    public var focalY: Float
    public var principalX: Float
    public var principalY: Float
    public var cameraToWorld: RigidTransform

    public init(width: Int, height: Int, focalX: Float, focalY: Float, principalX: Float? = nil, principalY: Float? = nil,
                cameraToWorld: RigidTransform) {
        self.width = width
        self.height = height
        self.focalX = focalX
        self.focalY = focalY
        self.principalX = principalX ?? Float(width) / 2
        self.principalY = principalY ?? Float(height) / 2
        self.cameraToWorld = cameraToWorld
    }

    /// A camera with square pixels and horizontal field of view `fieldOfViewX` (radians), as NeRF-synthetic's `camera_angle_x`.
    public init(width: Int, height: Int, fieldOfViewX: Float, cameraToWorld: RigidTransform) {
        let focal = Float(width) / 2 / tanf(fieldOfViewX / 2)
        self.init(width: width, height: height, focalX: focal, focalY: focal, cameraToWorld: cameraToWorld)
    }

    /// The ray through image point (u, v) (pixel centre of pixel (i, j) is (i + 0.5, j + 0.5)).
    public func ray(u: Float, v: Float) -> Ray {
        let local = SIMD3<Float>((u - principalX) / focalX, -(v - principalY) / focalY, -1)
        return Ray(origin: cameraToWorld.translation, direction: normalized(cameraToWorld.apply(direction: local)))
    }

    /// The ray through the centre of pixel (x, y).
    public func ray(pixelX x: Int, pixelY y: Int) -> Ray {
        ray(u: Float(x) + 0.5, v: Float(y) + 0.5)
    }
}

public func dot(_ a: SIMD3<Float>, _ b: SIMD3<Float>) -> Float { (a * b).sum() }
public func cross(_ a: SIMD3<Float>, _ b: SIMD3<Float>) -> SIMD3<Float> {
    SIMD3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
}
public func length(_ a: SIMD3<Float>) -> Float { dot(a, a).squareRoot() }
public func normalized(_ a: SIMD3<Float>) -> SIMD3<Float> { a / length(a) }
