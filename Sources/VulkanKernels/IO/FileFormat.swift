import FoundationEssentials

/// Every file format the library reads, by name: one entry point per reader that takes the file's bytes,
/// for checking a file before use and for the fuzzers (Tests/VulkanKernelsTests/ReaderFuzzTests.swift and
/// the libFuzzer targets under Fuzz/), which must reach each reader exactly as a file would.
public enum FileFormat: String, Sendable, CaseIterable {
    case npy, safetensors, matrixMarket, smtx, npz, gzip, messagePack, snapshot, transforms, cameraPath, png, jpeg, instantNGPConfig

    /// Parses `bytes` as this format within `limits` and discards the result: throws exactly what the
    /// reader throws for the same bytes read from a file named `name`.
    public func validate(_ bytes: [UInt8], name: String = "input", limits: ReadLimits = .default) throws {
        switch self {
        case .npy: _ = try NPY.read(bytes: bytes, name: name, limits: limits)
        case .safetensors: _ = try SafeTensorsFile(bytes: bytes, name: name, limits: limits)
        case .matrixMarket: _ = try SparseMatrixFile.readMatrixMarket(text: String(decoding: bytes, as: UTF8.self), name: name, limits: limits)
        case .smtx: _ = try SparseMatrixFile.readSMTX(bytes: bytes, name: name, limits: limits)
        case .npz: _ = try ScipySparseFile(bytes: bytes, name: name, limits: limits)
        case .gzip: _ = try Zlib.decompress(bytes, limit: limits.maxDecompressedBytes, maxRatio: limits.maxCompressionRatio)
        case .messagePack: _ = try MessagePack.decode(bytes)
        case .snapshot: _ = try NGPSnapshot.decode(bytes, limits: limits).makeField()
        case .transforms:
            try limits.check(bytes.count, \.maxHeaderBytes, file: name, field: "JSON document size")
            _ = try TransformsFile.parse(Data(bytes))
        case .cameraPath:
            try limits.check(bytes.count, \.maxHeaderBytes, file: name, field: "JSON document size")
            _ = try CameraPathFile.parse(Data(bytes))
        case .png: _ = try PNG.decode(bytes, name: name, limits: limits)
        case .instantNGPConfig:
            // `vkk train --config`: an instant-ngp network config, applied to a capture of aabb_scale 4.
            try limits.check(bytes.count, \.maxHeaderBytes, file: name, field: "JSON document size")
            _ = try InstantNGPConfig.parse(Data(bytes), aabbScale: 4)
        case .jpeg: _ = try TrainingImageFile.decodeJPEG(bytes, name: name, maximumPixels: min(limits.maxImagePixels, TrainingImageFile.maximumPixels))
        }
    }
}
