#!/usr/bin/env python3
"""Training steps side by side: megabench (C++) against the Python references (megabyte-pytorch
0.3.6, perceiver-ar-pytorch 0.0.10), eager and torch.compile'd, in one run, on the same machine,
at each thread count. Prints the timings, the ratios and each side's fraction of the machine's
fp32 matmul peak (a Markdown table; --json for the raw numbers).

    scripts/setup.sh --reference
    python3 scripts/bench_vs_reference.py [--threads 1,2] [--repeats 5] [--tests build/default/tests/megabench_tests]

Each row is one training step (forward + backward, batch 1, fp32, no optimizer), the median of
--repeats after warm-up:
  - MEGABYTE, the reference README's config: dim (512, 256), depth (6, 4), max_seq_len (1024, 4);
  - MEGABYTE, 3 stages: dim (256, 128, 64), depth (4, 2, 2), max_seq_len (64, 8, 4);
  - Perceiver AR, the reference's train.py config: dim 512, depth 8, max_seq_len 4096, prefix 3072.
Each MEGABYTE row runs twice, with each side's explicit attention (the reference's
flash_attn=False, megabench "attention": "explicit") and with each side's fused attention
(flash_attn=True, the reference README's setting: F.scaled_dot_product_attention; megabench "sdpa":
LibTorch's SDPA, and its short-attention kernel for the local stages). Perceiver AR has no fused
path in the reference: its fused row compares megabench "sdpa" with the reference's only path.
The compiled reference is torch.compile(model) in its default mode; its compile time (the first
calls) is excluded. Every thread count runs in a fresh process for each side, so that Inductor's
code (which bakes in its thread count) and OpenMP start afresh.

"% peak" is the step's analytical training FLOPs (`megabench flops`, 3x the forward) over its time,
against a 2048^3 fp32 matmul timed in the same process as the reference at the same thread count:
it bounds what any implementation of the same model can gain (a step cannot beat 100%).

--allocator picks the malloc both sides run with, through LD_PRELOAD in each subprocess:
"tcmalloc" (the default where Debian's libtcmalloc-minimal4 is installed: what the megabench
executables link, and what PyTorch's CPU tuning guide recommends for Python) or "system" (glibc).
The C++ side runs in the test binary, which links no allocator of its own, so both sides get the
same one.

--generate adds MEGABYTE's cached generation of 4096 bytes against the reference's generate(),
which reruns the whole sequence for every byte (minutes at 1 thread).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

MEGABYTE_ROWS = [("MEGABYTE README config (512, 256) / (6, 4) / (1024, 4)", (512, 256), (6, 4), (1024, 4)),
                 ("MEGABYTE 3 stages (256, 128, 64) / (4, 2, 2) / (64, 8, 4)", (256, 128, 64), (4, 2, 2), (64, 8, 4))]
PERCEIVER = ("Perceiver AR train.py config (512, depth 8, 4096 / 3072)", 512, 8, 4096, 3072)
ATTENTION = (("explicit", False), ("fused", True))  # (row suffix, fused on both sides)


def row_name(name, fused):
    return f"{name}, {'fused' if fused else 'explicit'} attention"
GENERATE = ("MEGABYTE generate 4096 bytes (128, 64) / (2, 2) / (1024, 4)", (128, 64), (2, 2), (1024, 4))


def cfg_env(dim, depth, msl):
    return ";".join(",".join(str(v) for v in t) for t in (dim, depth, msl))


TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"


def allocator_env(name):
    """The environment that gives a subprocess `name` as its malloc."""
    if name == "system":
        return {}
    if not os.path.exists(TCMALLOC):
        sys.exit(f"bench_vs_reference: --allocator tcmalloc needs {TCMALLOC} (apt-get install libtcmalloc-minimal4)")
    return {"LD_PRELOAD": TCMALLOC}


def run_cpp(tests, case, env):
    out = subprocess.run([tests, case], env=dict(os.environ, **env), capture_output=True, text=True, check=True).stdout
    return out


def cpp_rows(a, threads):
    """megabench's timings at `threads`, keyed like the rows."""
    env = {"MEGABENCH_THREADS": str(threads), "MEGABENCH_REPEATS": str(a.repeats), "OMP_NUM_THREADS": str(threads),
           **allocator_env(a.allocator)}
    res = {}
    for name, dim, depth, msl in MEGABYTE_ROWS:
        for _, fused in ATTENTION:
            out = run_cpp(a.tests, "bench: MEGABYTE training step",
                          dict(env, MEGABENCH_BENCH_CONFIG=cfg_env(dim, depth, msl),
                               MEGABENCH_BENCH_ATTENTION="sdpa" if fused else "explicit"))
            res[row_name(name, fused)] = float(re.search(r"BENCH train_step_ms ([0-9.eE+-]+)", out).group(1))
    if not a.skip_perceiver:
        name, dim, depth, L, C = PERCEIVER
        for _, fused in ATTENTION:
            out = run_cpp(a.tests, "PerceiverAR benchmark",
                          dict(env, PAR_DIM=str(dim), PAR_DEPTH=str(depth), PAR_LEN=str(L), PAR_PREFIX=str(C),
                               PAR_STEPS=str(a.repeats), PAR_THREADS=str(threads), PAR_FLASH=str(int(fused)),
                               PAR_TRAIN="1", PAR_GEN="1", PAR_WINDOWS=str(C + 1)))
            res[row_name(name, fused)] = json.loads(next(l for l in out.splitlines() if l.startswith("{")))[
                "train_step_median_ms"]
    if a.generate:
        name, dim, depth, msl = GENERATE
        out = run_cpp(a.tests, "bench: MEGABYTE generation", dict(env, MEGABENCH_BENCH_CONFIG=cfg_env(dim, depth, msl)))
        res[name] = 1e3 * float(re.search(r"BENCH generate_s ([0-9.eE+-]+)", out).group(1))
    return res


