import FuzzHarness

/// SwiftPM makes `fuzz_messagePack_main` the program's entry point (the target is `fuzz-messagePack`).
@_cdecl("fuzz_messagePack_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    FuzzHarness.main(.messagePack, argc, argv)
}
