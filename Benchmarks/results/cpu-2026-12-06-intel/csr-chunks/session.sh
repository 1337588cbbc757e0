#!/bin/bash
# CSR SpMM with the reused B workspace, pieces of 64 columns x a row chunk, and OpenBLAS's idle spin cut
# to 2^20 cycles: vkk (OpenBLAS timed in turn with each sparse run) and the peers, interleaved, 4 rounds;
# the dense GEMM target (2048^3 against NumPy) rechecked beside it, since the BLAS is loaded differently.
cd "$(dirname "$0")/../../../.."
out=Benchmarks/results/cpu-2026-12-06-intel/csr-chunks
V=.build/release/vkk
P="Benchmarks/peers/run.sh"
load() { echo "## $1 $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"; }
load start
$V info | tail -2
for r in 1 2 3 4; do
  load "sparse cpu round $r"; $V bench sparse --backend cpu --weight 4096x4096 --tokens 256 --format csr-magnitude csr-random --repeats 7 --json $out/sparse-cpu-$r.json | grep csr
  load "peers sparse round $r"; $P --only sparse --repeats 5 --json $out/peers-sparse-$r.json | grep '^{"peer' | cut -c1-120
  load "gemm cpu round $r"; $V bench gemm --backend cpu --shape 2048x2048x2048 --repeats 5 --json $out/gemm-cpu-$r.json | grep custom
  load "peers gemm round $r"; $P --only gemm --quick --repeats 5 --json $out/peers-gemm-$r.json | grep '^{"peer' | grep 2048 | cut -c1-120
done
load end
