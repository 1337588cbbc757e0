// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "VulkanKernels",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "VulkanKernels", targets: ["VulkanKernels"]),
        .executable(name: "vkk", targets: ["vkk"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Vulkan headers only (libvulkan-dev). No pkgConfig on purpose: its `-lvulkan` would make the
        // loader a load-time dependency, and the library opens it with dlopen instead so that a program
        // still starts, and falls back to the CPU, on a machine without libvulkan (VulkanLoader.swift).
        .systemLibrary(name: "CVulkan", providers: [.apt(["libvulkan-dev"])]),
        // libpng (simplified png_image API) for PNG output.
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        // zlib (zlib1g-dev): instant-ngp's compressed `.ingp` snapshots.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // libjpeg-turbo (libjpeg62-turbo-dev): JPEG images of NeRF captures.
        .systemLibrary(name: "CJPEG", providers: [.apt(["libjpeg62-turbo-dev"])]),
        // Build tool run by the ShaderCompiler plugin: glslc -> base64 Swift source.
        .executableTarget(name: "ShaderEmbedder"),
        // One build command per Shaders/**/*.comp (Shaders/common/*.glsl are includes).
        .plugin(name: "ShaderCompiler", capability: .buildTool(), dependencies: ["ShaderEmbedder"]),
        // The CPU path's C code: AVX-512 / AVX2 / scalar inner loops of the sparse, attention and conversion
        // kernels (chosen at run time by CPUID), and the BLAS (OpenBLAS), opened at run time with its kernel
        // chosen for this CPU (blas_loader.c) rather than linked.
        .target(name: "CKernels"),
        .target(
            name: "VulkanKernels",
            dependencies: ["CVulkan", "CPNG", "CZlib", "CJPEG", "CKernels"],
            plugins: ["ShaderCompiler"]
        ),
        .executableTarget(
            name: "vkk",
            dependencies: ["VulkanKernels", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(name: "VulkanKernelsTests", dependencies: ["VulkanKernels", "CKernels"]),
    ]
)
