#!/usr/bin/env python3
"""Export a MeZO task's Hugging Face dataset splits as the JSON lines `zo2 train --task` and `zo2 eval --task` read.

Run it where the `datasets` package is installed and the Hub is reachable (zo2 itself never downloads):

  python3 scripts/export_task.py SST2 --out data/sst2          # train.jsonl, validation.jsonl
  python3 scripts/export_task.py all --out data                # every task, data/<task>/<split>.jsonl

Each line is one record with the dataset's own fields (SST-2: sentence, label; SQuAD: title, context,
question, answers{text}; ...), exactly what MeZO's tasks.py reads from the same datasets. The train split
is MeZO's pool for the train and dev examples, the validation split its test set (docs/tasks.md).
"""
import argparse
import json
import os
import sys

# MeZO's task -> load_dataset arguments (mezo: large_models/tasks.py).
TASKS = {
    "SST2": ("glue", "sst2"),
    "RTE": ("super_glue", "rte"),
    "CB": ("super_glue", "cb"),
    "BoolQ": ("boolq", None),
    "WSC": ("super_glue", "wsc.fixed"),
    "WIC": ("super_glue", "wic"),
    "MultiRC": ("super_glue", "multirc"),
    "Copa": ("super_glue", "copa"),
    "ReCoRD": ("super_glue", "record"),
    "SQuAD": ("squad", None),
    "DROP": ("drop", None),
}


def find(name):
    for t in TASKS:
        if t.lower() == name.lower().replace("-", "").replace("_", ""):
            return t
    sys.exit(f"unknown task '{name}' (one of {', '.join(TASKS)}, or all)")


def export(task, out_dir, splits):
    try:
        from datasets import load_dataset
    except ImportError:
        sys.exit("this script needs the `datasets` package: pip install datasets")
    path, config = TASKS[task]
    os.makedirs(out_dir, exist_ok=True)
    for split in splits:
        ds = load_dataset(path, config, split=split) if config else load_dataset(path, split=split)
        file = os.path.join(out_dir, f"{split}.jsonl")
        with open(file, "w", encoding="utf-8") as f:
            for record in ds:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        print(f"{task}: {len(ds)} records -> {file}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", help="SST2, RTE, CB, BoolQ, WSC, WIC, MultiRC, Copa, ReCoRD, SQuAD, DROP, or all")
    ap.add_argument("--out", required=True, help="output directory (with 'all': one subdirectory per task)")
    ap.add_argument("--splits", default="train,validation", help="comma-separated splits (default: train,validation)")
    args = ap.parse_args()
    splits = [s for s in args.splits.split(",") if s]
    if args.task.lower() == "all":
        for t in TASKS:
            export(t, os.path.join(args.out, t.lower()), splits)
    else:
        export(find(args.task), args.out, splits)


if __name__ == "__main__":
    main()
