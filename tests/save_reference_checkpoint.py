#!/usr/bin/env python3
"""Saves a MEGABYTE-pytorch model as a megabench checkpoint (safetensors).

    python3 tests/save_reference_checkpoint.py OUT.safetensors [--dim 64 32] [--depth 2 2] \
        [--max-seq-len 64 4] [--seed 0] [--rel-pos] [--pos-emb] [--flash-attn]

The file holds the model's state_dict under its own names and, in the header metadata,
{"model": "megabyte", "config": <JSON of the constructor arguments>}. Models from the reference
use its multi-stage context wiring, so the config says "context": "reference". Then:

    build/default/megabench logits --checkpoint OUT.safetensors --input BYTES --out LOGITS.safetensors
"""
import argparse
import json

import torch
from safetensors.torch import save_file
from MEGABYTE_pytorch import MEGABYTE


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--num-tokens", type=int, default=256)
    ap.add_argument("--dim", type=int, nargs="+", default=[64, 32])
    ap.add_argument("--depth", type=int, nargs="+", default=[2, 2])
    ap.add_argument("--max-seq-len", type=int, nargs="+", default=[64, 4])
    ap.add_argument("--dim-head", type=int, default=16)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--rel-pos", action="store_true")
    ap.add_argument("--pos-emb", action="store_true")
    ap.add_argument("--flash-attn", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    dim = tuple(a.dim) if len(a.dim) > 1 else a.dim[0]
    model = MEGABYTE(num_tokens=a.num_tokens, dim=dim, depth=tuple(a.depth),
                     max_seq_len=tuple(a.max_seq_len), dim_head=a.dim_head, heads=a.heads,
                     rel_pos=a.rel_pos, pos_emb=a.pos_emb, flash_attn=a.flash_attn)
    config = dict(num_tokens=a.num_tokens, dim=a.dim, depth=a.depth, max_seq_len=a.max_seq_len,
                  dim_head=a.dim_head, heads=a.heads, rel_pos=a.rel_pos, pos_emb=a.pos_emb,
                  flash_attn=a.flash_attn, context="reference")
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, a.out, metadata={"model": "megabyte", "config": json.dumps(config)})
    print(f"wrote {a.out}: {sum(t.numel() for t in tensors.values())} values, config {json.dumps(config)}")


if __name__ == "__main__":
    main()
