import FuzzHarness

/// SwiftPM makes `fuzz_npz_main` the program's entry point (the target is `fuzz-npz`).
@_cdecl("fuzz_npz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    FuzzHarness.main(.npz, argc, argv)
}
