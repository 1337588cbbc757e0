import Foundation
import VulkanKernels
import XCTest

final class CameraFileTests: XCTestCase {
    /// Hand-computed rays are written with 4–6 significant digits.
    let tolerance: Float = 1e-5

    func assertRay(_ ray: Ray, origin: SIMD3<Float>, direction: SIMD3<Float>, file: StaticString = #filePath, line: UInt = #line) {
        let unit = direction / (direction * direction).sum().squareRoot()
        for axis in 0..<3 {
            XCTAssertEqual(ray.origin[axis], origin[axis], accuracy: tolerance, "origin", file: file, line: line)
            XCTAssertEqual(ray.direction[axis], unit[axis], accuracy: tolerance, "direction", file: file, line: line)
        }
    }

    let rotatedTransforms = """
    { "fl_x": 2, "fl_y": 2, "cx": 2, "cy": 1, "w": 4, "h": 2, "k1": 0.1, "k2": -0.2, "p1": 0.01, "p2": 0.02, "aabb_scale": 4,
      "frames": [
        { "file_path": "a.png", "transform_matrix": [[1,0,0,1],[0,1,0,2],[0,0,1,3],[0,0,0,1]] },
        { "file_path": "b.png", "transform_matrix": [[0,-1,0,1],[1,0,0,2],[0,0,1,3],[0,0,0,1]] }
      ] }
    """

    func testTransformsRaysAsStored() throws {
        let file = try TransformsFile.parse(Data(rotatedTransforms.utf8))
        XCTAssertEqual(file.frames.count, 2)
        XCTAssertEqual(file.aabbScale, 4)
        XCTAssertEqual(file.frames[0].distortion, CameraDistortion(k1: 0.1, k2: -0.2, p1: 0.01, p2: 0.02))
        XCTAssertEqual(file.frames[1].filePath, "b.png")
        // Pixel (0, 0): (u, v) = (0.5, 0.5) → camera direction ((0.5 − 2)/2, −(0.5 − 1)/2, −1) = (−0.75, 0.25, −1).
        assertRay(file.cameras[0].ray(pixelX: 0, pixelY: 0), origin: SIMD3(1, 2, 3), direction: SIMD3(-0.75, 0.25, -1))
        // Rotated 90° about z: x_cam → +y_world, y_cam → −x_world, so (−0.75, 0.25, −1) → (−0.25, −0.75, −1).
        assertRay(file.cameras[1].ray(pixelX: 0, pixelY: 0), origin: SIMD3(1, 2, 3), direction: SIMD3(-0.25, -0.75, -1))
        // Pixel (3, 1): (3.5, 1.5) → (0.75, −0.25, −1).
        assertRay(file.cameras[0].ray(pixelX: 3, pixelY: 1), origin: SIMD3(1, 2, 3), direction: SIMD3(0.75, -0.25, -1))
    }

    func testTransformsRaysInInstantNGPConvention() throws {
        let file = try TransformsFile.parse(Data(rotatedTransforms.utf8), convention: .instantNGP())
        XCTAssertEqual(file.scale, 0.33)
        // Origin: (1, 2, 3)·0.33 + 0.5 = (0.83, 1.16, 1.49), axes cycled → (1.16, 1.49, 0.83).
        // Direction (−0.75, 0.25, −1) cycled → (0.25, −1, −0.75).
        assertRay(file.cameras[0].ray(pixelX: 0, pixelY: 0), origin: SIMD3(1.16, 1.49, 0.83), direction: SIMD3(0.25, -1, -0.75))
        // The same ray the way instant-ngp computes it: flip the camera's y and z columns, scale and offset
        // the position, cycle the rows, then look down +z with y pointing down the image.
        for frame in try TransformsFile.parse(Data(rotatedTransforms.utf8)).frames {
            let r = frame.camera.cameraToWorld.rotation, t = frame.camera.cameraToWorld.translation
            var columns = [r.0, -r.1, -r.2, t * 0.33 + 0.5]
            columns = columns.map { SIMD3($0.y, $0.z, $0.x) }
            for (x, y) in [(0, 0), (3, 1), (2, 0)] {
                let local = SIMD3<Float>((Float(x) + 0.5 - 2) / 2, (Float(y) + 0.5 - 1) / 2, 1)
                let direction = columns[0] * local.x + columns[1] * local.y + columns[2] * local.z
                let index = frame.filePath == "a.png" ? 0 : 1
                assertRay(file.cameras[index].ray(pixelX: x, pixelY: y), origin: columns[3], direction: direction)
            }
        }
        // Explicit scale and offset override the defaults.
        let custom = try TransformsFile.parse(Data(rotatedTransforms.utf8), convention: .instantNGP(scale: 1, offset: SIMD3(0, 0, 10)))
        assertRay(custom.cameras[0].ray(pixelX: 0, pixelY: 0), origin: SIMD3(2, 13, 1), direction: SIMD3(0.25, -1, -0.75))
    }

