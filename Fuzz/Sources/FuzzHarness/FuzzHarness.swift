import Glibc
import VulkanKernels

/// What every libFuzzer target runs: one input through one reader with small limits. A thrown error is
/// the expected outcome for most inputs; a trap, a hang (libFuzzer's -timeout) or memory over
/// -rss_limit_mb is a finding.
public enum FuzzHarness {
    /// The limits of the in-suite pass (ReaderFuzzTests.limits): what a limit admits stays far below
    /// libFuzzer's default 2 GiB RSS limit, so a reader allocating what a file merely declares is caught.
    public static let limits = ReadLimits(maxFileBytes: 16 << 20, maxElements: 1 << 20, maxDecompressedBytes: 16 << 20,
                                          maxCompressionRatio: 1100, maxHeaderBytes: 1 << 20, maxImagePixels: 1 << 20)

    /// The format this process fuzzes (set once by ``start(_:)`` before libFuzzer starts).
    nonisolated(unsafe) static var format = FileFormat.npy

    /// A target's whole program: runs libFuzzer's driver (command-line flags as libFuzzer documents them)
    /// on `format`'s reader, then exits with its status.
    public static func start(_ format: FileFormat) -> Never {
        self.format = format
        var count = CommandLine.argc
        var arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&count, &arguments) { data, size in FuzzHarness.run(FuzzHarness.format, data, size) })
    }

    public static func run(_ format: FileFormat, _ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
        do { try format.validate(bytes, name: "input", limits: limits) } catch {}
        return 0
    }
}

/// libFuzzer's driver (FuzzerInterface.h), from libclang_rt.fuzzer_no_main.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32
