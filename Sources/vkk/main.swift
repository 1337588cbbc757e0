import VulkanKernels
let context = try ComputeContext()
print(context.backendDescription)
