import FuzzHarness

/// SwiftPM makes `fuzz_snapshot_main` the program's entry point (the target is `fuzz-snapshot`).
@_cdecl("fuzz_snapshot_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    FuzzHarness.main(.snapshot, argc, argv)
}
