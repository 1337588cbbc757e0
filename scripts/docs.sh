#!/usr/bin/env bash
# Builds the DocC catalogue (Sources/VulkanKernels/VulkanKernels.docc) with the toolchain's own `docc`,
# without the swift-docc-plugin package: symbol graphs from `swift package dump-symbol-graph`, then
# `docc convert --analyze`. Any warning (an unresolved symbol link in an article or a doc comment) fails.
# Output: .build/docs/VulkanKernels.doccarchive
set -euo pipefail
cd "$(dirname "$0")/.."
swift package dump-symbol-graph >/dev/null
graphs=.build/docs/symbol-graphs
rm -rf "$graphs" && mkdir -p "$graphs"
cp .build/*/symbolgraph/VulkanKernels.symbols.json .build/*/symbolgraph/VulkanKernels@*.symbols.json "$graphs"/
log=$(mktemp)
docc convert Sources/VulkanKernels/VulkanKernels.docc --additional-symbol-graph-dir "$graphs" \
    --fallback-display-name VulkanKernels --fallback-bundle-identifier VulkanKernels \
    --output-path .build/docs/VulkanKernels.doccarchive --analyze 2>&1 | tee "$log"
if grep -q "^warning\|^error" "$log"; then echo "docs.sh: DocC reported problems (above)" >&2; exit 1; fi
echo "docs.sh: .build/docs/VulkanKernels.doccarchive"
