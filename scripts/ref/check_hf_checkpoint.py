#!/usr/bin/env python3
"""Check zo2 training checkpoints with Hugging Face transformers, and replay and resume on a device.

Trains a model with `zo2 train --out` on random-token language-modelling data (every sequence BOS + 15
tokens, so nothing is padded), with an evaluation every --save-every steps, then for every checkpoint-<step>:
  - OPTForCausalLM.from_pretrained loads it with no missing, unexpected or mismatched keys, the same
    architecture as the base, and AutoTokenizer loads its tokenizer files (when the base has them);
  - transformers' mean token cross-entropy on the evaluation set, from its logits in float64, equals the
    eval_loss zo2 logged at that step from its own forward (rel. difference <= 1e-4 for f32 compute,
    5e-3 for f16/bf16): the checkpoint is the model zo2 evaluated, read by an independent implementation;
and, on the same device:
  - `zo2 replay --base MODEL --trajectory run/trajectory.zo2traj` writes a model.safetensors byte-identical
    to the last checkpoint's;
  - (--kill) a second run killed with SIGKILL after a random step and resumed with --resume ends with
    the same model.safetensors and trajectory.zo2traj bytes as the uninterrupted run.
Prints one PASS/FAIL line per check; exits non-zero on any failure.

GPU machine (transformers 5.x, torch 2.x):
  python3 scripts/ref/check_hf_checkpoint.py --zo2 build/zo2 --model configs/demo/model --device cuda:0 --kill
  python3 scripts/ref/check_hf_checkpoint.py --zo2 build/zo2 --model configs/demo/model --device cuda:0 \\
      --dtype f16 --storage-dtype f16 --kill
CPU: the same with --device cpu (transformers then also runs on the CPU).
"""
import argparse
import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import torch
import transformers
from transformers import AutoTokenizer, OPTForCausalLM

ARCH_FIELDS = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "ffn_dim",
               "max_position_embeddings", "word_embed_proj_dim", "do_layer_norm_before", "tie_word_embeddings"]


def write_data(path, vocab, n, seed, T=16, bos=2):
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(n):
            f.write(json.dumps({"ids": [bos] + [rng.randrange(4, vocab) for _ in range(T - 1)]}) + "\n")


def load(path):
    kw = dict(attn_implementation="eager", local_files_only=True, output_loading_info=True)
    try:
        model, info = OPTForCausalLM.from_pretrained(path, dtype=torch.float32, **kw)
    except TypeError:  # transformers < 4.56
        model, info = OPTForCausalLM.from_pretrained(path, torch_dtype=torch.float32, **kw)
    return model.eval(), info


def hf_eval_loss(model, eval_path, device):
    ids = torch.tensor([json.loads(line)["ids"] for line in open(eval_path)], device=device)
    with torch.no_grad():
        logits = model.to(device)(input_ids=ids).logits.double()
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    return -logp.gather(-1, ids[:, 1:, None]).mean().item()


def run(cmd, log):
    with open(log, "w") as f:
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode


