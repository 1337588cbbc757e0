import FuzzHarness

/// SwiftPM makes `fuzz_safetensors_main` the program's entry point (the target is `fuzz-safetensors`).
@_cdecl("fuzz_safetensors_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    FuzzHarness.main(.safetensors, argc, argv)
}
