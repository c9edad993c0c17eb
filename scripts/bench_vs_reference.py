#!/usr/bin/env python3
"""MEGABYTE side by side: megabench (C++) against the Python reference (megabyte-pytorch 0.3.6),
in one run, on the same machine and threads. Prints the timings and the ratios.

    scripts/setup.sh --reference
    python3 scripts/bench_vs_reference.py [--threads 2] [--repeats 3] [--tests build/default/tests/megabench_tests]

Training step (forward + backward, batch 1): the reference README's config (dim (512, 256),
depth (6, 4), max_seq_len (1024, 4)) and a small 3-stage config. Generation: the reference's
generate() (reruns the whole sequence for every byte) against megabench's cached generation,
for a full context of 4096 bytes at a smaller width (the reference needs one full forward per
byte, hours at the README's width on 2 cores).
"""
import argparse
import os
import re
import subprocess
import time

import torch
from MEGABYTE_pytorch import MEGABYTE

TRAIN = [("readme", (512, 256), (6, 4), (1024, 4)), ("three_stage", (256, 128, 64), (4, 2, 2), (64, 8, 4))]
GENERATE = ("gen_4096", (128, 64), (2, 2), (1024, 4))


def cfg_env(dim, depth, msl):
    return ";".join(",".join(str(v) for v in t) for t in (dim, depth, msl))


def cpp(tests, case, env):
    out = subprocess.run([tests, case], env=dict(os.environ, **env), capture_output=True, text=True, check=True).stdout
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"BENCH (\w+) ([0-9.eE+-]+)", out)}


def py_train(dim, depth, msl, repeats):
    torch.manual_seed(0)
    model = MEGABYTE(num_tokens=256, dim=dim, depth=depth, max_seq_len=msl)
    x = torch.randint(0, 256, (1, int(torch.tensor(msl).prod())))
    ts = []
    for i in range(1 + repeats):
        t0 = time.perf_counter()
        model(x, return_loss=True).backward()
        if i:
            ts.append((time.perf_counter() - t0) * 1000)
    return sorted(ts)[len(ts) // 2]


def py_generate(dim, depth, msl):
    torch.manual_seed(0)
    model = MEGABYTE(num_tokens=256, dim=dim, depth=depth, max_seq_len=msl).eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        model.generate()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tests", default="build/default/tests/megabench_tests")
    ap.add_argument("--skip-generate", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    env = {"MEGABENCH_THREADS": str(a.threads), "MEGABENCH_REPEATS": str(a.repeats)}
    rows = []
    for name, dim, depth, msl in TRAIN:
        e = dict(env, MEGABENCH_BENCH_CONFIG=cfg_env(dim, depth, msl))
        c = cpp(a.tests, "bench: MEGABYTE training step", e)["train_step_ms"]
        p = py_train(dim, depth, msl, a.repeats)
        rows.append((f"train step {name}", p, c, "ms"))
    if not a.skip_generate:
        name, dim, depth, msl = GENERATE
        e = dict(env, MEGABENCH_BENCH_CONFIG=cfg_env(dim, depth, msl))
        c = cpp(a.tests, "bench: MEGABYTE generation", e)["generate_s"]
        p = py_generate(dim, depth, msl)
        rows.append((f"generate 4096 bytes dim {dim}", p, c, "s"))
    print(f"threads {a.threads}, torch {torch.__version__}")
    print(f"{'measurement':40s} {'reference':>12s} {'megabench':>12s} {'speedup':>8s}")
    for what, p, c, unit in rows:
        print(f"{what:40s} {p:10.1f}{unit:>2s} {c:10.1f}{unit:>2s} {p / c:7.2f}x")


if __name__ == "__main__":
    main()
