import FuzzHarness

/// SwiftPM makes `fuzz_npy_main` the program's entry point (the target is `fuzz-npy`).
@_cdecl("fuzz_npy_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    FuzzHarness.main(.npy, argc, argv)
}
