#!/usr/bin/env python3
"""Writes the reproduction campaign's compute-matched bpb experiments (issue: campaign 2, part 1).

    scripts/campaign_plan.py lr                      # experiments/campaign_lr.json
    scripts/campaign_plan.py lr_high                 # experiments/campaign_lr_high.json (one lr
                                                     # above the grid, for bests at its edge)
    scripts/campaign_plan.py lr_check                # experiments/campaign_lr_check.json (the
                                                     # step above the grid against the grid's
                                                     # best, 3 seeds)
    scripts/campaign_plan.py budgets --lr-from DIR [--lr-check]
                                                     # experiments/campaign_bpb_{text,code}.json
    scripts/campaign_plan.py ngram                   # experiments/campaign_ngram.json
    scripts/campaign_plan.py tables --lr-from DIR    # experiments/campaign_tables.json (Tables
                                                     # 10-13 at the middle budget)

One rule sizes every model: at a training budget C (FLOPs, counted by `megabench flops`), each
family takes the size whose compute-matched run sees about 20 bytes per non-embedding parameter
(bytes = steps x batch x window, steps = C / training FLOPs per step). Shapes follow fixed ratios:

  transformer   width d = 32 L, L layers, heads of 32
  megabyte      the paper's ratios: patch 8, global width 2d over local width d, L layers each,
                learned positions (pos_emb), heads of 32
  megabyte_paper  the same shapes with "formulation": "paper" (Eq. 1-6)
  perceiver_ar  width d = 32 L, L latent layers, 1/8 of the window as latents (the paper's 1024 of
                8192)

Threads: the two smaller budgets train at 1 thread; the 1e13 text and code folders run side by
side, one process per core, and the 1e12 ones (a few minutes each) one after the other, since the
smallest models are bound by memory traffic that a second process on the other core shares. The
top budget trains at 2 threads. Small models use a core better alone than split over two
(experiments/campaign_throughput.json), and bpb does not depend on the thread count.

Every model sees the same bytes per step (8 windows of 2048 bytes) and the same recipe: AdamW
(0.9, 0.98), clip 1, weight decay 0.1, warmup 10% of the steps then linear decay to 0, init
N(0, 0.006), dropout 0 (Appendix A's runs are far larger: at this scale no model overfits one
pass). The learning rate comes from the sweep at the smallest budget (`lr`, one seed), carried up
by `budgets --lr-from results/campaign_lr`; its choice is written into each experiment's
description. When a family's best sits at the grid's top, the sweep continues one step (`lr_high`)
and that step is carried only if it wins over seeds: `lr_check` runs both rates with 3 seeds, and
`--lr-check` carries the step only when the harness's Welch test
(`megabench report --claims`, the checks `lr_check_*` of results/claims.json) puts its mean bpb
below the grid best's with a 95% CI that excludes 0. A one-seed gain smaller than the seed spread
does not move the rate.
"""
import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "build" / "default" / "megabench"
WINDOW, BATCH, BYTES_PER_PARAM = 2048, 8, 20
BUDGETS = [1e12, 1e13, 1e14]
LRS = [5e-4, 1.5e-3, 4.5e-3, 1.35e-2]
LRS_HIGH = [4.05e-2]  # the next step of the grid, run after the sweep put bests at its top
HIGH_FAMILIES = ["megabyte", "megabyte_paper", "perceiver_ar"]  # their bests sat at LRS[-1]
FAMILIES = ["transformer", "megabyte", "megabyte_paper", "perceiver_ar"]
RECIPE = {"betas": [0.9, 0.98], "grad_clip": 1.0, "weight_decay": 0.1, "schedule": "linear",
          "init_std": 0.006, "batch": BATCH, "eval_bytes": 262144, "checkpoint_minutes": 10}


