import FuzzHarness

/// SwiftPM makes `fuzz_transforms_main` the program's entry point (the target is `fuzz-transforms`).
@_cdecl("fuzz_transforms_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    FuzzHarness.main(.transforms, argc, argv)
}
