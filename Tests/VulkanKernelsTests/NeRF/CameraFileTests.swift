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

    /// The fixture's lens, and the camera-space direction (x, −y, −1) of the undistorted point of normalised
    /// image point (x_d, y_d) (y down the image): what every ray of the fixture goes through.
    let lens = CameraDistortion(k1: 0.1, k2: -0.2, p1: 0.01, p2: 0.02)
    func lensDirection(_ xd: Float, _ yd: Float) -> SIMD3<Float> {
        let p = lens.undistort(SIMD2(xd, yd))
        return SIMD3(p.x, -p.y, -1)
    }

    func testTransformsRaysAsStored() throws {
        let file = try TransformsFile.parse(Data(rotatedTransforms.utf8))
        XCTAssertEqual(file.frames.count, 2)
        XCTAssertEqual(file.aabbScale, 4)
        XCTAssertEqual(file.frames[0].distortion, lens)
        XCTAssertEqual(file.frames[1].filePath, "b.png")
        // Pinhole: pixel (0, 0), (u, v) = (0.5, 0.5) → camera direction ((0.5 − 2)/2, −(0.5 − 1)/2, −1) = (−0.75, 0.25, −1).
        var pinhole = file.cameras[0]
        pinhole.distortion = CameraDistortion()
        assertRay(pinhole.ray(pixelX: 0, pixelY: 0), origin: SIMD3(1, 2, 3), direction: SIMD3(-0.75, 0.25, -1))
        // With the lens: through the undistorted point of (x_d, y_d) = (−0.75, −0.25).
        let d = lensDirection(-0.75, -0.25)
        XCTAssertGreaterThan(length(normalized(d) - normalized(SIMD3(-0.75, 0.25, -1))), 1e-3)  // the lens matters here
        assertRay(file.cameras[0].ray(pixelX: 0, pixelY: 0), origin: SIMD3(1, 2, 3), direction: d)
        // Rotated 90° about z: x_cam → +y_world, y_cam → −x_world.
        assertRay(file.cameras[1].ray(pixelX: 0, pixelY: 0), origin: SIMD3(1, 2, 3), direction: SIMD3(-d.y, d.x, d.z))
        // Pixel (3, 1): (3.5, 1.5) → (x_d, y_d) = (0.75, 0.25).
        assertRay(file.cameras[0].ray(pixelX: 3, pixelY: 1), origin: SIMD3(1, 2, 3), direction: lensDirection(0.75, 0.25))
    }

    func testTransformsRaysInInstantNGPConvention() throws {
        let file = try TransformsFile.parse(Data(rotatedTransforms.utf8), convention: .instantNGP())
        XCTAssertEqual(file.scale, 0.33)
        // Origin: (1, 2, 3)·0.33 + 0.5 = (0.83, 1.16, 1.49), axes cycled → (1.16, 1.49, 0.83).
        // Direction d of pixel (0, 0) as stored (see above), cycled → (d.y, d.z, d.x).
        let d = lensDirection(-0.75, -0.25)
        assertRay(file.cameras[0].ray(pixelX: 0, pixelY: 0), origin: SIMD3(1.16, 1.49, 0.83), direction: SIMD3(d.y, d.z, d.x))
        // The same ray the way instant-ngp computes it: flip the camera's y and z columns, scale and offset
        // the position, cycle the rows, then look down +z with y pointing down the image, undistorting
        // ((u − cx)/fx, (v − cy)/fy) in those y-down coordinates.
        for frame in try TransformsFile.parse(Data(rotatedTransforms.utf8)).frames {
            let r = frame.camera.cameraToWorld.rotation, t = frame.camera.cameraToWorld.translation
            var columns = [r.0, -r.1, -r.2, t * 0.33 + 0.5]
            columns = columns.map { SIMD3($0.y, $0.z, $0.x) }
            for (x, y) in [(0, 0), (3, 1), (2, 0)] {
                let p = lens.undistort(SIMD2((Float(x) + 0.5 - 2) / 2, (Float(y) + 0.5 - 1) / 2))
                let direction = columns[0] * p.x + columns[1] * p.y + columns[2]
                let index = frame.filePath == "a.png" ? 0 : 1
                assertRay(file.cameras[index].ray(pixelX: x, pixelY: y), origin: columns[3], direction: direction)
            }
        }
        // Explicit scale and offset override the defaults.
        let custom = try TransformsFile.parse(Data(rotatedTransforms.utf8), convention: .instantNGP(scale: 1, offset: SIMD3(0, 0, 10)))
        assertRay(custom.cameras[0].ray(pixelX: 0, pixelY: 0), origin: SIMD3(2, 13, 1), direction: SIMD3(d.y, d.z, d.x))
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
            // Lens models whose rays this library does not generate.
            #"{ "w": 4, "h": 2, "fl_x": 2, "camera_model": "OPENCV_FISHEYE", "frames": [ { "transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]] } ] }"#,
            #"{ "w": 4, "h": 2, "fl_x": 2, "is_fisheye": true, "frames": [ { "transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]] } ] }"#,
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

    /// The camera's pose equals the row-major 3×4 `rows` (file values; float32 parsing only).
    func assertPose(_ camera: Camera, _ rows: [[Float]], _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        let r = camera.cameraToWorld.rotation, t = camera.cameraToWorld.translation
        for row in 0..<3 {
            for (column, value) in [r.0[row], r.1[row], r.2[row], t[row]].enumerated() {
                XCTAssertEqual(value, rows[row][column], accuracy: 1e-6, "\(message) [\(row)][\(column)]", file: file, line: line)
            }
        }
    }

    /// Intrinsics (pixels) as the file gives them or as derived from its field of view.
    func assertIntrinsics(_ camera: Camera, width: Int, height: Int, focal: (Float, Float), principal: (Float, Float), _ message: String,
                          file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(camera.width, width, message, file: file, line: line)
        XCTAssertEqual(camera.height, height, message, file: file, line: line)
        XCTAssertEqual(camera.focalX, focal.0, accuracy: 1e-3, message, file: file, line: line)
        XCTAssertEqual(camera.focalY, focal.1, accuracy: 1e-3, message, file: file, line: line)
        XCTAssertEqual(camera.principalX, principal.0, accuracy: 1e-3, message, file: file, line: line)
        XCTAssertEqual(camera.principalY, principal.1, accuracy: 1e-3, message, file: file, line: line)
    }

    /// fox as stored (what `vkk render --camera` uses): every frame has the file's intrinsics and lens, the
    /// last frame its matrix; `--resolution` scales the intrinsics and keeps the lens.
    func testRealInstantNGPFoxAsStored() throws {
        try requireScenes()
        let path = "\(scenes)/instant_ngp_fox/transforms.json"
        let file = try TransformsFile.read(contentsOf: path)
        XCTAssertEqual(file.frames.count, 67)
        let lens = CameraDistortion(k1: 0.0578421, k2: -0.0805099, p1: -0.000980296, p2: 0.00015575)
        for (index, frame) in file.frames.enumerated() {
            assertIntrinsics(frame.camera, width: 1080, height: 1920, focal: (1375.52, 1374.49), principal: (554.558, 965.268), "fox \(index)")
            XCTAssertEqual(frame.camera.distortion, lens)
        }
        XCTAssertEqual(file.frames[66].filePath, "images/0115.jpg")
        assertPose(file.cameras[66], [[-0.18636428641374658, 0.3002810039801068, 0.93546759295429, 3.321342166848285],
                                      [0.9823536211292901, 0.07226610415936119, 0.172507838095889, 0.8029906118159125],
                                      [-0.015801746526879067, 0.9511092971918428, -0.30844995481346466, -1.8932756193951594]], "fox 66")
        let small = try FieldCatalog.cameras(fromFile: path, width: 54, height: 96)
        XCTAssertEqual(small.count, 67)
        assertIntrinsics(small[0], width: 54, height: 96, focal: (1375.52 / 20, 1374.49 / 20), principal: (554.558 / 20, 965.268 / 20), "fox 54×96")
        XCTAssertEqual(small[0].distortion, lens)
        XCTAssertEqual(small[66].cameraToWorld, file.cameras[66].cameraToWorld)
    }

    /// lego's val/test files have no images here, so no size: the size must be given, and decides the focal length.
    func testRealNeRFSyntheticLegoPoses() throws {
        try requireScenes()
        let folder = "\(scenes)/nerf_synthetic_lego"
        let focal: Float = 400 / tanf(0.6911112070083618 / 2)
        let train = try loadTransformsCameras("\(folder)/transforms_train.json")
        assertIntrinsics(train[99], width: 800, height: 800, focal: (focal, focal), principal: (400, 400), "train 99")
        assertPose(train[99], [[0.4406329095363617, -0.730517566204071, 0.5217151641845703, 2.1031012535095215],
                               [0.8976874351501465, 0.35857704281806946, -0.25608566403388977, -1.032314419746399],
                               [-1.4901161193847656e-08, 0.5811769366264343, 0.8137771487236023, 3.2804408073425293]], "train 99")
        XCTAssert(train.allSatisfy { $0.distortion.isZero })
        for (name, count, last) in [("val", 100, [[-0.9556953310966492, -0.17177599668502808, 0.2390388697385788, 0.9635966420173645],
                                                   [0.29435795545578003, -0.5577070713043213, 0.7760902047157288, 3.1285202503204346],
                                                   [0.0, 0.8120688796043396, 0.5835615396499634, 2.352411985397339]] as [[Float]]),
                                    ("test", 200, [[-0.9980270266532898, -0.0460626520216465, 0.04266570135951042, 0.17199094593524933],
                                                   [0.06278638541698456, -0.7321932911872864, 0.6781967282295227, 2.733898401260376],
                                                   [0.0, 0.6795374751091003, 0.7336407899856567, 2.9574005603790283]])] {
            let path = "\(folder)/transforms_\(name).json"
            XCTAssertThrowsError(try FieldCatalog.cameras(fromFile: path)) { XCTAssert("\($0)".contains("--resolution"), "\($0)") }
            let cameras = try FieldCatalog.cameras(fromFile: path, width: 100, height: 100)
            XCTAssertEqual(cameras.count, count, name)
            assertIntrinsics(cameras[count - 1], width: 100, height: 100, focal: (focal / 8, focal / 8), principal: (50, 50), name)
            assertPose(cameras[count - 1], last, name)
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
        // Last entries: f = render_height / 2 / tan(fov / 2) with fov 50° (circular) and 20.1176° (Egypt).
        let circular = try loadCameraPath("\(folder)/circular_camera_path.json")[95]
        assertIntrinsics(circular, width: 450, height: 800, focal: (857.80277, 857.80277), principal: (225, 400), "circular 95")
        assertPose(circular, [[0.06540312923014367, -0.341011364955961, 0.9377812536288926, 2.7441120389061595],
                              [0.9978589232386034, 0.02235106571856487, -0.061465430726053386, -0.1798586053828951],
                              [0, 0.9397934234884371, 0.3417430630867044, 1]], "circular 95")
        let egypt = try loadCameraPath("\(folder)/nerfstudio-Egypt-camerapath.json")[431]
        assertIntrinsics(egypt, width: 1920, height: 1080, focal: (3044.2155, 3044.2155), principal: (960, 540), "Egypt 431")
        assertPose(egypt, [[0.7103621414152017, -0.2664210454498483, 0.6514640854148591, -1.0137748047784925],
                           [0.7038202444677971, 0.2751494608979465, -0.6549273529521116, -0.5202467131986669],
                           [-0.004763561829068924, 0.9237492087731276, 0.3829682855925819, 0.004110619494321899]], "Egypt 431")
        // `vkk render --camera … --resolution 96x54`: every entry, intrinsics scaled with the image.
        let small = try FieldCatalog.cameras(fromFile: "\(folder)/nerfstudio-Egypt-camerapath.json", width: 96, height: 54)
        XCTAssertEqual(small.count, 432)
        assertIntrinsics(small[431], width: 96, height: 54, focal: (3044.2155 / 20, 3044.2155 / 20), principal: (48, 27), "Egypt 96×54")
    }
}
