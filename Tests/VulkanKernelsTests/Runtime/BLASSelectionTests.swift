import CKernels
import VulkanKernels
import XCTest

/// The choice of OpenBLAS kernel ("core") from CPUID features (Sources/CKernels/blas_loader.c), on
/// synthetic feature sets of the machines it must handle, and the loaded library on this one.
final class BLASSelectionTests: XCTestCase {
    static let sse: UInt32 = UInt32(VKK_FEATURE_SSE3 | VKK_FEATURE_SSSE3 | VKK_FEATURE_SSE41 | VKK_FEATURE_SSE42)
    static let avx: UInt32 = sse | UInt32(VKK_FEATURE_AVX)
    static let avx2: UInt32 = avx | UInt32(VKK_FEATURE_FMA | VKK_FEATURE_F16C | VKK_FEATURE_AVX2)
    static let skylakeX: UInt32 = avx2 | UInt32(VKK_FEATURE_AVX512F | VKK_FEATURE_AVX512DQ | VKK_FEATURE_AVX512CD
                                                | VKK_FEATURE_AVX512BW | VKK_FEATURE_AVX512VL)
    /// Zen 4 (this project's AMD machine): AVX-512 with VNNI and BF16, no FP16, no AMX.
    static let zen4: UInt32 = skylakeX | UInt32(VKK_FEATURE_AVX512VNNI | VKK_FEATURE_AVX512BF16)
    /// Sapphire Rapids and later (the Intel machine of issue 16): FP16 and AMX too.
    static let sapphireRapids: UInt32 = zen4 | UInt32(VKK_FEATURE_AVX512FP16 | VKK_FEATURE_AMX)
    /// Knights Landing: AVX-512 F and CD without BW/VL/DQ, which SkylakeX's kernels use.
    static let knightsLanding: UInt32 = avx2 | UInt32(VKK_FEATURE_AVX512F | VKK_FEATURE_AVX512CD)

    func candidates(_ features: UInt32, _ libraryCore: String) -> [String] {
        var names = [UnsafePointer<CChar>?](repeating: nil, count: 4)
        let count = libraryCore.withCString { vkk_blas_core_candidates(features, $0, &names, 4) }
        return names.prefix(Int(count)).map { String(cString: $0!) }
    }

    func testGenericKernelOnSapphireRapidsIsReplacedByAnAVX512Kernel() {
        // Debian 12's OpenBLAS 0.3.21 runs Prescott (SSE3) there.
        XCTAssertEqual(candidates(Self.sapphireRapids, "Prescott"), ["Cooperlake", "SkylakeX", "Haswell", "Sandybridge"])
        XCTAssertEqual(candidates(Self.sapphireRapids, "Haswell"), ["Cooperlake", "SkylakeX"])
        XCTAssertEqual(candidates(Self.skylakeX, "Nehalem"), ["SkylakeX", "Haswell", "Sandybridge"])
    }

    func testZen4KeepsTheLibrarysAVX512Choice() {
        XCTAssertEqual(candidates(Self.zen4, "Cooperlake"), [])
        XCTAssertEqual(candidates(Self.zen4, "SkylakeX"), [])
        XCTAssertEqual(candidates(Self.sapphireRapids, "SapphireRapids"), [])
        // An older release that knows only Zen's AVX2 kernels for it is upgraded.
        XCTAssertEqual(candidates(Self.zen4, "Zen").first, "Cooperlake")
    }

    func testAVX2MachinesGetHaswell() {
        XCTAssertEqual(candidates(Self.avx2, "Prescott"), ["Haswell", "Sandybridge"])
        XCTAssertEqual(candidates(Self.avx2, "Sandybridge"), ["Haswell"])
        XCTAssertEqual(candidates(Self.avx2, "Haswell"), [])
        XCTAssertEqual(candidates(Self.avx2, "Zen"), [])
        XCTAssertEqual(candidates(Self.knightsLanding, "Prescott").first, "Haswell")
    }

    func testOlderMachinesAndUnknownNamesKeepTheLibrarysChoice() {
        XCTAssertEqual(candidates(Self.avx, "Core2"), ["Sandybridge"])
        XCTAssertEqual(candidates(Self.sse, "Prescott"), [])
        XCTAssertEqual(candidates(0, "Generic"), [])
        // A newer library's core this table does not know, and a core above the CPU (not ours to lower).
        XCTAssertEqual(candidates(Self.sapphireRapids, "EmeraldRapids"), [])
        XCTAssertEqual(candidates(Self.avx2, "SkylakeX"), [])
        XCTAssertEqual(vkk_blas_core_level("cooperlake"), 3)
    }

    func testKernelPathsFollowTheFeatures() {
        XCTAssertEqual(vkk_cpu_best_path_for(Self.sapphireRapids), Int32(VKK_PATH_AVX512))
        XCTAssertEqual(vkk_cpu_best_path_for(Self.zen4), Int32(VKK_PATH_AVX512))
        XCTAssertEqual(vkk_cpu_best_path_for(Self.knightsLanding), Int32(VKK_PATH_AVX2))
        XCTAssertEqual(vkk_cpu_best_path_for(Self.avx2), Int32(VKK_PATH_AVX2))
        XCTAssertEqual(vkk_cpu_best_path_for(Self.avx), Int32(VKK_PATH_SCALAR))
    }

    /// The library in use runs a kernel that uses what this CPU has (unless the environment forces one),
    /// and CPU GEMM through it matches float64 on shapes past OpenBLAS's blocking (several K panels).
    func testLoadedLibraryFitsThisCPUAndMatchesFloat64() throws {
        let blas = BLASLibrary.shared
        XCTAssertTrue(blas.isLoaded, blas.description)
        let forced = ProcessInfo.processInfo.environment["VKK_BLAS_CORETYPE"] != nil
        if blas.isLoaded && !forced && vkk_blas_core_level(blas.coreName) >= 0 {
            XCTAssertGreaterThanOrEqual(vkk_blas_core_level(blas.coreName), vkk_blas_cpu_level(vkk_cpu_features()), blas.description)
        }
        let context = try ComputeContext(backend: .cpu)
        for (index, shape) in [(m: 300, n: 257, k: 700), (m: 129, n: 1, k: 1030)].enumerated() {
            try checkGEMM(GEMMCase(m: shape.m, n: shape.n, k: shape.k, alpha: 0.5, beta: -1, seed: UInt64(90 + index)), Float.self, on: context)
            try checkGEMM(GEMMCase(m: shape.m, n: shape.n, k: shape.k, transposeA: true, transposeB: true, seed: UInt64(95 + index)),
                          Float.self, on: context)
        }
    }

    /// The library was opened with its idle workers' spin limited (OPENBLAS_THREAD_TIMEOUT: 2^20 cycles
    /// unless the environment sets it), the description says so, and the variable is not left set for
    /// child processes.
    func testIdleWorkerSpinIsLimitedAndSaid() throws {
        let blas = BLASLibrary.shared
        try XCTSkipUnless(blas.isLoaded, blas.description)
        let user = ProcessInfo.processInfo.environment["OPENBLAS_THREAD_TIMEOUT"]
        XCTAssertTrue(blas.description.contains("idle workers spin 2^\(user ?? "20") cycles"), blas.description)
        XCTAssertEqual(getenv("OPENBLAS_THREAD_TIMEOUT").map { String(cString: $0) }, user)
    }
}
