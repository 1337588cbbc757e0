import FuzzHarness

/// SwiftPM makes `fuzz_gzip_main` the program's entry point (the target is `fuzz-gzip`).
@_cdecl("fuzz_gzip_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    FuzzHarness.main(.gzip, argc, argv)
}
