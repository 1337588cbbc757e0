// The loader is opened at run time (dlopen), so the library starts, and falls back to the CPU
// backend, on machines with no libvulkan at all. Only types and function-pointer typedefs are imported.
#define VK_NO_PROTOTYPES 1
#include <vulkan/vulkan.h>
#include <dlfcn.h>