def train_flops(a):
    """Analytical training FLOPs of one step per row (`megabench flops`: 3x the forward)."""
    def flops(model, config, length):
        out = subprocess.run([a.megabench, "flops", model, "--config", json.dumps(config), "--json"],
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out)[0]["flops_train_per_byte"] * length

    res = {}
    for name, dim, depth, msl in MEGABYTE_ROWS:
        L = 1
        for n in msl:
            L *= n
        f = flops("megabyte", {"dim": list(dim), "depth": list(depth), "seq_len": L, "patch": list(msl[1:])}, L)
        for _, fused in ATTENTION:
            res[row_name(name, fused)] = f
    name, dim, depth, L, C = PERCEIVER
    f = flops("perceiver_ar", {"dim": dim, "depth": depth, "seq_len": L, "prefix_len": C}, L - C)
    for _, fused in ATTENTION:
        res[row_name(name, fused)] = f
    return res


def python_side(a):
    """Runs in a child process (--_python THREADS): the reference, eager and compiled."""
    import torch
    from MEGABYTE_pytorch import MEGABYTE
    from perceiver_ar_pytorch import PerceiverAR
    from perceiver_ar_pytorch.autoregressive_wrapper import AutoregressiveWrapper

    torch.set_num_threads(a._python)

    def median_ms(step, warmup):
        for _ in range(warmup):
            step()
        ts = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            step()
            ts.append((time.perf_counter() - t0) * 1e3)
        return sorted(ts)[len(ts) // 2]

    res = {}
    a_ = torch.randn(2048, 2048)
    b_ = torch.randn(2048, 2048)
    res["matmul_fp32_ms"] = median_ms(lambda: a_ @ b_, 2)
    for name, dim, depth, msl in MEGABYTE_ROWS:
        for _, fused in ATTENTION:
            torch.manual_seed(0)
            model = MEGABYTE(num_tokens=256, dim=dim, depth=depth, max_seq_len=msl, flash_attn=fused)
            x = torch.randint(0, 256, (1, int(torch.tensor(msl).prod())))
            key = row_name(name, fused)
            res[key] = {"eager": median_ms(lambda: model(x, return_loss=True).backward(), 1)}
            if not a.skip_compiled:
                torch._dynamo.reset()
                compiled = torch.compile(model)
                t0 = time.perf_counter()
                compiled(x, return_loss=True).backward()
                res[key]["compile_s"] = time.perf_counter() - t0
                res[key]["compiled"] = median_ms(lambda: compiled(x, return_loss=True).backward(), 1)
    if not a.skip_perceiver:
        name, dim, depth, L, C = PERCEIVER
        torch.manual_seed(0)
        model = AutoregressiveWrapper(PerceiverAR(num_tokens=256, dim=dim, depth=depth, max_seq_len=L,
                                                  cross_attn_seq_len=C, dim_head=64, heads=8))
        model.train()
        x = torch.randint(0, 256, (1, L + 1))
        ref = {"eager": median_ms(lambda: model(x).backward(), 1)}
        if not a.skip_compiled:
            torch._dynamo.reset()
            compiled = torch.compile(model)
            t0 = time.perf_counter()
            compiled(x).backward()
            ref["compile_s"] = time.perf_counter() - t0
            ref["compiled"] = median_ms(lambda: compiled(x).backward(), 1)
        for _, fused in ATTENTION:  # the reference has one path: both rows compare against it
            res[row_name(name, fused)] = ref
    if a.generate:
        name, dim, depth, msl = GENERATE
        torch.manual_seed(0)
        model = MEGABYTE(num_tokens=256, dim=dim, depth=depth, max_seq_len=msl).eval()
        t0 = time.perf_counter()
        with torch.no_grad():
            model.generate()
        res[name] = {"eager": (time.perf_counter() - t0) * 1e3}
    res["torch"] = torch.__version__
    json.dump(res, sys.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tests", default="build/default/tests/megabench_tests")
    ap.add_argument("--megabench", default="build/default/megabench", help="for the analytical FLOPs")
    ap.add_argument("--skip-compiled", action="store_true")
    ap.add_argument("--skip-perceiver", action="store_true")
    ap.add_argument("--generate", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the raw numbers as JSON too")
    ap.add_argument("--allocator", choices=["tcmalloc", "system"],
                    default="tcmalloc" if os.path.exists(TCMALLOC) else "system",
                    help="malloc of both sides (LD_PRELOAD); default tcmalloc where installed")
    ap.add_argument("--_python", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._python:
        return python_side(a)
    flops = train_flops(a)
    results = {}
    for t in [int(s) for s in a.threads.split(",")]:
        cpp = cpp_rows(a, t)
        args = [sys.executable, __file__, "--_python", str(t), "--repeats", str(a.repeats)]
        args += [f for f, on in (("--skip-compiled", a.skip_compiled), ("--skip-perceiver", a.skip_perceiver),
                                 ("--generate", a.generate)) if on]
        py = json.loads(subprocess.run(args, env=dict(os.environ, OMP_NUM_THREADS=str(t), **allocator_env(a.allocator)),
                                       capture_output=True, text=True, check=True).stdout)
        results[t] = {"megabench_ms": cpp, "reference_ms": py, "train_flops": flops}
    torch_version = next(iter(results.values()))["reference_ms"]["torch"]
    print(f"torch {torch_version}; allocator {a.allocator} on both sides; median of {a.repeats} steps after warm-up; "
          "ratios are reference time / megabench "
          "time; % peak: analytical training FLOPs / step time, against a 2048^3 fp32 matmul at the same threads\n")
    print("| measurement | threads | eager | compiled | megabench | vs eager | vs compiled | % peak: megabench | "
          "eager | compiled |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t, r in results.items():
        peak = 2 * 2048 ** 3 / (r["reference_ms"]["matmul_fp32_ms"] / 1e3)
        for name, ours in r["megabench_ms"].items():
            ref = r["reference_ms"][name]
            comp = ref.get("compiled")
            f = flops.get(name)

            def pct(ms):
                return f"{100 * f / (ms / 1e3) / peak:.0f}%" if f and ms else "-"

            cells = [name, str(t), f"{ref['eager']:.1f} ms", f"{comp:.1f} ms" if comp else "-", f"{ours:.1f} ms",
                     f"{ref['eager'] / ours:.2f}x", f"{comp / ours:.2f}x" if comp else "-", pct(ours),
                     pct(ref["eager"]), pct(comp)]
            print("| " + " | ".join(cells) + " |")
    if a.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
