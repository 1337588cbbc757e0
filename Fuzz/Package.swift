// swift-tools-version: 6.1
// libFuzzer targets, one per reader, kept out of the main package so that `swift build` there never builds
// them. Build and run them with ../scripts/fuzz.sh.
//
// SwiftPM's own `--sanitize=fuzzer` cannot be used: it links libFuzzer, and its `main`, into every
// executable, the ShaderEmbedder build tool included. So the script builds everything with AddressSanitizer
// and libFuzzer's coverage instrumentation (`--sanitize=address -Xswiftc -sanitize-coverage=edge,
// inline-8bit-counters,pc-table,trace-cmp`) and only these targets link libFuzzer, in its no-main form (its
// path in VKK_LIBFUZZER); each target's main hands its reader to LLVMFuzzerRunDriver.
import PackageDescription

/// FileFormat's cases: each gets an executable `fuzz-<format>` whose only source is Targets/<format>/main.swift.
let formats = ["npy", "safetensors", "matrixMarket", "smtx", "npz", "gzip", "messagePack", "snapshot", "transforms", "cameraPath", "png", "jpeg", "instantNGPConfig"]

/// libclang_rt.fuzzer_no_main-<arch>.a of the toolchain (scripts/fuzz.sh finds it).
let libFuzzer = Context.environment["VKK_LIBFUZZER"]

let package = Package(
    name: "VulkanKernelsFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "VulkanKernels", path: "..")],
    targets: [
        .target(name: "FuzzHarness", dependencies: [.product(name: "VulkanKernels", package: "VulkanKernels")]),
    ] + formats.map { format in
        .executableTarget(name: "fuzz-\(format)", dependencies: ["FuzzHarness"], path: "Targets/\(format)",
                          linkerSettings: [.unsafeFlags(libFuzzer.map { ["-Xlinker", $0, "-lstdc++"] } ?? [])])
    }
)
