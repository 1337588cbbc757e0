import Foundation
import VulkanKernels
import XCTest

/// The built-in "ngp-blobs" hash-grid scene against the analytic scene it was made from.
final class HashGridSceneTests: XCTestCase {
    static let field: HashGridField = try! HashGridField.builtInScene(named: "ngp-blobs")

    func testBuiltInSceneHasContentAndMatchesItsAnalyticScene() throws {
        let field = Self.field
        XCTAssertEqual(field.name, "ngp-blobs")
        XCTAssertNotNil(field.densityGrid)
        XCTAssertThrowsError(try HashGridField.builtInScene(named: "nope"))
        var generator = SeededGenerator(seed: 3)
        var inside = 0, colorError = 0.0, colorCount = 0, densityMisses = 0
        var samples: [Float] = []
        var points: [(SIMD3<Float>, SIMD3<Float>)] = []
        for _ in 0..<2000 {
            let p = SIMD3<Float>(Float.random(in: 0..<1, using: &generator), Float.random(in: 0..<1, using: &generator),
                                 Float.random(in: 0..<1, using: &generator))
            let d = normalized(SIMD3<Float>(Float.random(in: -1..<1, using: &generator), Float.random(in: -1..<1, using: &generator), -1))
            samples += [p.x, p.y, p.z, 0, d.x, d.y, d.z, 0]
            points.append((p, d))
        }
        let output = field.evaluate(samples: samples)
        for (i, (p, d)) in points.enumerated() {
            let sigma = NGPBlobsScene.density(p)
            let got = output[4 * i + 3]
            // Away from surfaces (where the 64³ grid cannot follow a 0.02-wide edge) density must agree
            // on occupied versus empty.
            if sigma > 60 { inside += 1; if got < 20 { densityMisses += 1 } }
            if sigma < 1e-3 && got > 1 { densityMisses += 1 }
            if sigma > 60 {
                let want = NGPBlobsScene.color(p, d)
                for channel in 0..<3 { colorError += Double((output[4 * i + channel] - want[channel]) * (output[4 * i + channel] - want[channel])) }
                colorCount += 3
            }
        }
        XCTAssertGreaterThan(inside, 50)
        XCTAssertLessThan(Double(densityMisses), 0.02 * Double(points.count))
        let colorPSNR = -10 * log10(colorError / Double(colorCount))
        print("ngp-blobs: colour PSNR inside objects \(String(format: "%.1f", colorPSNR)) dB, density misses \(densityMisses)/\(points.count)")
        XCTAssertGreaterThan(colorPSNR, 25)
    }

    /// The full-size scene (11.7 M parameters, a 128³ density grid) through an `.ingp` file and back.
    func testBuiltInSceneSnapshotRoundTrip() throws {
        let field = Self.field
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vkk-ngp-blobs-\(getpid()).ingp").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try NGPSnapshot(field: field).write(to: path)
        let loaded = try HashGridField.load(snapshot: path)
        XCTAssertEqual(loaded.parameters.count, 11_692_032)
        XCTAssert(loaded.parameters.elementsEqual(field.parameters) { $0.bitPattern == $1.bitPattern })
        XCTAssert(loaded.densityGrid!.values.elementsEqual(field.densityGrid!.values) { $0.bitPattern == $1.bitPattern })
        XCTAssertEqual(loaded.bounds, field.bounds)
        let samples = randomSamples(count: 256, bounds: field.bounds, seed: 9)
        XCTAssertEqual(loaded.evaluate(samples: samples).map(\.bitPattern), field.evaluate(samples: samples).map(\.bitPattern))
    }

    /// Volume-renders both fields (uniform steps, front to back) and compares the images; the hash-grid
    /// field runs on Vulkan (on the CPU this test would take minutes in a debug build).
    func testBuiltInSceneRendersLikeItsAnalyticScene() throws {
        let field = Self.field
        try onVulkan { context in
            let (width, height, steps) = (64, 64, 192)
            let camera = Camera(width: width, height: height, fieldOfViewX: 0.8,
                                cameraToWorld: .lookAt(eye: SIMD3(1.55, -0.55, 1.05), target: SIMD3(0.5, 0.5, 0.3)))
            var samples = [Float](repeating: 0, count: width * height * steps * 8)
            var deltas = [Float](repeating: 0, count: width * height)
            for y in 0..<height { for x in 0..<width {
                let pixel = y * width + x
                let ray = camera.ray(pixelX: x, pixelY: y)
                guard let (near, far) = field.bounds.intersect(ray) else { continue }
                let delta = (far - near) / Float(steps)
                deltas[pixel] = delta
                for s in 0..<steps {
                    let p = ray.at(near + (Float(s) + 0.5) * delta)
                    let base = (pixel * steps + s) * 8
                    samples.replaceSubrange(base..<(base + 7), with: [p.x, p.y, p.z, 0, ray.direction.x, ray.direction.y, ray.direction.z])
                }
            } }
            let count = width * height * steps
            let input = try context.tensor(samples, shape: [count, 8])
            let valid = try context.tensor([UInt32(count)], shape: [1])
            let output = try context.zeros(Float.self, shape: [count, 4])
            try context.batch { try field.encodeEvaluate(into: $0, samples: input, sampleCount: valid, capacity: count, output: output) }
            let network = try output.toArray()
            var imageNetwork = [Float](repeating: 0, count: width * height * 3), imageAnalytic = imageNetwork
            for pixel in 0..<(width * height) where deltas[pixel] > 0 {
                var transmittanceN: Float = 1, transmittanceA: Float = 1
                for s in 0..<steps {
                    let i = pixel * steps + s
                    let p = SIMD3(samples[8 * i], samples[8 * i + 1], samples[8 * i + 2])
                    let d = SIMD3(samples[8 * i + 4], samples[8 * i + 5], samples[8 * i + 6])
                    let alphaN = 1 - expf(-network[4 * i + 3] * deltas[pixel])
                    let sigmaA = NGPBlobsScene.density(p)
                    let alphaA = 1 - expf(-sigmaA * deltas[pixel])
                    let colorA = sigmaA > 0 ? NGPBlobsScene.color(p, d) : .zero
                    for channel in 0..<3 {
                        imageNetwork[3 * pixel + channel] += transmittanceN * alphaN * network[4 * i + channel]
                        imageAnalytic[3 * pixel + channel] += transmittanceA * alphaA * colorA[channel]
                    }
                    transmittanceN *= 1 - alphaN
                    transmittanceA *= 1 - alphaA
                }
            }
            let mse = zip(imageNetwork, imageAnalytic).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) } / Double(imageNetwork.count)
            let psnr = -10 * log10(mse)
            let covered = (0..<(width * height)).filter { imageAnalytic[3 * $0] + imageAnalytic[3 * $0 + 1] > 0.2 }.count
            print("ngp-blobs: \(width)×\(height) render PSNR against the analytic scene \(String(format: "%.1f", psnr)) dB, \(covered) pixels with content")
            if let folder = ProcessInfo.processInfo.environment["VKK_DUMP_IMAGES"] {
                for (name, image) in [("network", imageNetwork), ("analytic", imageAnalytic)] {
                    let bytes = image.map { UInt8(min(max($0, 0), 1) * 255) }
                    let header = Array("P6 \(width) \(height) 255\n".utf8)
                    _ = FileManager.default.createFile(atPath: "\(folder)/ngp-blobs-\(name).ppm", contents: Data(header + bytes))
                }
            }
            XCTAssertGreaterThan(covered, width * height / 5)
            XCTAssertGreaterThan(psnr, 25)
        }
    }
}
