#!/usr/bin/env bash
# Installs the Debian packages VulkanKernels needs, only those that are missing.
# As root it runs apt-get itself; otherwise it prints the exact command to run and fails.
set -euo pipefail

packages=(
  pkg-config
  libvulkan-dev           # Vulkan headers and loader
  glslc                   # GLSL -> SPIR-V at build time (shaderc)
  mesa-vulkan-drivers     # lavapipe: a Vulkan driver on the CPU, for machines without a GPU
  vulkan-validationlayers # VK_LAYER_KHRONOS_validation, on in the tests
  libopenblas-dev         # CPU dense path: libopenblas.so.0, opened at run time (cblas_sgemm)
  libpng-dev              # PNG frames from `vkk render`
  zlib1g-dev              # instant-ngp .ingp snapshots (zlib-compressed msgpack)
  libjpeg62-turbo-dev     # JPEG images of NeRF captures (vkk train)
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]})); then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages. Run as root:" >&2
    echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

command -v swift >/dev/null || { echo "setup: swift is not on PATH (Swift 6.1 or newer is needed)" >&2; exit 1; }
