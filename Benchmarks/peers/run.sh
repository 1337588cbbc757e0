#!/usr/bin/env bash
# Times the peers of `vkk bench` on this machine: NumPy dense GEMM, PyTorch scaled_dot_product_attention
# (prefill and decode), torch.sparse CSR and SciPy CSR SpMM, and a memory read bandwidth, on the shapes
# of `vkk bench gemm|attention|sparse`. Installs the pinned packages of requirements.txt into
# .venv-peers/ (at the repository root, ignored by git) on first use.
#   Benchmarks/peers/run.sh [--threads 2] [--repeats 5] [--only gemm,attention,decode,sparse,bandwidth] [--json FILE] [--quick]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.venv-peers"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$venv/requirements.txt"
fi
# Some machines set OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for older OpenBLAS builds; NumPy's own OpenBLAS
# picks its kernel by itself (peers.py prints the one it runs).
exec env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$venv/bin/python" "$here/peers.py" "$@"
