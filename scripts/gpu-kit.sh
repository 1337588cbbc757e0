#!/usr/bin/env bash
# Builds the GPU kit: a release `vkk` with the Swift standard library linked in, the shared libraries it
# needs beside it, and run-gpu.sh, the one script to run on a lent GPU machine (no Swift toolchain
# there). The kit is a folder and a tarball:
#   scripts/gpu-kit.sh [OUTPUT_DIR]        (default: .gpu-kit/ at the repository root; ignored by git)
# Then on the GPU machine, from the unpacked folder:
#   ./run-gpu.sh [--quick] [--train TRANSFORMS_JSON] [RESULTS_DIR]
#     (vkk info, selfcheck, GEMM/sparse/attention/NeRF benches as JSON; --train adds 60 s of NeRF training
#     on that capture at full resolution, e.g. lego, for issue 14's "≥ 33 dB within 60 s on a GPU")
# With the device tool: carry .gpu-kit/vkk-gpu-kit.tar.gz (the folder is over the 64 MiB carry limit) and run
#   tar -xzf .gpu-kit/vkk-gpu-kit.tar.gz -C /tmp && /tmp/vkk-gpu-kit/run-gpu.sh $OUT
# The libraries: everything `ldd vkk` resolves outside the C library itself (libpng, zlib, ...), OpenBLAS
# (opened at run time, so not in ldd) with its own needs (libgfortran, libquadmath), and the Vulkan
# loader libvulkan.so.1, used only where the machine has none (its NVIDIA driver is found through the
# loader's usual manifest search, or VK_DRIVER_FILES). libstdc++ and libgcc_s are left to the machine:
# a GPU driver loaded into the process may need a newer one than this Debian's.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/.gpu-kit}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
kit="$out/vkk-gpu-kit"
rm -rf "$kit"
mkdir -p "$kit/bin" "$kit/lib" "$kit/lib-vulkan"

cd "$root"
swift build -c release --product vkk --static-swift-stdlib --scratch-path "$root/.build-kit"
# Without its debug sections (the device tool carries at most 64 MiB).
strip -o "$kit/bin/vkk" "$root/.build-kit/release/vkk"

# The C library and the dynamic loader belong to the machine; so do the C++ runtime and libgcc_s.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread\.so|libdl\.so|librt\.so|libresolv\.so|libutil\.so|libstdc\+\+\.so|libgcc_s\.so)'
copy_needs() {  # copy_needs FILE: the libraries FILE needs, resolved here, into lib/
    ldd "$1" | awk '/=> \// { print $1, $3 }' | while read -r name path; do
        if ! [[ "$name" =~ $skip ]] && [ ! -e "$kit/lib/$name" ]; then cp -L "$path" "$kit/lib/$name"; fi
    done
}
copy_needs "$kit/bin/vkk"
blas="$(ldconfig -p | awk '/libopenblas\.so\.0 / && !found { print $NF; found = 1 }')"
[ -n "$blas" ] || { echo "libopenblas.so.0 not found: apt-get install libopenblas0-pthread" >&2; exit 1; }
cp -L "$blas" "$kit/lib/libopenblas.so.0"
copy_needs "$kit/lib/libopenblas.so.0"
vulkan="$(ldconfig -p | awk '/libvulkan\.so\.1 / && !found { print $NF; found = 1 }')"
[ -n "$vulkan" ] || { echo "libvulkan.so.1 not found: apt-get install libvulkan1" >&2; exit 1; }
cp -L "$vulkan" "$kit/lib-vulkan/libvulkan.so.1"

cat > "$kit/run-gpu.sh" <<'RUN'
#!/usr/bin/env bash
# Runs on a lent GPU machine, from this folder: vkk info, the self-check (every kernel family on the GPU
# against the CPU path) and the GEMM, sparse, attention and NeRF benches, writing JSON rows into
# RESULTS_DIR (default ./results). Each step has a time limit so that the whole stays within 8 minutes.
#   ./run-gpu.sh [--quick] [--train TRANSFORMS_JSON] [RESULTS_DIR]
# --quick: the benches' short suites, e.g. on a CPU driver. --train: after the benches, 60 s of NeRF
# training on that capture at full resolution (every 8th view held out; held-out PSNR at 5 checkpoints,
# `vkk bench train`), one more step of at most 150 s beyond the 8 minutes of the others.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
quick=()
capture=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=(--quick); shift ;;
        --train) capture="${2:?--train needs a transforms.json}"; shift 2 ;;
        *) break ;;
    esac
done
results="${1:-$here/results}"
mkdir -p "$results"
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The machine's own Vulkan loader when it has one, else the bundled one.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then export LD_LIBRARY_PATH="$here/lib-vulkan:$LD_LIBRARY_PATH"; fi
vkk="$here/bin/vkk"
# No driver found by the loader's search: the NVIDIA manifest where the lent machines keep it.
if ! "$vkk" info 2>/dev/null | grep -q '^\[0\]'; then
    for manifest in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
        if [ -f "$manifest" ]; then export VK_DRIVER_FILES="$manifest"; break; fi
    done
fi
start=$SECONDS
status=0
step() {  # step SECONDS NAME COMMAND...: runs COMMAND with a time limit, output to the console and NAME.log
    local limit=$1 name=$2; shift 2
    echo "== $name (limit ${limit}s, at $((SECONDS - start))s)"
    timeout "$limit" "$@" 2>&1 | tee "$results/$name.log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || { echo "== $name exited with $rc"; status=1; }
}
step 30 info "$vkk" info
step 90 selfcheck "$vkk" selfcheck --json "$results/selfcheck.json"
step 90 gemm "$vkk" bench gemm --backend vulkan "${quick[@]}" --repeats 5 --json "$results/gemm.json"
step 90 sparse "$vkk" bench sparse --backend vulkan "${quick[@]}" --weight 4096x4096 --tokens 256 --repeats 5 --json "$results/sparse.json"
step 120 attention "$vkk" bench attention --backend vulkan "${quick[@]}" --cpu-limit 0 --repeats 5 --json "$results/attention.json"
step 60 nerf "$vkk" bench nerf --resolution 400 --json "$results/nerf.json"
if [ -n "$capture" ]; then
    step 150 train "$vkk" bench train "$capture" --backend vulkan --downscale 1 --holdout every:8 --seconds 60 --json "$results/train.json"
fi
echo "== done in $((SECONDS - start))s; results in $results"
exit $status
RUN
chmod +x "$kit/run-gpu.sh"
tar -C "$out" -czf "$out/vkk-gpu-kit.tar.gz" vkk-gpu-kit
echo "kit: $kit ($(du -sh "$kit" | cut -f1)); tarball: $out/vkk-gpu-kit.tar.gz ($(du -sh "$out/vkk-gpu-kit.tar.gz" | cut -f1))"
