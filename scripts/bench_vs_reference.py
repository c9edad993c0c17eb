#!/usr/bin/env python3
"""Training steps side by side: megabench (C++) against the Python references (megabyte-pytorch
0.3.6, perceiver-ar-pytorch 0.0.10), eager and torch.compile'd, in one run, on the same machine,
at each thread count. Prints the timings, the ratios and each side's fraction of the machine's
fp32 matmul peak (a Markdown table; --json for the raw numbers).

    scripts/setup.sh --reference
    python3 scripts/bench_vs_reference.py [--threads 1,2] [--repeats 3] [--rounds 3] [--tests build/default/tests/megabench_tests]

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

Rounds (--rounds R, default 3): a shared machine's speed drifts over minutes, so the sides are
interleaved rather than run one after the other. Each round times every row on both sides back to
back (megabench, then a fresh Python process for the eager and compiled reference of that row; the
order flips each round), so that each round's ratio compares timings taken within a minute or two.
A cell gives the median over rounds of each side's per-round median, and each ratio the median of
the per-round ratios with their range across rounds ("1.21x (1.10-1.30)"): a range that straddles
1.00x means this machine cannot tell the two apart.

"% peak" is the step's analytical training FLOPs (`megabench flops`, 3x the forward) over its time,
against the fastest 2048^3 fp32 matmul timed in the reference's processes at the same thread
count: it bounds what any implementation of the same model can gain (a step cannot beat 100%).
"ceiling vs eager" is that bound as a ratio: the eager step's time over the time of the step's
FLOPs at the peak, the most any implementation could be faster than eager on this machine.

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


def cpp_env(a, threads):
    return {"MEGABENCH_THREADS": str(threads), "MEGABENCH_REPEATS": str(a.repeats), "OMP_NUM_THREADS": str(threads),
            **allocator_env(a.allocator)}


def cpp_train_ms(a, threads, key):
    """megabench's median training step (ms) of the row `key` at `threads`, in a fresh process."""
    env = cpp_env(a, threads)
    for name, dim, depth, msl in MEGABYTE_ROWS:
        for _, fused in ATTENTION:
            if row_name(name, fused) != key:
                continue
            out = run_cpp(a.tests, "bench: MEGABYTE training step",
                          dict(env, MEGABENCH_BENCH_CONFIG=cfg_env(dim, depth, msl),
                               MEGABENCH_BENCH_ATTENTION="sdpa" if fused else "explicit"))
            return float(re.search(r"BENCH train_step_ms ([0-9.eE+-]+)", out).group(1))
    name, dim, depth, L, C = PERCEIVER
    fused = key == row_name(name, True)
    out = run_cpp(a.tests, "PerceiverAR benchmark",
                  dict(env, PAR_DIM=str(dim), PAR_DEPTH=str(depth), PAR_LEN=str(L), PAR_PREFIX=str(C),
                       PAR_STEPS=str(a.repeats), PAR_THREADS=str(threads), PAR_FLASH=str(int(fused)),
                       PAR_TRAIN="1", PAR_GEN="1", PAR_WINDOWS=str(C + 1)))
    return json.loads(next(l for l in out.splitlines() if l.startswith("{")))["train_step_median_ms"]


def cpp_generate_ms(a, threads):
    name, dim, depth, msl = GENERATE
    out = run_cpp(a.tests, "bench: MEGABYTE generation",
                  dict(cpp_env(a, threads), MEGABENCH_BENCH_CONFIG=cfg_env(dim, depth, msl)))
    return 1e3 * float(re.search(r"BENCH generate_s ([0-9.eE+-]+)", out).group(1))


def row_groups(a):
    """What one Python process times, with the megabench rows it is compared with: each MEGABYTE row
    alone; Perceiver AR's one reference path with both of megabench's."""
    groups = [(row_name(name, fused), [row_name(name, fused)]) for name, *_ in MEGABYTE_ROWS for _, fused in ATTENTION]
    if not a.skip_perceiver:
        name = PERCEIVER[0]
        groups.append((name, [row_name(name, fused) for _, fused in ATTENTION]))
    return groups


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
    """Runs in a child process (--_python THREADS --_row KEY): the reference, eager and compiled, of one
    row group (or the generation, KEY "generate"), and this process's 2048^3 fp32 matmul."""
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

    def eager_and_compiled(model, step):
        res = {"eager": median_ms(lambda: step(model), 1)}
        if not a.skip_compiled:
            torch._dynamo.reset()
            compiled = torch.compile(model)
            t0 = time.perf_counter()
            step(compiled)
            res["compile_s"] = time.perf_counter() - t0
            res["compiled"] = median_ms(lambda: step(compiled), 1)
        return res

    a_ = torch.randn(2048, 2048)
    b_ = torch.randn(2048, 2048)
    res = {"matmul_fp32_ms": median_ms(lambda: a_ @ b_, 2), "torch": torch.__version__}
    torch.manual_seed(0)
    for name, dim, depth, msl in MEGABYTE_ROWS:
        for _, fused in ATTENTION:
            if row_name(name, fused) == a._row:
                model = MEGABYTE(num_tokens=256, dim=dim, depth=depth, max_seq_len=msl, flash_attn=fused)
                x = torch.randint(0, 256, (1, int(torch.tensor(msl).prod())))
                res.update(eager_and_compiled(model, lambda m: m(x, return_loss=True).backward()))
    name, dim, depth, L, C = PERCEIVER
    if a._row == name:
        model = AutoregressiveWrapper(PerceiverAR(num_tokens=256, dim=dim, depth=depth, max_seq_len=L,
                                                  cross_attn_seq_len=C, dim_head=64, heads=8))
        model.train()
        x = torch.randint(0, 256, (1, L + 1))
        res.update(eager_and_compiled(model, lambda m: m(x).backward()))
    if a._row == "generate":
        name, dim, depth, msl = GENERATE
        model = MEGABYTE(num_tokens=256, dim=dim, depth=depth, max_seq_len=msl).eval()
        t0 = time.perf_counter()
        with torch.no_grad():
            model.generate()
        res["eager"] = (time.perf_counter() - t0) * 1e3
    if "eager" not in res:
        sys.exit(f"bench_vs_reference: unknown row {a._row!r}")
    json.dump(res, sys.stdout)


