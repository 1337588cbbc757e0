#!/bin/bash
# Confirmation on the final tree: CSR at 70% and 90% (OpenBLAS in turn), dense GEMM 2048^3 against NumPy,
# three rounds, vkk and NumPy back to back in each.
cd "$(dirname "$0")/../../../.."
out=Benchmarks/results/cpu-2026-12-06-intel/csr-chunks
V=.build/release/vkk
P="Benchmarks/peers/run.sh"
load() { echo "## $1 $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"; }
for r in 1 2 3; do
  load "sparse 70/90 round $r"; $V bench sparse --backend cpu --weight 4096x4096 --tokens 256 --format csr-magnitude csr-random --sparsity 70 90 --repeats 9 --json $out/confirm-sparse-$r.json | grep csr
  load "gemm round $r"; $V bench gemm --backend cpu --shape 2048x2048x2048 --repeats 5 --json $out/confirm-gemm-$r.json | grep custom
  load "numpy gemm round $r"; $P --only gemm --quick --repeats 5 --json $out/confirm-peers-gemm-$r.json | grep '^{"peer' | grep 2048 | cut -c1-120
done
load end
