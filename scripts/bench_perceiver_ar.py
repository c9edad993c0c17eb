#!/usr/bin/env python3
"""Perceiver AR: lucidrains' perceiver-ar-pytorch 0.0.10 against megabench's C++ model, side by side
in one run, on the same number of CPU threads.

(a) one training step (forward + backward, batch 1, a full window), best of --steps;
(b) generation of --gen bytes from a prime of cross_attn_seq_len + 1 bytes. megabench decodes
    from its caches until the window is full (measured directly); after that the window slides and
    both models recompute it for every byte (the reference's semantics: the learned positions of
    every token shift), so those steps are costed at one measured uncached step each.
    The reference's generate() costs seconds per byte at this width, so running it for 4096 bytes
    takes hours; its time is the sum of its per-step times, each from a quadratic fit (in the
    window length) through --windows measured steps. The fit is checked against a directly
    measured generate() of --validate bytes in the middle of the range: the JSON gives the
    measured / predicted ratio.

The C++ side is the hidden Catch2 test "PerceiverAR benchmark" in the test binary.
Default config: the reference's train.py (dim 512, depth 8, max_seq_len 4096, prefix 3072), where
generation slides after 1024 bytes. --len 8192 --prefix 4096 leaves room for 4096 bytes.

  python3 scripts/bench_perceiver_ar.py --threads 1                      # train.py config
  python3 scripts/bench_perceiver_ar.py --threads 1 --no-train --len 8192 --prefix 4096
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
from perceiver_ar_pytorch import PerceiverAR
from perceiver_ar_pytorch.autoregressive_wrapper import AutoregressiveWrapper


def windows_of(args):
    """Window lengths at which one uncached step is timed: the growth range, and the full window."""
    c, L = args.prefix, args.len
    last = min(L, c + args.gen)
    ws = sorted({int(round(w)) for w in np.linspace(c + 1, last, args.windows)} | {L})
    return ws


def reference(args, windows):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = PerceiverAR(num_tokens=256, dim=args.dim, depth=args.depth, max_seq_len=args.len,
                      cross_attn_seq_len=args.prefix, dim_head=64, heads=8)
    model = AutoregressiveWrapper(net)
    x = torch.randint(0, 256, (1, args.len + 1))
    out = {"threads": torch.get_num_threads()}
    if args.train:
        model.train()
        best = float("inf")
        for i in range(args.steps + 1):
            model.zero_grad()
            t0 = time.perf_counter()
            model(x).backward()
            if i > 0:
                best = min(best, (time.perf_counter() - t0) * 1e3)
        model.zero_grad()
        out["train_step_ms"] = best
    steps = {}
    model.generate(x[:, :windows[0]], 1)  # warm-up
    for w in windows:
        t0 = time.perf_counter()
        model.generate(x[:, :w], 1)
        steps[str(w)] = (time.perf_counter() - t0) * 1e3
    out["uncached_step_ms"] = steps
    if args.validate > 0:
        c, L = args.prefix, args.len
        start = (c + 1 + min(L, c + args.gen)) // 2
        t0 = time.perf_counter()
        model.generate(x[:, :start], args.validate)
        out["validate"] = {"prime": start, "bytes": args.validate,
                           "measured_ms": (time.perf_counter() - t0) * 1e3}
    return out


def ours(args, windows):
    env = dict(os.environ, PAR_DIM=str(args.dim), PAR_DEPTH=str(args.depth), PAR_LEN=str(args.len),
               PAR_PREFIX=str(args.prefix), PAR_STEPS=str(args.steps), PAR_THREADS=str(args.threads),
               PAR_FLASH=str(int(args.flash)), PAR_TRAIN=str(int(args.train)),
               PAR_GEN=str(args.gen), PAR_WINDOWS=",".join(map(str, windows)),
               OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run([args.binary, "PerceiverAR benchmark"], env=env, check=True,
                         capture_output=True, text=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("{"))
    return json.loads(line)


class StepModel:
    """Per-step time of the reference as a function of the window length: a quadratic (linear
    below three points) through the steps measured while the window grows; the measured full
    window once it slides."""

    def __init__(self, step_ms, L):
        pts = sorted((int(k), v) for k, v in step_ms.items())
        grow = [(w, t) for w, t in pts if w < L] or pts
        w, t = np.array([p[0] for p in grow], float), np.array([p[1] for p in grow], float)
        self.coef = np.polyfit(w, t, min(2, len(grow) - 1))
        self.L, self.full = L, dict(pts).get(L, float(np.polyval(self.coef, L)))

    def __call__(self, w):
        return self.full if w >= self.L else float(np.polyval(self.coef, w))

    def total(self, first, n):
        return sum(self(w) for w in range(first, first + n))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--depth", type=int, default=8)
    p.add_argument("--len", type=int, default=4096, help="max_seq_len")
    p.add_argument("--prefix", type=int, default=3072, help="cross_attn_seq_len")
    p.add_argument("--steps", type=int, default=3, help="training steps timed (best of)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--gen", type=int, default=4096, help="bytes to generate")
    p.add_argument("--windows", type=int, default=5, help="window lengths timed for the fit")
    p.add_argument("--validate", type=int, default=8,
                   help="bytes of reference generate() measured directly to check the fit (0: skip)")
    p.add_argument("--no-train", dest="train", action="store_false")
    p.add_argument("--no-flash", dest="flash", action="store_false",
                   help="megabench with the reference's explicit attention (flash_attn false)")
    p.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                    "default", "tests", "megabench_tests"))
    args = p.parse_args()
    windows = windows_of(args)
    cpp = ours(args, windows)
    ref = reference(args, windows)
    c, L = args.prefix, args.len
    model = StepModel(ref["uncached_step_ms"], L)
    grow = cpp["growth_bytes"]
    slide = args.gen - grow
    ref_gen = model.total(c + 1, args.gen)
    cpp_gen = cpp["cached_growth_ms"] + slide * cpp["uncached_step_ms"][str(L)]
    result = {"config": vars(args), "reference": ref, "megabench": cpp}
    if args.train:
        result["train_step_speedup"] = ref["train_step_ms"] / cpp["train_step_ms"]
    result["uncached_step_speedup"] = {w: ref["uncached_step_ms"][w] / cpp["uncached_step_ms"][w]
                                       for w in ref["uncached_step_ms"]}
    if "validate" in ref:
        v = ref["validate"]
        v["predicted_ms"] = model.total(v["prime"], v["bytes"])
        v["measured_over_predicted"] = v["measured_ms"] / v["predicted_ms"]
    result[f"generate_{args.gen}_bytes"] = {
        "cached_bytes": grow, "sliding_bytes": slide,
        "reference_ms": ref_gen, "reference_is": "sum of fitted per-step times",
        "megabench_ms": cpp_gen,
        "megabench_is": "measured" if slide == 0 else "cached part measured + sliding steps x "
                                                      "measured uncached step",
        "speedup": ref_gen / cpp_gen,
        "speedup_cached_part": model.total(c + 1, grow) / cpp["cached_growth_ms"],
    }
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
