#!/bin/bash
# The measurement session for issue 16: vkk and peers interleaved, loads logged.
cd "$(dirname "$0")/../../.."
out=${OUT:-Benchmarks/results/cpu-2026-12-06-intel}; mkdir -p $out
V=.build/release/vkk
P="Benchmarks/peers/run.sh"
load() { echo "## $1 $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"; }
load start
$V info | tail -2
for r in 1 2; do
  load "gemm cpu round $r"; $V bench gemm --backend cpu --shape 1024x1024x1024 --shape 2048x2048x2048 --shape 4096x256x4096 --repeats 5 --json $out/gemm-cpu-$r.json | grep custom
  load "peers gemm round $r"; $P --only gemm --quick --repeats 5 --json $out/peers-gemm-$r.json | grep '^{"peer' | cut -c1-110
done
load "gemm lavapipe 2048"; $V bench gemm --backend vulkan --shape 2048x2048x2048 --no-naive --repeats 3 --json $out/gemm-lavapipe.json | grep custom
load "gemm cpu forced Prescott"; VKK_BLAS_CORETYPE=Prescott $V bench gemm --backend cpu --shape 2048x2048x2048 --repeats 3 --json $out/gemm-cpu-prescott.json | grep custom
load "gemm lavapipe vs Prescott"; VKK_BLAS_CORETYPE=Prescott $V bench gemm --backend vulkan --shape 2048x2048x2048 --no-naive --repeats 3 | grep custom
for r in 1 2; do
  load "attention avx512 round $r"; $V bench attention --backend cpu --sweep prefill --length 4096 --head-dim 64 --repeats 3 --json $out/attention-avx512-$r.json | grep "L=4096 d=64 h=16"
  load "torch sdpa round $r"; $P --only attention --repeats 3 --json $out/peers-attention-$r.json | grep '^{"peer' | grep 4096 | cut -c1-140
  load "attention avx2 round $r"; VKK_CPU_PATH=avx2 $V bench attention --backend cpu --sweep prefill --length 4096 --head-dim 64 --repeats 3 --json $out/attention-avx2-$r.json | grep "L=4096 d=64 h=16"
done
load "decode cpu"; $V bench attention --backend cpu --sweep decode --length 32768 --repeats 5 --json $out/decode-cpu.json | grep "L="
load "decode cpu round 2"; $V bench attention --backend cpu --sweep decode --length 32768 --repeats 5 --json $out/decode-cpu-2.json | grep "L="
load "peers decode+bandwidth"; $P --only decode,bandwidth --quick --repeats 5 --json $out/peers-decode.json | grep '^{"peer' | cut -c1-140
load "sparse cpu"; $V bench sparse --backend cpu --weight 4096x4096 --tokens 256 --format csr-magnitude csr-random --repeats 5 --json $out/sparse-cpu.json | grep csr
load "peers sparse"; $P --only sparse --repeats 5 --json $out/peers-sparse.json | grep '^{"peer' | cut -c1-120
load "sparse cpu avx2"; VKK_CPU_PATH=avx2 $V bench sparse --backend cpu --weight 4096x4096 --tokens 256 --format csr-magnitude --sparsity 70 90 --repeats 5 --json $out/sparse-cpu-avx2.json | grep csr
load end
