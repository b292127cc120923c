#!/usr/bin/env python3
"""Reference data for zo2's parity tests, made by Hugging Face transformers (an independent OPT).

Builds small random OPT models with OPTForCausalLM(config), saves them with save_pretrained, runs a
left-padded batch through them in fp32 (CPU, eager attention) and writes

  tests/data/parity/<case>/config.json, model.safetensors      the model, as transformers saves it
  tests/data/parity/<case>/reference.safetensors                input_ids, attention_mask, labels,
                                                                logits [B,T,V] f32, loss [1] f32,
                                                                hidden_<i> (HF hidden_states)
  tests/data/parity/variants/<name>/...                         the 'small' model in other layouts the
                                                                loader must accept (sharded safetensors,
                                                                decoder.* keys, fp16/bf16, pytorch_model.bin
                                                                as a plain dict, as an OrderedDict, sharded)

Regenerate (on the GPU machine, which has transformers; nothing here needs a GPU):
  python3 scripts/ref/make_parity.py --out tests/data/parity
Seeds are fixed, so a rerun with the same transformers/torch gives the same files.
"""
import argparse
import collections
import json
import os
import shutil

import torch
import transformers
from safetensors.torch import save_file
from transformers import OPTConfig, OPTForCausalLM

CASES = {
    # pre-LN, several heads, 3 layers, tied head (transformers 5 omits lm_head.weight when tied)
    "pre_ln": dict(vocab_size=1000, hidden_size=64, num_hidden_layers=3, ffn_dim=192,
                   num_attention_heads=4, max_position_embeddings=40, do_layer_norm_before=True,
                   word_embed_proj_dim=64),
    # opt-350m style: post-LN, project_in/out (32 <-> 64), no final LayerNorm
    "post_ln_proj": dict(vocab_size=1000, hidden_size=64, num_hidden_layers=2, ffn_dim=128,
                         num_attention_heads=2, max_position_embeddings=40,
                         do_layer_norm_before=False, word_embed_proj_dim=32),
    # untied LM head, head_dim 16
    "untied": dict(vocab_size=600, hidden_size=48, num_hidden_layers=2, ffn_dim=96,
                   num_attention_heads=3, max_position_embeddings=40, do_layer_norm_before=True,
                   word_embed_proj_dim=48, tie_word_embeddings=False),
    # very small model reused for the file-layout variants
    "small": dict(vocab_size=100, hidden_size=16, num_hidden_layers=2, ffn_dim=32,
                  num_attention_heads=2, max_position_embeddings=24, do_layer_norm_before=True,
                  word_embed_proj_dim=16),
}


def build(case, seed):
    cfg = OPTConfig(**CASES[case], pad_token_id=1, bos_token_id=2, eos_token_id=2, dropout=0.1)
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = OPTForCausalLM(cfg).eval()
    # HF init leaves biases 0 and LayerNorm weights 1, which would hide ordering mistakes: randomise all.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif "embed" in name:
                p.copy_(0.5 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))
    return model


def batch(vocab, seed, B=3, T=12, lengths=(12, 7, 3)):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (B, T), generator=g)
    mask = torch.zeros(B, T, dtype=torch.long)
    for b, n in enumerate(lengths):
        mask[b, T - n:] = 1          # left padding
        ids[b, : T - n] = 1           # pad id
    labels = torch.where(mask.bool(), ids, torch.full_like(ids, -100))
    return ids, mask, labels


def run(model, ids, mask, labels):
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=labels, output_hidden_states=True)
    return out


def write_case(model, case, out_dir, seed):
    d = os.path.join(out_dir, case)
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d)
    ids, mask, labels = batch(model.config.vocab_size, seed + 1)
    out = run(model, ids, mask, labels)
    ref = {"input_ids": ids, "attention_mask": mask, "labels": labels,
           "logits": out.logits.float().contiguous(), "loss": out.loss.reshape(1).float()}
    for i, h in enumerate(out.hidden_states):
        ref[f"hidden_{i}"] = h.float().contiguous()
    save_file(ref, os.path.join(d, "reference.safetensors"),
              metadata={"transformers": transformers.__version__, "torch": torch.__version__})
    print(f"{case}: loss {out.loss.item():.8f}")
    return d


def state_dict_with(model, prefix, dtype, lm_head):
    sd = {}
    for k, v in model.state_dict().items():
        if k == "lm_head.weight":
            continue
        assert k.startswith("model.decoder."), k
        sd[prefix + k[len("model."):]] = v.to(dtype).contiguous().clone()
    if lm_head:
        sd["lm_head.weight"] = model.lm_head.weight.to(dtype).contiguous().clone()
    return sd


def write_variants(model, base_dir, out_dir):
    vdir = os.path.join(out_dir, "variants")
    shutil.rmtree(vdir, ignore_errors=True)
    cfg_path = os.path.join(base_dir, "config.json")

    def mk(name, cfg_update=None):
        d = os.path.join(vdir, name)
        os.makedirs(d)
        cfg = json.load(open(cfg_path))
        cfg.update(cfg_update or {})
        json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=2)
        return d

    # sharded safetensors exactly as save_pretrained writes it
    d = os.path.join(vdir, "sharded")
    model.save_pretrained(d, max_shard_size="8KB")
    # hub style: decoder.* keys, fp16, lm_head present
    save_file(state_dict_with(model, "", torch.float16, True),
              os.path.join(mk("decoder_prefix_fp16", {"torch_dtype": "float16"}), "model.safetensors"),
              metadata={"format": "pt"})
    save_file(state_dict_with(model, "model.", torch.bfloat16, False),
              os.path.join(mk("bf16", {"dtype": "bfloat16"}), "model.safetensors"), metadata={"format": "pt"})
    # pytorch_model.bin: plain dict (what save_pretrained wrote for years) and an OrderedDict (hub OPT files)
    torch.save(dict(state_dict_with(model, "model.", torch.float32, True)),
               os.path.join(mk("bin_dict"), "pytorch_model.bin"))
    torch.save(collections.OrderedDict(state_dict_with(model, "", torch.float16, False)),
               os.path.join(mk("bin_ordered"), "pytorch_model.bin"))
    # sharded .bin + index, decoder.* keys, fp16 (like facebook/opt-6.7b)
    d = mk("bin_sharded")
    sd = state_dict_with(model, "", torch.float16, False)
    keys = sorted(sd)
    shards = [keys[: len(keys) // 2], keys[len(keys) // 2:]]
    wm = {}
    for i, ks in enumerate(shards):
        fn = f"pytorch_model-{i + 1:05d}-of-{len(shards):05d}.bin"
        torch.save({k: sd[k] for k in ks}, os.path.join(d, fn))
        wm.update({k: fn for k in ks})
    total = sum(v.numel() * v.element_size() for v in sd.values())
    json.dump({"metadata": {"total_size": total}, "weight_map": wm},
              open(os.path.join(d, "pytorch_model.bin.index.json"), "w"), indent=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/parity")
    args = ap.parse_args()
    print("transformers", transformers.__version__, "torch", torch.__version__)
    torch.set_num_threads(4)
    for i, case in enumerate(CASES):
        model = build(case, 1000 + i)
        d = write_case(model, case, args.out, 1000 + i)
        if case == "small":
            write_variants(model, d, args.out)
    for root, _, files in sorted(os.walk(args.out)):
        for f in sorted(files):
            p = os.path.join(root, f)
            print(f"{os.path.getsize(p):9d} {p}")


if __name__ == "__main__":
    main()
