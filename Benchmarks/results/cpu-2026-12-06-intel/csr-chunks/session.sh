#!/bin/bash
# CSR SpMM after one-chunk-per-thread and the reused B workspace: vkk and peers interleaved, 3 rounds.
cd "$(dirname "$0")/../../../.."
out=Benchmarks/results/cpu-2026-12-06-intel/csr-chunks
V=.build/release/vkk
P="Benchmarks/peers/run.sh"
load() { echo "## $1 $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"; }
load start
$V info | tail -2
for r in 1 2 3; do
  load "sparse cpu round $r"; $V bench sparse --backend cpu --weight 4096x4096 --tokens 256 --format csr-magnitude csr-random --repeats 5 --json $out/sparse-cpu-$r.json | grep csr
  load "peers sparse round $r"; $P --only sparse --repeats 5 --json $out/peers-sparse-$r.json | grep '^{"peer' | cut -c1-120
done
load end
