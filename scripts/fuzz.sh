#!/usr/bin/env bash
# Coverage-guided fuzzing of every file reader with libFuzzer (the targets in Fuzz/, one per FileFormat).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [FORMAT ...]     default: 60 s each, every format
#   RUNS=1000000 scripts/fuzz.sh 0 npy                    stop after a number of executions instead
#   RUNS=1000000 scripts/fuzz.sh 300                      whichever comes first
#   JOBS=2 scripts/fuzz.sh 600                            run that many targets at a time
#
# Each target starts from Fuzz/Seeds/<format> (small files written by the library and reference tools)
# plus the real files of that format in shared/data (VKK_SHARED_DATA, else ../shared/data), and keeps
# the corpus it grows in Fuzz/.build/corpus/<format>. Findings (crash-*, timeout-*, oom-*) land in
# Fuzz/.build/artifacts/; the script exits non-zero if any target found one. Per input: 10 s timeout,
# 1 GiB RSS limit, 512 MiB largest single allocation (AddressSanitizer's malloc hook). The readers get the
# small ReadLimits of FuzzHarness, so any allocation near those limits is a reader allocating what a file
# merely declares. A summary line per target (executions, executions/s, coverage) is printed at the end
# and appended to Fuzz/.build/fuzz-results.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
formats=("$@")
[ ${#formats[@]} -gt 0 ] || formats=(npy safetensors matrixMarket smtx npz gzip messagePack snapshot transforms cameraPath png jpeg instantNGPConfig)
data="${VKK_SHARED_DATA:-$(cd .. && pwd)/shared/data}"

toolchain="$(dirname "$(dirname "$(readlink -f "$(command -v swiftc)")")")"
VKK_LIBFUZZER="$(find "$toolchain/lib" -name "libclang_rt.fuzzer_no_main-$(uname -m).a" | head -n 1)"
[ -n "$VKK_LIBFUZZER" ] || { echo "fuzz.sh: libclang_rt.fuzzer_no_main-$(uname -m).a not found under $toolchain/lib" >&2; exit 1; }
export VKK_LIBFUZZER
# The ShaderEmbedder build tool runs under AddressSanitizer during the build; Foundation's Process leaks a
# few bytes by design, which LeakSanitizer would turn into a failed build.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1"
flags=(-c release --sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp)
(cd Fuzz && swift build "${flags[@]}")
bin="$(cd Fuzz && swift build "${flags[@]}" --show-bin-path)"

# Real files of each format in shared/data (smallest first; large ones slow every execution).
real_files() {
    [ -d "$data" ] || return 0
    case "$1" in
        npy) find "$data/attention_vectors" -name '*.npy' -size -64k | sort | head -n 40 ;;
        smtx) find "$data/dlmc_subset" -name '*.smtx' -size -64k | sort | head -n 20 ;;
        transforms) find "$data/nerf_scenes" -name 'transforms*.json' ;;
        cameraPath) find "$data/nerf_scenes/nerfstudio_camera_paths" -name '*.json' ;;
        png) find "$data/nerf_scenes" -name '*.png' | sort | head -n 3 ;;
        jpeg) find "$data/nerf_scenes" -name '*.jpg' | sort | head -n 2 ;;
        instantNGPConfig) echo "$data/nerf_scenes/instant_ngp_configs/base.json" ;;
    esac
    return 0  # `head` closing the pipe early is not a failure
}

mkdir -p Fuzz/.build/artifacts
status=0
summary=()
run_one() {
    local format="$1" corpus="Fuzz/.build/corpus/$1" seeds="Fuzz/.build/seeds/$1"
    mkdir -p "$corpus" "$seeds"
    cp Fuzz/Seeds/"$format"/* "$seeds"/ 2>/dev/null || true
    real_files "$format" > "Fuzz/.build/$format.seeds" || true
    while read -r file; do cp "$file" "$seeds/$(echo "$file" | tr '/' '_')"; done < "Fuzz/.build/$format.seeds"
    local limit=()
    [ "$seconds" -gt 0 ] && limit+=(-max_total_time="$seconds")
    [ -n "${RUNS:-}" ] && limit+=(-runs="$RUNS")
    "$bin/fuzz-$format" "${limit[@]}" -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=512 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="Fuzz/.build/artifacts/$format-" "$corpus" "$seeds" > "Fuzz/.build/$format.log" 2>&1
}
running=0
for format in "${formats[@]}"; do
    echo "fuzzing $format ($( [ "$seconds" -gt 0 ] && echo "${RUNS:+$RUNS runs or }$seconds s" || echo "${RUNS:-?} runs" ))"
    run_one "$format" &
    running=$((running + 1))
    if [ "$running" -ge "${JOBS:-1}" ]; then wait -n || status=1; running=$((running - 1)); fi
done
while [ "$running" -gt 0 ]; do wait -n || status=1; running=$((running - 1)); done

for format in "${formats[@]}"; do
    log="Fuzz/.build/$format.log"
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    cover=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*' || echo "?")
    found=$(ls Fuzz/.build/artifacts/ | grep -c "^$format-" || true)
    line="$(date -u +%F) $format: $runs executions, $rate exec/s, coverage $cover edges, $found findings"
    summary+=("$line")
    echo "$line" >> Fuzz/.build/fuzz-results.txt
    [ "$found" = 0 ] || { status=1; grep -m 3 -E 'ERROR|Fatal|==.*==' "$log" || true; }
done
printf '%s\n' "${summary[@]}"
exit $status