    func testCameraAngleAndImageSize() throws {
        let json = """
        { "camera_angle_x": 0.6911112070083618, "frames": [ { "file_path": "./train/r_0", "transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,4],[0,0,0,1]] } ] }
        """
        XCTAssertThrowsError(try TransformsFile.parse(Data(json.utf8)))  // no size anywhere
        let file = try TransformsFile.parse(Data(json.utf8), imageSize: (800, 800))
        // f = 400 / tan(0.6911112 / 2) = 1111.1110.
        XCTAssertEqual(file.cameras[0].focalX, 1111.111, accuracy: 0.01)
        XCTAssertEqual(file.cameras[0].focalY, file.cameras[0].focalX)
        XCTAssertEqual(file.cameras[0].principalX, 400)
    }

    func testCameraPathRays() throws {
        let json = """
        { "render_width": 4, "render_height": 2, "camera_type": "perspective", "fps": 24,
          "camera_path": [ { "camera_to_world": [1,0,0,5, 0,1,0,6, 0,0,1,7, 0,0,0,1], "fov": 90, "aspect": 2 } ] }
        """
        let path = try CameraPathFile.parse(Data(json.utf8))
        XCTAssertEqual(path.fps, 24)
        let camera = path.cameras[0]
        // Vertical fov 90°: f = (2/2)/tan(45°) = 1; pixel (0, 0) → ((0.5 − 2)/1, −(0.5 − 1)/1, −1).
        XCTAssertEqual(camera.focalY, 1, accuracy: 1e-6)
        XCTAssertEqual(camera.width, 4)
        assertRay(camera.ray(pixelX: 0, pixelY: 0), origin: SIMD3(5, 6, 7), direction: SIMD3(-1.5, 0.5, -1))
    }

    func testMalformedCameraFilesThrow() {
        let transforms = [
            "not json",
            "[1, 2]",
            #"{ "frames": [] }"#,
            #"{ "w": 4, "h": 2, "fl_x": 2, "frames": [ { "transform_matrix": [[1,0,0],[0,1,0],[0,0,1]] } ] }"#,
            #"{ "w": 4, "h": 2, "fl_x": 2, "frames": [ { "transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,"x"],[0,0,0,1]] } ] }"#,
            #"{ "w": 4, "h": 2, "frames": [ { "transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]] } ] }"#,
            #"{ "w": -4, "h": 2, "fl_x": 2, "frames": [ { "transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]] } ] }"#,
            #"{ "w": 4, "h": 2, "fl_x": 2, "offset": [1, 2], "frames": [ { "transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]] } ] }"#,
            #"{ "w": 4, "h": 2, "fl_x": 2, "frames": [ 3 ] }"#,
        ]
        for text in transforms {
            XCTAssertThrowsError(try TransformsFile.parse(Data(text.utf8)), text) { XCTAssert($0 is CameraFileError, "\($0)") }
        }
        let paths = [
            #"{ "render_height": 2, "camera_path": [] }"#,
            #"{ "render_height": 2, "camera_path": [ { "camera_to_world": [1,0,0], "fov": 50 } ] }"#,
            #"{ "render_height": 2, "camera_path": [ { "camera_to_world": [1,0,0,0,0,1,0,0,0,0,1,0,0,0,0,1], "fov": 200 } ] }"#,
            #"{ "camera_path": [ { "camera_to_world": [1,0,0,0,0,1,0,0,0,0,1,0,0,0,0,1], "fov": 50 } ] }"#,
            #"{ "render_height": 2, "camera_type": "fisheye", "camera_path": [ { "camera_to_world": [1,0,0,0,0,1,0,0,0,0,1,0,0,0,0,1], "fov": 50 } ] }"#,
        ]
        for text in paths {
            XCTAssertThrowsError(try CameraPathFile.parse(Data(text.utf8)), text) { XCTAssert($0 is CameraFileError, "\($0)") }
        }
        XCTAssertThrowsError(try loadTransformsCameras("/nonexistent/transforms.json"))
    }

