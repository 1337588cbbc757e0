// The tests' own 3-vector helpers (the library keeps its copies internal).
func dot(_ a: SIMD3<Float>, _ b: SIMD3<Float>) -> Float { (a * b).sum() }
func cross(_ a: SIMD3<Float>, _ b: SIMD3<Float>) -> SIMD3<Float> {
    SIMD3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
}
func length(_ a: SIMD3<Float>) -> Float { dot(a, a).squareRoot() }
func normalized(_ a: SIMD3<Float>) -> SIMD3<Float> { a / length(a) }
