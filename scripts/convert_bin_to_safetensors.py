#!/usr/bin/env python3
"""Convert a Hugging Face checkpoint's pytorch_model.bin (single or sharded) to safetensors.

zo2 reads pytorch_model.bin itself (plain dicts through LibTorch, collections.OrderedDict files through
its own reader, see docs/file-formats.md). It names this script when a .bin holds something neither can
read: a pickle outside the state-dict subset (other globals or opcodes), compressed zip entries, or the
pre-1.6 non-zip torch.save format.

  python3 scripts/convert_bin_to_safetensors.py DIR            # writes the safetensors files into DIR
  python3 scripts/convert_bin_to_safetensors.py DIR --out OUT  # into OUT, with config/tokenizer files

Writes model.safetensors, or for a sharded .bin one model-0000k-of-0000n.safetensors per .bin shard plus
model.safetensors.index.json. Keys and dtypes are kept; tensors that share storage (a tied lm_head) are
written as separate copies. zo2 (like transformers) prefers safetensors when both formats are present.
Each file is written to a temporary name and renamed; the index comes last.
Needs torch and safetensors (pip install torch safetensors); runs on the CPU.
"""
import argparse
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file


def load_bin(path, unsafe):
    try:
        sd = torch.load(path, map_location="cpu", weights_only=not unsafe)
    except Exception as e:  # noqa: BLE001 -- report any unpickling failure in one line
        hint = "" if unsafe else " (if you trust the file, retry with --unsafe)"
        sys.exit(f"{path}: torch.load failed: {str(e).splitlines()[0]}{hint}")
    out = {}
    for k, v in sd.items():
        if not isinstance(v, torch.Tensor):
            sys.exit(f"{path}: entry {k!r} is a {type(v).__name__}, not a tensor")
        out[k] = v.detach().contiguous().clone()  # own storage: safetensors refuses shared tensors
    return out


def save_atomic(tensors, path):
    tmp = path + ".tmp"
    save_file(tensors, tmp, metadata={"format": "pt"})
    os.replace(tmp, path)


def write_json_atomic(obj, path):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", help="checkpoint directory holding pytorch_model.bin or pytorch_model.bin.index.json")
    ap.add_argument("--out", help="output directory (default: DIR itself)")
    ap.add_argument("--unsafe", action="store_true", help="torch.load with weights_only=False (trusted files only)")
    args = ap.parse_args()
    out = args.out or args.dir
    os.makedirs(out, exist_ok=True)

    index_path = os.path.join(args.dir, "pytorch_model.bin.index.json")
    if os.path.exists(index_path):
        weight_map = json.load(open(index_path))["weight_map"]
        bins = sorted(set(weight_map.values()))
    elif os.path.exists(os.path.join(args.dir, "pytorch_model.bin")):
        bins = ["pytorch_model.bin"]
    else:
        sys.exit(f"{args.dir}: no pytorch_model.bin or pytorch_model.bin.index.json")

    if len(bins) == 1 and not os.path.exists(index_path):
        tensors = load_bin(os.path.join(args.dir, bins[0]), args.unsafe)
        save_atomic(tensors, os.path.join(out, "model.safetensors"))
        print(f"wrote {os.path.join(out, 'model.safetensors')}: {len(tensors)} tensors")
    else:
        new_map, total = {}, 0
        for i, name in enumerate(bins):
            tensors = load_bin(os.path.join(args.dir, name), args.unsafe)
            shard = f"model-{i + 1:05d}-of-{len(bins):05d}.safetensors"
            save_atomic(tensors, os.path.join(out, shard))
            for k, v in tensors.items():
                new_map[k] = shard
                total += v.numel() * v.element_size()
            print(f"wrote {os.path.join(out, shard)}: {len(tensors)} tensors")
            del tensors
        write_json_atomic({"metadata": {"total_size": total}, "weight_map": new_map},
                          os.path.join(out, "model.safetensors.index.json"))

    if os.path.abspath(out) != os.path.abspath(args.dir):
        for f in sorted(os.listdir(args.dir)):
            src = os.path.join(args.dir, f)
            if os.path.isfile(src) and not f.startswith("pytorch_model") and not os.path.exists(os.path.join(out, f)):
                shutil.copy2(src, os.path.join(out, f))


if __name__ == "__main__":
    main()
