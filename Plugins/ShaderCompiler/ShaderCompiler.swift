import Foundation
import PackagePlugin

/// Compiles every `Shaders/**/*.comp` of the package to SPIR-V and embeds it in
/// the target as Swift source (one `EmbeddedShader` static per shader/variant).
///
/// The shaders live in the package's top-level `Shaders/` folder, not inside a
/// target, so we read `context.package.directoryURL` instead of the target's files.
///
/// SwiftPM runs this plugin only when it re-plans the build (Package.swift or a
/// target's file list changed), not on every build. After adding or removing a
/// .comp file, `touch Package.swift` so the new shader gets a build command.
@main
struct ShaderCompiler: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        let shadersDir = context.package.directoryURL.appending(path: "Shaders")
        let commonDir = shadersDir.appending(path: "common")
        guard FileManager.default.fileExists(atPath: shadersDir.path) else { return [] }

        let glslc = try findGlslc()
        let embedder = try context.tool(named: "ShaderEmbedder").url

        // SwiftPM reads no depfiles, so every include is an input of every
        // command: editing one rebuilds all shaders (cheap, and always correct).
        let includes = files(under: commonDir).filter { $0.pathExtension == "glsl" }

        var commands: [Command] = []
        var seen: [String: String] = [:]  // identifier -> relative path, to catch clashes
        for shader in files(under: shadersDir) where shader.pathExtension == "comp" {
            let relPath = relativePath(of: shader, in: shadersDir)
            // Includes are never compiled on their own.
            if relPath.hasPrefix("common/") { continue }

            let name = String(relPath.dropLast(".comp".count))
            let ident = identifier(for: name)
            if let other = seen[ident] {
                throw ShaderPluginError("Shaders/\(relPath) and Shaders/\(other) both map to identifier '\(ident)'; rename one")
            }
            seen[ident] = relPath

            // One command and one output per .comp. Its `// @variant` lines are
            // read by the embedder at build time, not here: SwiftPM re-runs this
            // plugin only when Package.swift or a target's file list changes, so
            // variants parsed here would go stale when a shader is edited.
            // The name is unique across the package because `ident` encodes the
            // whole path under Shaders/.
            let output = context.pluginWorkDirectoryURL.appending(path: "Shader_\(ident).swift")
            commands.append(.buildCommand(
                displayName: "Compiling shader Shaders/\(relPath)",
                executable: embedder,
                arguments: [
                    "--glslc", glslc.path,
                    "--include", commonDir.path,
                    "--input", shader.path,  // absolute, so glslc errors name a findable file
                    "--display-path", "Shaders/\(relPath)",
                    "--identifier", ident,
                    "--name", name,
                    "--output", output.path,
                ],
                inputFiles: [shader] + includes,
                outputFiles: [output]
            ))
        }
        return commands
    }

    /// `context.tool(named:)` only finds the package's own executables, so glslc
    /// (a system tool) has to be looked up on PATH ourselves.
    private func findGlslc() throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for dir in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(dir)).appending(path: "glslc")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw ShaderPluginError("glslc not found on PATH; install it with `apt-get install glslc` (Debian package `glslc`)")
    }

    /// All regular files below `dir`, sorted so the command order is stable.
    private func files(under dir: URL) -> [URL] {
        guard let walker = FileManager.default.enumerator(
            at: dir, includingPropertiesForKeys: [.isRegularFileKey]) else { return [] }
        return walker.compactMap { $0 as? URL }
            .filter { (try? $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true }
            .map { $0.standardizedFileURL }
            .sorted { $0.path < $1.path }
    }

    private func relativePath(of file: URL, in dir: URL) -> String {
        let prefix = dir.standardizedFileURL.path + "/"
        return String(file.path.dropFirst(prefix.count))
    }

    /// `dense/gemm-tiled` -> `dense_gemm_tiled`: anything that cannot appear in
    /// a Swift identifier (notably `/` and `-`) becomes `_`.
    private func identifier(for stem: String) -> String {
        let chars = stem.map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" }
        let ident = String(chars)
        return ident.first?.isNumber == true ? "_" + ident : ident
    }
}

struct ShaderPluginError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