def config(family, L):
    d = 32 * L
    if family == "transformer":
        return "transformer", {"dim": d, "depth": L, "heads": L, "dim_head": 32,
                               "seq_len": WINDOW, "attention": "sdpa"}
    if family == "megabyte":
        return "megabyte", {"dim": [2 * d, d], "depth": [L, L], "heads": L, "dim_head": 32,
                            "seq_len": WINDOW, "patch": 8, "pos_emb": True, "attention": "sdpa"}
    if family == "megabyte_paper":
        return "megabyte", {"dim": [2 * d, d], "depth": [L, L], "dim_head": 32, "seq_len": WINDOW,
                            "patch": 8, "formulation": "paper", "attention": "sdpa"}
    if family == "perceiver_ar":
        return "perceiver_ar", {"dim": d, "depth": L, "heads": L, "dim_head": 32,
                                "seq_len": WINDOW, "num_latents": WINDOW // 8}
    raise ValueError(family)


def counts(model, cfg):
    out = subprocess.run([str(BINARY), "flops", model, "--config", json.dumps(cfg), "--json"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"campaign_plan: megabench flops {model} failed: {out.stdout}{out.stderr}")
    row = json.loads(out.stdout)[0]
    predicted = cfg.get("num_latents", WINDOW)  # bytes a window predicts (Perceiver AR: latents)
    return row["flops_train_per_byte"] * BATCH * predicted, row["params_non_embedding"]


def size(family, budget):
    """The size whose compute-matched run sees closest to 20 bytes per parameter (log scale)."""
    best = None
    for L in range(1, 13):
        model, cfg = config(family, L)
        per_step, params = counts(model, cfg)
        steps = int(budget // per_step)
        if steps < 20:
            break
        ratio = steps * BATCH * WINDOW / params
        score = abs(math.log(ratio / BYTES_PER_PARAM))
        if best is None or score < best["score"]:
            best = {"family": family, "L": L, "model": model, "config": cfg, "steps": steps,
                    "params": params, "bytes_per_param": ratio, "score": score}
    if best is None:
        sys.exit(f"campaign_plan: {family} gets under 20 steps at {budget:g} FLOPs")
    return best


def entry(s, lr, tag=""):
    c = dict(s["config"])
    return {"name": s["model"], "label": f"{s['family']}{tag}", "config": c,
            "train": {"lr": lr, "warmup_steps": max(1, s["steps"] // 10)}}


def threads_for(budget):
    """1 below the top budget (text and code then run side by side, a core each), else 2."""
    return 1 if budget < BUDGETS[-1] else 2


def experiment(name, description, models, budget, seeds, data, threads=2):
    return {"name": name, "description": description, "models": models,
            "sweep": {"grid": {"seed": seeds}},
            "metrics": ["params", "flops", "bpb"], "device": "cpu", "dtype": "float32",
            "threads": threads, "data": data,
            "train": dict(RECIPE, flop_budget=budget),
            "report": {"columns": ["params_non_embedding", "train_steps", "train_flops",
                                   "train_flops_utilization", "train_bpb_final", "bpb"]}}


def write(path, doc):
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


def check_verdicts():
    """The checks lr_check_<family> of results/claims.json, judged by the harness (Welch's CI)."""
    out = subprocess.run([str(BINARY), "report", "--claims", "results/claims.json", "--json"],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"campaign_plan: megabench report --claims failed: {out.stderr}")
    return {v["id"]: v for v in json.loads(out.stdout)}


def best_lrs(results_dirs, check=False):
    """family -> (lr, bpb at seed 0, why): the sweep's best; with `check`, a best above the grid
    is carried only when its 3-seed check holds, else the grid's best is."""
    best, grid = {}, {}
    lines = [l for d in results_dirs for l in (Path(d) / "results.jsonl").read_text().splitlines()]
    for line in lines:
        r = json.loads(line)
        if r.get("type") != "point" or r.get("status") != "ok" or r["metrics"].get("bpb") is None:
            continue
        family, bpb = r["label"].split("@")[0], r["metrics"]["bpb"]
        lr = r["config"]["run"]["train"]["lr"]
        for table in (best, grid) if lr in LRS else (best,):
            if family not in table or bpb < table[family][1]:
                table[family] = (lr, bpb, "best of the sweep")
    missing = [f for f in FAMILIES if f not in grid]
    if missing:
        sys.exit(f"campaign_plan: the LR sweep in {results_dirs} has no result for {missing}")
    verdicts = check_verdicts() if check else {}
    for family, (lr, bpb, _) in best.items():
        if lr in LRS:
            continue
        v = verdicts.get(f"lr_check_{family}")
        if v is None:
            best[family] = grid[family][:2] + (f"{lr:g} above the grid unchecked",)
        elif v["verdict"] == "holds":
            best[family] = (lr, bpb, f"{lr:g} carried: lower by {v['ours']} over 3 seeds")
        else:
            best[family] = grid[family][:2] + (
                f"{lr:g} not carried: {v['verdict']}, {v['ours']} over 3 seeds",)
    return best


def tables(lrs, data):
    """Tables 10-13 at the middle budget: MEGABYTE sized by the rule (the control), its Table 10
    variants, patch sizes 4-32 (Table 12) and global:local splits (Table 13), 3 seeds, every eval
    mode (Table 11) and the loss by position."""
    budget = BUDGETS[1]
    s = size("megabyte", budget)
    lr = lrs["megabyte"][0]
    d = s["config"]["dim"][1]
    variants = {
        "full": {},
        "no_local": {"local": False, "depth": [s["L"], 0]},
        "no_global": {"global": False},
        "cross_patch": {"cross_patch_attention": 4, "rel_pos": True},
        "conv_encoder": {"patch_encoder": "conv"},
        "patch4": {"patch": 4}, "patch16": {"patch": 16}, "patch32": {"patch": 32},
        "split_global_heavy": {"dim": [3 * d, d // 2]},
        "split_local_heavy": {"dim": [d, d]},
    }
    models = []
    for label, change in variants.items():
        cfg = dict(s["config"], **change)
        per_step, _ = counts("megabyte", cfg)
        steps = int(budget // per_step)
        models.append({"name": "megabyte", "label": label, "config": cfg,
                       "train": {"lr": lr, "warmup_steps": max(1, steps // 10)}})
    doc = experiment(
        "campaign_tables",
        f"Tables 10-13 at {budget:g} training FLOPs on the text corpus, 3 seeds, the full model "
        f"(MEGABYTE L={s['L']}, {s['params']} params, lr {lr:g} from the sweep) as the control "
        f"in the same run: without the local model, without the global model, cross-patch "
        f"attention (r = 4, rotary), the convolutional patch encoder (Table 10); patch sizes "
        f"4, 8 (the control), 16, 32 (Table 12); the global:local widths 3d:d/2 and d:d "
        f"against the control's 2d:d (Table 13). Every point is scored in every eval mode with "
        f"its cost (Table 11) and records the loss by position in the patch and the context.",
        models, budget, [0, 1, 2], data)
    doc["eval"] = {"mode": ["basic", "sliding", "strided", "sliding+strided"],
                   "loss_by_position": True}
    write(ROOT / "experiments" / "campaign_tables.json", doc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["lr", "lr_high", "lr_check", "budgets", "ngram", "tables"])
    ap.add_argument("--lr-from", action="append",
                    help="results folder of the LR sweep (budgets, tables); repeatable")
    ap.add_argument("--lr-check", action="store_true",
                    help="carry a best above the grid only where its 3-seed check "
                         "(lr_check_* in results/claims.json) holds")
    a = ap.parse_args()
    text = {"source": "dir", "path": "corpora/text"}
    code = {"source": "dir", "path": "corpora/code"}
    if a.what == "ngram":
        doc = {"name": "campaign_ngram",
               "description": "Reference rows: byte n-grams (interpolated modified Kneser-Ney, "
                              "orders 1-6) counted on each corpus's training documents and scored "
                              "on its held-out documents, as every campaign model is.",
               "models": [{"name": "ngram", "config": {"seq_len": WINDOW}}],
               "sweep": {"grid": {"ngram.order": [1, 2, 3, 4, 5, 6],
                                  "data.path": ["corpora/text", "corpora/code"]}},
               "metrics": ["bpb"], "device": "cpu", "threads": 2,
               "data": {"source": "dir", "path": "corpora/text"},
               "train": {"eval_bytes": RECIPE["eval_bytes"]}}
        return write(ROOT / "experiments" / "campaign_ngram.json", doc)
    if a.what == "lr":
        models = []
        for f in FAMILIES:
            s = size(f, BUDGETS[0])
            for lr in LRS:
                models.append(entry(s, lr, f"@lr={lr:g}"))
        doc = experiment(
            "campaign_lr",
            f"The learning-rate sweep of the compute-matched bpb curve: every family at the "
            f"smallest budget ({BUDGETS[0]:g} training FLOPs), sized by the campaign's rule "
            f"(scripts/campaign_plan.py), at lr {LRS}, one seed, on the text corpus. The best lr "
            f"of each family is carried up to every budget and both corpora.",
            models, BUDGETS[0], [0], text)
        return write(ROOT / "experiments" / "campaign_lr.json", doc)
    if a.what == "lr_high":
        models = [entry(size(f, BUDGETS[0]), lr, f"@lr={lr:g}") for f in FAMILIES for lr in LRS_HIGH]
        doc = experiment(
            "campaign_lr_high",
            f"The learning-rate sweep continued above its grid: every family at {BUDGETS[0]:g} "
            f"training FLOPs at lr {LRS_HIGH}, as campaign_lr (same sizes, seed and corpus), "
            f"because the sweep put several bests at its top value {LRS[-1]:g}. Read with "
            f"campaign_lr: `campaign_plan.py budgets --lr-from results/campaign_lr --lr-from "
            f"results/campaign_lr_high`.",
            models, BUDGETS[0], [0], text)
        return write(ROOT / "experiments" / "campaign_lr_high.json", doc)
    if a.what == "lr_check":
        models = [entry(size(f, BUDGETS[0]), lr, f"@lr={lr:g}") for f in HIGH_FAMILIES
                  for lr in (LRS[-1], LRS_HIGH[0])]
        doc = experiment(
            "campaign_lr_check",
            f"Is the step above the LR grid a real gain? The families whose sweep best sat at the "
            f"grid's top ({', '.join(HIGH_FAMILIES)}), at {BUDGETS[0]:g} training FLOPs on the "
            f"text corpus, at lr {LRS[-1]:g} (the grid's top) and {LRS_HIGH[0]:g} (campaign_lr_high), "
            f"3 seeds each, sizes as campaign_lr. The checks lr_check_* of results/claims.json "
            f"compare the means (Welch); `campaign_plan.py budgets --lr-check` carries "
            f"{LRS_HIGH[0]:g} only where the check holds.",
            models, BUDGETS[0], [0, 1, 2], text)
        return write(ROOT / "experiments" / "campaign_lr_check.json", doc)
    if not a.lr_from:
        sys.exit(f"campaign_plan: {a.what} needs --lr-from (the LR sweep's results folder)")
    lrs = best_lrs(a.lr_from, a.lr_check)
    if a.what == "tables":
        return tables(lrs, text)
    chosen = ", ".join(f"{f} {lrs[f][0]:g} ({lrs[f][1]:.3f} bpb; {lrs[f][2]})" for f in FAMILIES)
    for corpus, data in (("text", text), ("code", code)):
        for budget in BUDGETS:
            seeds = [0, 1] if budget == BUDGETS[-1] else [0, 1, 2]
            sized = [size(f, budget) for f in FAMILIES]
            models = [entry(s, lrs[s["family"]][0]) for s in sized]
            shapes = "; ".join(f"{s['family']} L={s['L']} ({s['params']} params, {s['steps']} "
                               f"steps, {s['bytes_per_param']:.1f} bytes/param)" for s in sized)
            doc = experiment(
                f"campaign_bpb_{corpus}_{budget:.0e}".replace("+", ""),
                f"Compute-matched bpb at {budget:g} training FLOPs on the {corpus} corpus "
                f"(corpora/MANIFEST.json), seeds {seeds}. Sizes by the campaign's rule: {shapes}. "
                f"Learning rates from the sweep at {BUDGETS[0]:g}: {chosen}.",
                models, budget, seeds, data, threads_for(budget))
            write(ROOT / "experiments" / f"{doc['name']}.json", doc)


if __name__ == "__main__":
    main()
