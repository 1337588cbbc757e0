#!/usr/bin/env bash
# The CPU attention rows of Benchmarks/RESULTS.md (issue 16) in one session: `vkk bench attention
# --backend cpu` prefill L=4096 d=64 h=16 (causal and not) and decode 1x32K (d=128, 32/8 heads, with its
# measured read bound), each round followed at once by PyTorch SDPA on the same shapes (Benchmarks/peers),
# so both sides of every ratio are measured back to back; machine load logged before each step.
#   Benchmarks/cpu-attention-rows.sh [ROUNDS=3] [OUT=/tmp/vkk-cpu-attention]
# Decode takes 5 warm-up runs (its read bound alike): with 1, the first timed runs after the 268 MB of K and
# V were created ran 20-60% slower than the same call timed right after (6.1-9.0 ms against 5.0-7.0).
# Builds the release vkk when it is missing; Benchmarks/peers/run.sh installs its pinned peers on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
out=${2:-/tmp/vkk-cpu-attention}
mkdir -p "$out"
[ -x .build/release/vkk ] || swift build -c release --product vkk
V=.build/release/vkk
P=Benchmarks/peers/run.sh
load() { echo "## $1 $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"; }
load start
for r in $(seq 1 "$rounds"); do
    load "vkk prefill, round $r"
    $V bench attention --backend cpu --sweep prefill --length 4096 --head-dim 64 --repeats 3 --json "$out/vkk-prefill-$r.json" | grep "L=4096 d=64 h=16 "
    load "torch sdpa prefill, round $r"
    $P --only attention --quick --repeats 3 --json "$out/sdpa-prefill-$r.json" | grep '"L=4096' | cut -c1-110
    load "vkk decode, round $r"
    $V bench attention --backend cpu --sweep decode --length 32768 --warmup 5 --repeats 9 --json "$out/vkk-decode-$r.json" | grep "kv8"
    load "torch sdpa decode and read bandwidth, round $r"
    $P --only decode,bandwidth --quick --repeats 5 --json "$out/sdpa-decode-$r.json" | grep -E '32768|bandwidth' | cut -c1-110
done
load end
# One line per round: vkk / SDPA ratios (SDPA ms / vkk ms, > 1 means vkk is faster) and decode / read bound.
python3 - "$out" "$rounds" <<'PY'
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
for r in range(1, rounds + 1):
    vkk = {row["case"]: row for row in json.load(open(f"{out}/vkk-prefill-{r}.json"))["rows"]}
    sdpa = {row["case"]: row for row in json.load(open(f"{out}/sdpa-prefill-{r}.json"))["rows"]}
    dec = [row for row in json.load(open(f"{out}/vkk-decode-{r}.json"))["rows"] if "kv8" in row["case"]][0]
    peers = json.load(open(f"{out}/sdpa-decode-{r}.json"))["rows"]
    sdpa_dec = [row for row in peers if row["case"] == "L=1x32768 d=128 h=32/kv8"][0]
    parts = []
    for case in ("L=4096 d=64 h=16", "L=4096 d=64 h=16 causal"):
        mine, theirs = vkk[case]["fused ms"], sdpa[case]["ms"]
        parts.append(f"{case}: vkk {mine:.0f} ms, SDPA {theirs:.0f} ms, {theirs / mine:.2f}x")
    parts.append(f"decode 32K: vkk {dec['fused ms']:.1f} ms, read bound {dec['read K+V ms']:.1f} ms ({dec['x read']:.2f}x), "
                 f"SDPA {sdpa_dec['ms']:.1f} ms")
    print(f"round {r}: " + "; ".join(parts))
PY