    // MARK: Real files (shared/data/nerf_scenes; see sharedDataDirectory())

    let scenes = sharedDataDirectory().appendingPathComponent("nerf_scenes").path

    func requireScenes() throws {
        guard FileManager.default.fileExists(atPath: scenes) else {
            throw XCTSkip("\(scenes) is absent; real camera files not checked (set VKK_SHARED_DATA to a copy of shared/data)")
        }
    }

    func testRealInstantNGPFox() throws {
        try requireScenes()
        let file = try TransformsFile.read(contentsOf: "\(scenes)/instant_ngp_fox/transforms.json", convention: .instantNGP())
        XCTAssertEqual(file.frames.count, 67)
        XCTAssertEqual(file.aabbScale, 4)
        let camera = file.cameras[0]
        XCTAssertEqual(camera.width, 1080)
        XCTAssertEqual(camera.height, 1920)
        XCTAssertEqual(camera.focalX, 1375.52, accuracy: 1e-3)
        XCTAssertEqual(camera.principalY, 965.268, accuracy: 1e-3)
        XCTAssertEqual(file.frames[0].distortion.k1, 0.0578421, accuracy: 1e-7)
        // Every camera's central ray passes near the centre of instant-ngp's unit cube, where the fox is.
        for camera in file.cameras {
            let ray = camera.ray(u: Float(camera.width) / 2, v: Float(camera.height) / 2)
            let toCentre = SIMD3<Float>(repeating: 0.5) - ray.origin
            let along = (toCentre * ray.direction).sum()
            let miss = toCentre - along * ray.direction
            XCTAssertGreaterThan(along, 0)
            XCTAssertLessThan((miss * miss).sum().squareRoot(), 0.5)
        }
    }

    func testRealNeRFSyntheticLego() throws {
        try requireScenes()
        let cameras = try loadTransformsCameras("\(scenes)/nerf_synthetic_lego/transforms_train.json")
        XCTAssertEqual(cameras.count, 100)
        XCTAssertEqual(cameras[0].width, 800)  // from r_0.png's header
        XCTAssertEqual(cameras[0].focalX, 1111.111, accuracy: 0.01)
        // Blender cameras on a sphere of radius ≈ 4 around the origin, looking at it.
        for camera in cameras {
            let ray = camera.ray(u: 400, v: 400)
            XCTAssertEqual(length(ray.origin), 4.03, accuracy: 0.05)
            XCTAssertLessThan(length(ray.origin + (-dot(ray.origin, ray.direction)) * ray.direction), 0.3)
        }
        for name in ["transforms_test.json", "transforms_val.json"] {
            let file = try TransformsFile.read(contentsOf: "\(scenes)/nerf_synthetic_lego/\(name)", imageSize: (800, 800))
            XCTAssertEqual(file.frames.count, name == "transforms_test.json" ? 200 : 100)
        }
    }

    func testRealNerfstudioCameraPaths() throws {
        try requireScenes()
        let folder = "\(scenes)/nerfstudio_camera_paths"
        for (name, count, width, height) in [("example_camera_path.json", 96, 1920, 1080), ("circular_camera_path.json", 96, 450, 800),
                                             ("nerfstudio-Egypt-camerapath.json", 432, 1920, 1080)] {
            let path = try CameraPathFile.read(contentsOf: "\(folder)/\(name)")
            XCTAssertEqual(path.cameras.count, count, name)
            XCTAssertEqual(path.cameras[0].width, width, name)
            XCTAssertEqual(path.cameras[0].height, height, name)
            XCTAssertEqual(path.fps, 24, name)
        }
        // First entry of example_camera_path.json: fov 50°, translation (3.0036, 0.013382, 0.44060).
        let first = try loadCameraPath("\(folder)/example_camera_path.json")[0]
        XCTAssertEqual(first.focalY, 540 / tanf(25 * .pi / 180), accuracy: 1e-3)
        XCTAssertEqual(first.cameraToWorld.translation.x, 3.0035982, accuracy: 1e-5)
        XCTAssertEqual(first.cameraToWorld.rotation.2.x, 0.98970751, accuracy: 1e-6)  // row 0, column 2
    }
}
