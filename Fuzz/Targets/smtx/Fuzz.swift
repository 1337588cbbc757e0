import FuzzHarness

/// SwiftPM makes `fuzz_smtx_main` the program's entry point (the target is `fuzz-smtx`).
@_cdecl("fuzz_smtx_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    FuzzHarness.main(.smtx, argc, argv)
}
