import FuzzHarness

/// SwiftPM makes `fuzz_cameraPath_main` the program's entry point (the target is `fuzz-cameraPath`).
@_cdecl("fuzz_cameraPath_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    FuzzHarness.main(.cameraPath, argc, argv)
}
