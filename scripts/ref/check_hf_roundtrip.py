#!/usr/bin/env python3
"""Check that checkpoints written by `zo2 convert` load in Hugging Face transformers as the same model.

For every --source directory and --dtypes entry this runs
    zo2 convert --model SOURCE --out WORK/<case> --dtype D [--max-shard-size S]
then loads both SOURCE and the converted directory with OPTForCausalLM.from_pretrained(dtype=D) and
requires: no missing/unexpected/mismatched keys, the same config (architecture fields), every parameter
bitwise equal (torch.equal), logits on a fixed left-padded batch within rel L2 <= 1e-6 (the models are
identical, so any difference is a loader bug; f16/bf16 are compared in their own dtype, after the same
rounding on both sides), and the tokenizer files of SOURCE copied. Prints one PASS/FAIL line per case
and exits non-zero on any failure.

Run on the GPU machine (transformers 5.17, torch 2.11; nothing here needs a GPU):
  python3 scripts/ref/check_hf_roundtrip.py --zo2 build/zo2 \\
      --source tests/data/parity/pre_ln tests/data/parity/post_ln_proj tests/data/parity/untied \\
               tests/data/parity/variants/bin_ordered tests/data/parity/variants/bin_sharded \\
               tests/data/parity/variants/decoder_prefix_fp16 --dtypes f32 f16 bf16
Or compare one directory already converted: --source SRC --converted OUT --dtypes f16
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import torch
import transformers
from transformers import OPTForCausalLM

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
ARCH_FIELDS = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "ffn_dim",
               "max_position_embeddings", "word_embed_proj_dim", "do_layer_norm_before", "tie_word_embeddings",
               "activation_function", "enable_bias", "layer_norm_elementwise_affine", "pad_token_id",
               "bos_token_id", "eos_token_id"]
TOKENIZER_FILES = ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]


def load(path, dtype):
    kw = dict(attn_implementation="eager", local_files_only=True, output_loading_info=True)
    try:
        model, info = OPTForCausalLM.from_pretrained(path, dtype=dtype, **kw)
    except TypeError:  # transformers < 4.56 spells it torch_dtype
        model, info = OPTForCausalLM.from_pretrained(path, torch_dtype=dtype, **kw)
    return model.eval(), info


def batch(vocab, seed=7, B=3, T=10):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    for b, n in enumerate([T, T - 3, 2]):  # left padding
        mask[b, : T - n] = 0
        ids[b, : T - n] = 1
    return ids, mask


def compare(source, converted, dtype_name, device):
    dtype = DTYPES[dtype_name]
    problems = []
    ref, _ = load(source, dtype)
    got, info = load(converted, dtype)
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        if info.get(kind):
            problems.append(f"{kind}: {sorted(info[kind])[:5]}")
    for f in ARCH_FIELDS:
        a, b = getattr(ref.config, f, None), getattr(got.config, f, None)
        if a != b:
            problems.append(f"config {f}: {a} vs {b}")
    sd_ref, sd_got = ref.state_dict(), got.state_dict()
    if sorted(sd_ref) != sorted(sd_got):
        problems.append(f"state_dict keys differ: {sorted(set(sd_ref) ^ set(sd_got))[:5]}")
    for k in sd_ref:
        if k in sd_got and not torch.equal(sd_ref[k], sd_got[k]):
            d = (sd_ref[k].double() - sd_got[k].double()).abs().max().item()
            problems.append(f"tensor {k} differs (max abs {d:.3g})")
    ids, mask = batch(ref.config.vocab_size)
    with torch.no_grad():
        la = ref.to(device)(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.double()
        lb = got.to(device)(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.double()
    keep = mask.bool().to(device).unsqueeze(-1)  # pad query rows are not compared
    la, lb = torch.where(keep, la, 0.0), torch.where(keep, lb, 0.0)
    rel = ((la - lb).norm() / la.norm()).item()
    if not rel <= 1e-6:
        problems.append(f"logits rel L2 {rel:.3g} > 1e-6")
    for f in TOKENIZER_FILES:
        src = os.path.join(source, f)
        if os.path.exists(src) and (not os.path.exists(os.path.join(converted, f)) or
                                    open(src, "rb").read() != open(os.path.join(converted, f), "rb").read()):
            problems.append(f"tokenizer file {f} not copied")
    return rel, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zo2", default="build/zo2", help="the zo2 binary (for converting)")
    ap.add_argument("--source", nargs="+", required=True, help="checkpoint directories to convert and compare")
    ap.add_argument("--converted", help="compare this already converted directory (one --source) instead")
    ap.add_argument("--dtypes", nargs="+", default=["f32", "f16", "bf16"], choices=sorted(DTYPES))
    ap.add_argument("--shard", default="8KB", help="also convert f32 with this --max-shard-size ('' to skip)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--work", help="directory for converted checkpoints (default: a temporary one, removed)")
    args = ap.parse_args()
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")

    cases = []  # (source, converted, dtype name, label)
    work = args.work or tempfile.mkdtemp(prefix="zo2_roundtrip_")
    if args.converted:
        if len(args.source) != 1 or len(args.dtypes) != 1:
            sys.exit("--converted takes one --source and one --dtypes entry")
        cases.append((args.source[0], args.converted, args.dtypes[0], args.converted))
    else:
        for src in args.source:
            runs = [(d, None) for d in args.dtypes] + ([("f32", args.shard)] if args.shard else [])
            for d, shard in runs:
                label = f"{os.path.basename(os.path.normpath(src))}_{d}" + (f"_shard{shard}" if shard else "")
                out = os.path.join(work, label)
                cmd = [args.zo2, "convert", "--model", src, "--out", out, "--dtype", d]
                if shard:
                    cmd += ["--max-shard-size", shard]
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    print(f"FAIL {label}: zo2 convert: {(r.stderr or r.stdout).strip()}")
                    cases.append(None)
                    continue
                cases.append((src, out, d, label))

    failed = sum(c is None for c in cases)
    for c in cases:
        if c is None:
            continue
        src, out, d, label = c
        try:
            rel, problems = compare(src, out, d, args.device)
        except Exception as e:  # noqa: BLE001 -- a load failure is a FAIL of that case
            rel, problems = float("nan"), [f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"]
        status = "PASS" if not problems else "FAIL"
        failed += bool(problems)
        print(f"{status} {label}: logits rel L2 {rel:.3g}" + ("" if not problems else "; " + "; ".join(problems)))
    if not args.work and not args.converted:
        shutil.rmtree(work, ignore_errors=True)
    print("PASS" if failed == 0 else f"FAIL ({failed} of {len(cases)} cases)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
