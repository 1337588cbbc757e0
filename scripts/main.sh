#!/usr/bin/env bash
# Set up (missing Debian packages only), build in release mode and run the main job on built-in
# defaults: list the devices, render the built-in NeRF scene to render.png, run a quick GEMM benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product vkk
vkk=.build/release/vkk
"$vkk" info
"$vkk" render
"$vkk" bench gemm --quick
