#!/usr/bin/env bash
# Set up (missing Debian packages only) and run the whole test suite. Vulkan tests run on the best
# device (lavapipe on machines without a GPU) under VK_LAYER_KHRONOS_validation with synchronization
# validation; any validation message fails a test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# lavapipe's threads plus OpenBLAS's would oversubscribe small machines.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-$(nproc)}"
swift build --build-tests
swift test --skip-build --disable-swift-testing "$@"
