import FuzzHarness

/// SwiftPM makes `fuzz_png_main` the program's entry point (the target is `fuzz-png`).
@_cdecl("fuzz_png_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    FuzzHarness.main(.png, argc, argv)
}