def records(traj):
    """Records in a trajectory log (q = 1: 32 bytes each after the header)."""
    try:
        b = open(traj, "rb").read()
    except FileNotFoundError:
        return 0
    if len(b) < 16:
        return 0
    n = int.from_bytes(b[12:16], "little")
    return max(0, (len(b) - (16 + n + 4)) // 32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zo2", default="build/zo2")
    ap.add_argument("--model", default="configs/demo/model", help="base Hugging Face OPT directory")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--dtype", default="f32", help="zo2 compute dtype")
    ap.add_argument("--storage-dtype", default="f32")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--save-every", type=int, default=10)
    ap.add_argument("--kill", action="store_true", help="also kill -9 a run and resume it")
    ap.add_argument("--work", help="keep the runs here (default: a temporary directory, removed)")
    args = ap.parse_args()
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    work = args.work or tempfile.mkdtemp(prefix="zo2_ckpt_")
    os.makedirs(work, exist_ok=True)
    hf_device = args.device if torch.cuda.is_available() or not args.device.startswith("cuda") else "cpu"
    base, _ = load(args.model)
    vocab = base.config.vocab_size
    train, evalf = os.path.join(work, "train.jsonl"), os.path.join(work, "eval.jsonl")
    write_data(train, vocab, 256, 1)
    write_data(evalf, vocab, 32, 2)
    failures = []

    def check(ok, what):
        print(("PASS " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    def train_cmd(out, metrics):
        return [args.zo2, "train", "--model", args.model, "--data", train, "--eval-data", evalf, "--eval-batch-size",
                "32", "--eval-every", str(args.save_every), "--steps", str(args.steps), "--batch-size", "4",
                "--lr", "1e-3", "--seed", "5", "--device", args.device, "--dtype", args.dtype, "--storage-dtype",
                args.storage_dtype, "--progress", "false", "--out", out, "--save-every", str(args.save_every),
                "--keep", "0", "--metrics", metrics]

    out, metrics = os.path.join(work, "run"), os.path.join(work, "metrics.jsonl")
    rc = run(train_cmd(out, metrics), os.path.join(work, "train.txt"))
    check(rc == 0, f"zo2 train exits 0 (log {work}/train.txt)")
    if rc != 0:
        sys.exit(1)
    evals = {}
    for line in open(metrics):
        r = json.loads(line)
        if "eval_loss" in r:
            evals[r["step"]] = r["eval_loss"]
    tol = 1e-4 if args.dtype == "f32" else 5e-3
    has_tok = os.path.exists(os.path.join(args.model, "vocab.json"))
    base_loss = hf_eval_loss(base, evalf, hf_device)
    ckpts = sorted(glob.glob(os.path.join(out, "checkpoint-*")), key=lambda p: int(p.rsplit("-", 1)[1]))
    check(len(ckpts) == args.steps // args.save_every, f"{len(ckpts)} checkpoints written")
    for ck in ckpts:
        step = int(ck.rsplit("-", 1)[1])
        model, info = load(ck)
        bad = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
        check(not bad, f"{ck}: loads in transformers" + (f" ({bad})" if bad else ""))
        diff = [f for f in ARCH_FIELDS if getattr(model.config, f) != getattr(base.config, f)]
        check(not diff, f"{ck}: architecture as the base" + (f" (differs: {diff})" if diff else ""))
        if has_tok:
            try:
                AutoTokenizer.from_pretrained(ck, local_files_only=True)
                check(True, f"{ck}: AutoTokenizer loads")
            except Exception as e:  # noqa: BLE001
                check(False, f"{ck}: AutoTokenizer: {type(e).__name__}: {e}")
        hf = hf_eval_loss(model, evalf, hf_device)
        z = evals.get(step)
        rel = abs(hf - z) / abs(z) if z is not None else float("nan")
        check(z is not None and rel <= tol and hf != base_loss,
              f"{ck}: transformers eval loss {hf:.7f} vs zo2's {z} (rel {rel:.2g} <= {tol:g}; base {base_loss:.7f})")
    last = ckpts[-1]
    want = open(os.path.join(last, "model.safetensors"), "rb").read()

    rep = os.path.join(work, "replayed")
    rc = run([args.zo2, "replay", "--base", args.model, "--trajectory", os.path.join(out, "trajectory.zo2traj"),
              "--out", rep, "--device", args.device], os.path.join(work, "replay.txt"))
    same = rc == 0 and open(os.path.join(rep, "model.safetensors"), "rb").read() == want
    check(same, f"zo2 replay on {args.device} gives {last}/model.safetensors bitwise (log {work}/replay.txt)")

    if args.kill:
        k = random.Random(7).randrange(3, args.steps - 5)
        out2 = os.path.join(work, "killed")
        cmd = train_cmd(out2, os.path.join(work, "metrics_killed.jsonl"))
        with open(os.path.join(work, "killed.txt"), "w") as f:
            p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
            while p.poll() is None and records(os.path.join(out2, "trajectory.zo2traj")) < k:
                time.sleep(0.001)
            p.send_signal(signal.SIGKILL)
            p.wait()
        at = records(os.path.join(out2, "trajectory.zo2traj"))
        rc = run(cmd + ["--resume", out2], os.path.join(work, "resumed.txt"))
        ok = (rc == 0 and open(os.path.join(out2, os.path.basename(last), "model.safetensors"), "rb").read() == want
              and open(os.path.join(out2, "trajectory.zo2traj"), "rb").read() ==
              open(os.path.join(out, "trajectory.zo2traj"), "rb").read())
        check(ok, f"killed after {at} of {args.steps} steps, resumed: final weights and log bitwise the uninterrupted run's")

    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    print("PASS" if not failures else f"FAIL ({len(failures)} checks)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