def run_python(a, threads, key):
    args = [sys.executable, __file__, "--_python", str(threads), "--_row", key, "--repeats", str(a.repeats)]
    args += ["--skip-compiled"] if a.skip_compiled else []
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), **allocator_env(a.allocator))
    return json.loads(subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout)


def median(xs):
    xs = sorted(xs)
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def measure(a, threads):
    """Every row on both sides, --rounds times, the two sides back to back per row (order flipped
    each round). Returns {row: {"megabench": [ms per round], "eager": [...], "compiled": [...]}}, the
    fastest matmul of the reference's processes and their torch version."""
    rows, matmul_ms, version = {}, [], None
    for r in range(a.rounds):
        for py_key, keys in row_groups(a):
            def ours():
                for key in keys:
                    rows.setdefault(key, {}).setdefault("megabench", []).append(cpp_train_ms(a, threads, key))

            def theirs():
                ref = run_python(a, threads, py_key)
                matmul_ms.append(ref["matmul_fp32_ms"])
                for key in keys:
                    for side in ("eager", "compiled"):
                        if side in ref:
                            rows.setdefault(key, {}).setdefault(side, []).append(ref[side])
                return ref["torch"]

            if r % 2 == 0:
                ours()
                version = theirs()
            else:
                version = theirs()
                ours()
            print(f"[bench_vs_reference] threads {threads}, round {r + 1}/{a.rounds}: {py_key}", file=sys.stderr)
    if a.generate:
        name = GENERATE[0]
        rows[name] = {"megabench": [cpp_generate_ms(a, threads)], "eager": [run_python(a, threads, "generate")["eager"]]}
    return rows, min(matmul_ms), version


def ratio_cell(theirs, ours):
    """The median of the per-round ratios, with their range when there are several."""
    rs = [t / o for t, o in zip(theirs, ours)]
    if not rs:
        return "-"
    cell = f"{median(rs):.2f}x"
    return cell + (f" ({min(rs):.2f}-{max(rs):.2f})" if len(rs) > 1 else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--repeats", type=int, default=3, help="timed steps per process, after one warm-up")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of both sides per row")
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
    ap.add_argument("--_row", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._python:
        return python_side(a)
    if a.rounds < 1 or a.repeats < 1:
        sys.exit("bench_vs_reference: --rounds and --repeats must be at least 1")
    flops = train_flops(a)
    results, torch_version = {}, None
    for t in [int(s) for s in a.threads.split(",")]:
        rows, matmul_ms, torch_version = measure(a, t)
        results[t] = {"rows_ms": rows, "matmul_fp32_ms": matmul_ms, "train_flops": flops}
    print(f"torch {torch_version}; allocator {a.allocator} on both sides; {a.rounds} interleaved rounds of "
          f"{a.repeats} timed step{'s' if a.repeats != 1 else ''} after a warm-up per side and row; times: median over rounds of each round's "
          "median; ratios: reference time / megabench time, the median of the per-round ratios (their range); "
          "% peak: analytical training FLOPs / step time, against the fastest 2048^3 fp32 matmul at the same "
          "threads\n")
    print("| measurement | threads | eager | compiled | megabench | vs eager | vs compiled | ceiling vs eager | "
          "% peak: megabench | eager | compiled |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t, r in results.items():
        peak = 2 * 2048 ** 3 / (r["matmul_fp32_ms"] / 1e3)
        for name, sides in r["rows_ms"].items():
            ours, eager, comp = sides["megabench"], sides.get("eager", []), sides.get("compiled", [])
            f = flops.get(name)

            def ms(xs):
                return f"{median(xs):.1f} ms" if xs else "-"

            def pct(xs):
                return f"{100 * f / (median(xs) / 1e3) / peak:.0f}%" if f and xs else "-"

            # What a step at 100% of the matmul peak would gain over eager: no implementation can pass it.
            ceiling = f"{median(eager) / 1e3 / (f / peak):.2f}x" if f and eager else "-"
            cells = [name, str(t), ms(eager), ms(comp), ms(ours), ratio_cell(eager, ours), ratio_cell(comp, ours),
                     ceiling, pct(ours), pct(eager), pct(comp)]
            print("| " + " | ".join(cells) + " |")
    if a.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
