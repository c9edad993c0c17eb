#!/usr/bin/env python3
"""Perceiver AR: lucidrains' perceiver-ar-pytorch 0.0.10 against megabench's C++ model, side by side
in one run, on the same number of CPU threads.

(a) one training step (forward + backward, batch 1, a full window), best of --steps;
(b) generation: the growth phase (prime of cross_attn_seq_len + 1 bytes until the window is full,
    where the C++ model decodes from its caches) and one uncached step at three window lengths
    (what every step costs once the window slides: there both recompute the window). The
    reference's growth phase is estimated by integrating its measured step times (linear between
    the three lengths), since running it byte by byte at the full config takes too long; the same
    model gives the estimate for a 4096-byte generation.

The C++ side is the hidden Catch2 test "PerceiverAR benchmark" in the test binary.
Default config: the reference's train.py (dim 512, depth 8, max_seq_len 4096, prefix 3072).

  python3 scripts/bench_perceiver_ar.py [--dim 512 --depth 8 --len 4096 --prefix 3072]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch
from perceiver_ar_pytorch import PerceiverAR
from perceiver_ar_pytorch.autoregressive_wrapper import AutoregressiveWrapper


def reference(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = PerceiverAR(num_tokens=256, dim=args.dim, depth=args.depth, max_seq_len=args.len,
                      cross_attn_seq_len=args.prefix, dim_head=64, heads=8)
    model = AutoregressiveWrapper(net)
    x = torch.randint(0, 256, (1, args.len + 1))
    model.train()
    best = float("inf")
    for i in range(args.steps + 1):
        model.zero_grad()
        t0 = time.perf_counter()
        model(x).backward()
        if i > 0:
            best = min(best, (time.perf_counter() - t0) * 1e3)
    model.zero_grad()
    steps = {}
    c, L = args.prefix, args.len
    for w in (c + 1, (c + 1 + L) // 2, L):
        model.generate(x[:, :w], 1)  # warm-up
        t0 = time.perf_counter()
        model.generate(x[:, :w], 1)
        steps[str(w)] = (time.perf_counter() - t0) * 1e3
    return {"train_step_ms": best, "uncached_step_ms": steps, "threads": torch.get_num_threads()}


def ours(args):
    env = dict(os.environ, PAR_DIM=str(args.dim), PAR_DEPTH=str(args.depth), PAR_LEN=str(args.len),
               PAR_PREFIX=str(args.prefix), PAR_STEPS=str(args.steps), PAR_THREADS=str(args.threads),
               OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run([args.binary, "PerceiverAR benchmark"], env=env, check=True,
                         capture_output=True, text=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("{"))
    return json.loads(line)


def growth_estimate(step_ms, c, L):
    """Sum of step times for windows c+1 .. L-1, linear between the measured lengths."""
    pts = sorted((int(k), v) for k, v in step_ms.items())
    total = 0.0
    for w in range(c + 1, L):
        for (w0, t0), (w1, t1) in zip(pts, pts[1:]):
            if w0 <= w <= w1:
                total += t0 + (t1 - t0) * (w - w0) / max(w1 - w0, 1)
                break
    return total


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--depth", type=int, default=8)
    p.add_argument("--len", type=int, default=4096)
    p.add_argument("--prefix", type=int, default=3072)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--gen", type=int, default=4096, help="bytes for the generation estimate")
    p.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                    "default", "tests", "megabench_tests"))
    args = p.parse_args()
    ref = reference(args)
    cpp = ours(args)
    c, L = args.prefix, args.len
    grow = L - c - 1
    ref_grow = growth_estimate(ref["uncached_step_ms"], c, L)
    cpp_grow = cpp["cached_growth_ms"]
    slide = max(args.gen - grow, 0)
    ref_gen = ref_grow + slide * ref["uncached_step_ms"][str(L)]
    cpp_gen = cpp_grow + slide * cpp["uncached_step_ms"][str(L)]
    result = {
        "config": vars(args),
        "reference": ref,
        "cpp": cpp,
        "train_step_speedup": ref["train_step_ms"] / cpp["train_step_ms"],
        "uncached_step_speedup": {w: ref["uncached_step_ms"][w] / cpp["uncached_step_ms"][w]
                                  for w in ref["uncached_step_ms"]},
        "growth_phase_bytes": grow,
        "reference_growth_ms_estimated": ref_grow,
        "cpp_cached_growth_ms_measured": cpp_grow,
        "growth_phase_speedup": ref_grow / cpp_grow,
        f"generate_{args.gen}_bytes_ms": {"reference_estimated": ref_gen, "cpp_estimated": cpp_gen,
                                          "speedup": ref_gen / cpp_gen},
    }
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
