import CKernels

/// The BLAS behind the CPU path's dense GEMM: which library, which build, and which kernel ("core") it
/// runs. The library is opened at run time (Sources/CKernels/blas_loader.c): when OpenBLAS's own choice of
/// kernel uses less of the instruction set than this CPU has — an OpenBLAS release older than the CPU
/// falls back to its generic SSE3 "Prescott" kernel — it is loaded again with the best kernel the CPU
/// runs, so dense GEMM and every "vs BLAS" figure run at the machine's speed without any setting.
public struct BLASLibrary: Sendable, CustomStringConvertible {
    /// False when no BLAS library could be opened and a plain C GEMM runs instead (``selection`` says why).
    public let isLoaded: Bool
    /// The shared object's path.
    public let path: String
    /// The library's version and build options (`openblas_get_config()`).
    public let configuration: String
    /// The kernel in use (`openblas_get_corename()`), e.g. "SkylakeX", "Haswell".
    public let coreName: String
    /// The kernel the library chose by itself before any correction.
    public let libraryCoreName: String
    /// How the kernel was chosen, or why there is no library.
    public let selection: String
    /// OpenBLAS's thread count.
    public let threads: Int

    /// The process's BLAS, loaded on first use.
    public static let shared: BLASLibrary = {
        let info = vkk_blas_load()!.pointee
        func text<T>(_ field: T) -> String {
            withUnsafeBytes(of: field) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        }
        return BLASLibrary(isLoaded: info.loaded != 0, path: text(info.library), configuration: text(info.config),
                           coreName: text(info.core), libraryCoreName: text(info.library_core),
                           selection: text(info.selection), threads: Int(info.threads))
    }()

    /// "OpenBLAS 0.3.21, kernel SkylakeX": for backend descriptions and table titles.
    public var shortDescription: String {
        guard isLoaded else { return "no BLAS (plain C GEMM)" }
        let words = configuration.split(separator: " ")
        let name = words.count >= 2 && words[0] == "OpenBLAS" ? "OpenBLAS \(words[1])" : (path.split(separator: "/").last.map(String.init) ?? path)
        return "\(name), kernel \(coreName)"
    }

    /// One line: library, configuration, kernel and how it was chosen.
    public var description: String {
        guard isLoaded else { return "BLAS: \(selection)" }
        return "BLAS: \(path) — \(configuration) — kernel \(coreName): \(selection); \(threads) threads"
    }
}

/// The CPU's instruction-set extensions and the path the CPU kernels (sparse, attention, conversions) take.
public enum CPUKernelPath {
    /// "avx512", "avx2" or "scalar": the best this CPU runs, or the one `VKK_CPU_PATH` forces.
    public static var current: String { String(cString: vkk_cpu_path_name(vkk_cpu_path())) }

    /// The extensions the kernels and the BLAS choice look at, by name (e.g. "avx2 fma f16c avx512f …").
    public static var features: String {
        let names: [(UInt32, String)] = [
            (UInt32(VKK_FEATURE_AVX), "avx"), (UInt32(VKK_FEATURE_FMA), "fma"),
            (UInt32(VKK_FEATURE_F16C), "f16c"), (UInt32(VKK_FEATURE_AVX2), "avx2"),
            (UInt32(VKK_FEATURE_AVX512F), "avx512f"), (UInt32(VKK_FEATURE_AVX512DQ), "avx512dq"),
            (UInt32(VKK_FEATURE_AVX512CD), "avx512cd"), (UInt32(VKK_FEATURE_AVX512BW), "avx512bw"),
            (UInt32(VKK_FEATURE_AVX512VL), "avx512vl"), (UInt32(VKK_FEATURE_AVX512VNNI), "avx512vnni"),
            (UInt32(VKK_FEATURE_AVX512BF16), "avx512bf16"), (UInt32(VKK_FEATURE_AVX512FP16), "avx512fp16"),
            (UInt32(VKK_FEATURE_AMX), "amx"),
        ]
        let bits = vkk_cpu_features()
        return names.filter { bits & $0.0 != 0 }.map(\.1).joined(separator: " ")
    }
}
