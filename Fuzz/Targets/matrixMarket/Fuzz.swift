import FuzzHarness

/// SwiftPM makes `fuzz_matrixMarket_main` the program's entry point (the target is `fuzz-matrixMarket`).
@_cdecl("fuzz_matrixMarket_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    FuzzHarness.main(.matrixMarket, argc, argv)
}
