@testable import VulkanKernels

/// A training network for gradient and kernel tests: MLP weights Xavier-uniform as the trainer initialises
/// them (from `seed`), and grid features uniform in ±1 (from `gridSeed`), so that the encoding matters as
/// much as the weights (freshly initialised features are ±1e-4).
func hashGridNetworkWithRandomGrid(_ c: HashGridConfiguration, seed: UInt64, gridSeed: UInt64) throws -> HashGridNetwork {
    var network = try HashGridNetwork.initialized(configuration: c, seed: seed)
    var generator = SeededGenerator(seed: gridSeed)
    for i in c.gridParameterOffset..<c.parameterCount { network.parameters[i] = generator.unitFloat() * 2 - 1 }
    return network
}
