"""Peers of `vkk bench`, timed on the same shapes: one JSON object per row on stdout (and in --json).

Every row has the median, minimum and maximum of --repeats timed runs after one warm-up, the thread
count, and the library and kernel that ran (NumPy's OpenBLAS core through threadpoolctl, torch's
build configuration).
"""
import argparse
import json
import platform
import statistics
import sys
import time
import warnings

import numpy as np
import scipy
import scipy.sparse
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_info, threadpool_limits


def timed(body, repeats):
    body()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        body()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def row(kind, case, seconds, **extra):
    median, low, high = seconds
    result = {"peer": kind, "case": case, "ms": median * 1e3, "ms_min": low * 1e3, "ms_max": high * 1e3}
    result.update(extra)
    print(json.dumps(result), flush=True)
    return result


def numpy_blas():
    for pool in threadpool_info():
        if pool.get("internal_api") == "openblas":
            return f"{pool.get('prefix')} {pool.get('version')} kernel {pool.get('architecture')}, {pool.get('num_threads')} threads"
    return "unknown"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def gemm(args):
    rows = []
    sizes = [(1024, 1024, 1024), (2048, 2048, 2048)] + ([] if args.quick else [(4096, 4096, 4096)]) + [(4096, 256, 4096)]
    rng = np.random.default_rng(1)
    for m, n, k in sizes:
        a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
        b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
        c = np.empty((m, n), np.float32)
        seconds = timed(lambda: np.matmul(a, b, out=c), args.repeats)
        rows.append(row("numpy sgemm", f"{m}x{n}x{k}", seconds, gflops=2 * m * n * k / seconds[0] / 1e9))
    return rows


def attention(args):
    rows = []
    cases = [(16, 256, 64), (16, 1024, 64), (16, 4096, 64)]
    if args.quick:
        cases = [(16, 1024, 64), (16, 4096, 64)]
    for heads, length, d in cases:
        g = torch.Generator().manual_seed(1)
        q, k, v = (torch.rand(1, heads, length, d, generator=g) * 2 - 1 for _ in range(3))
        for causal in (False, True):
            with torch.inference_mode():
                seconds = timed(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal), args.repeats)
            pairs = length * (length + 1) / 2 if causal else length * length
            rows.append(row("torch sdpa", f"L={length} d={d} h={heads}" + (" causal" if causal else ""), seconds,
                            gflops=4 * d * pairs * heads / seconds[0] / 1e9))
    return rows


def decode(args):
    rows = []
    lengths = [4096, 32768] if args.quick else [1024, 4096, 16384, 32768, 131072]
    for length in lengths:
        g = torch.Generator().manual_seed(2)
        q = torch.rand(1, 32, 1, 128, generator=g)
        k = torch.rand(1, 8, length, 128, generator=g)
        v = torch.rand(1, 8, length, 128, generator=g)
        with torch.inference_mode():
            seconds = timed(lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True), args.repeats)
        moved = 2 * k.numel() * 4
        rows.append(row("torch sdpa decode", f"L=1x{length} d=128 h=32/kv8", seconds, gb_per_s=moved / seconds[0] / 1e9))
    return rows


def bandwidth(args):
    # A streaming read: the bound for decode, which reads K and V once. torch.sum is vectorised and
    # uses the thread pool; 1 GiB is far past the caches.
    x = torch.ones(256 * 1024 * 1024)
    with torch.inference_mode():
        seconds = timed(lambda: x.sum(), args.repeats)
    return [row("torch sum (read bandwidth)", "1 GiB fp32", seconds, gb_per_s=x.numel() * 4 / seconds[0] / 1e9)]


def sparse(args):
    # torch prints a beta-support warning for CSR tensors; the rows stay JSON.
    warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
    rows = []
    m = k = 4096
    n = 256
    rng = np.random.default_rng(11)
    dense = rng.uniform(-1, 1, (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    tb = torch.from_numpy(b)
    seconds = timed(lambda: dense @ b, args.repeats)
    rows.append(row("numpy sgemm", f"{m}x{k} . {k}x{n}", seconds))
    sparsities = [70, 90] if args.quick else [50, 70, 80, 90, 95, 98]
    for percent in sparsities:
        # Magnitude pruning of uniform data keeps a uniformly random pattern, as `vkk bench sparse` does.
        threshold = np.quantile(np.abs(dense), percent / 100)
        pruned = np.where(np.abs(dense) > threshold, dense, 0).astype(np.float32)
        a = scipy.sparse.csr_matrix(pruned)
        seconds = timed(lambda: a @ b, args.repeats)
        rows.append(row("scipy csr", f"{m}x{k} {percent}% . N={n}", seconds, nnz=int(a.nnz)))
        ta = torch.from_numpy(pruned).to_sparse_csr()
        with torch.inference_mode():
            seconds = timed(lambda: ta @ tb, args.repeats)
        rows.append(row("torch.sparse csr", f"{m}x{k} {percent}% . N={n}", seconds, nnz=int(a.nnz)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="gemm,attention,decode,sparse,bandwidth")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    header = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu_model(), "threads": args.threads,
        "numpy": np.__version__, "numpy_blas": None, "scipy": scipy.__version__, "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    sections = {"gemm": gemm, "attention": attention, "decode": decode, "sparse": sparse, "bandwidth": bandwidth}
    rows = []
    with threadpool_limits(limits=args.threads):
        header["numpy_blas"] = numpy_blas()
        print(json.dumps(header), flush=True)
        for name in args.only.split(","):
            if name not in sections:
                sys.exit(f"unknown section {name}: {', '.join(sections)}")
            rows += sections[name](args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"benchmark": "peers", **header, "rows": rows}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
