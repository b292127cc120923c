#!/usr/bin/env python3
"""Reference pre-tokenisation splits for tests/unit/test_tokenizer.cpp, from the Python `regex` module
(the engine HF's GPT2Tokenizer uses) with GPT-2's pattern. Complements make_tokenizer_ref.js (ids from
a JavaScript encoder), whose `\\s` differs from `regex` on U+0085 and U+FEFF.

Rerun (python3 with `pip install regex`; no network otherwise):
    python3 scripts/ref/make_tokenizer_ref.py
Reads tests/data/tokenizer/{corpus.txt,split_edge.txt}, writes tests/data/tokenizer/splits.json:
    {"corpus": [pieces of each line], "whole": [pieces of all of corpus.txt], "edge": [pieces of each
    line of split_edge.txt]}. Lines are split on "\\n" only (the final "\\n" ends the last line).
"""
import json
import pathlib
import sys
import unicodedata

import regex

PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
DATA = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "tokenizer"


def read(name):
    text = (DATA / name).read_bytes().decode("utf-8")  # no newline translation
    # Letters and digits added after Unicode 14 (PCRE2 10.42's tables) would make the C++ and `regex`
    # disagree; the stdlib's unicodedata is 14.0 on Python 3.11, so unassigned there means "too new".
    new = sorted({hex(ord(c)) for c in text if unicodedata.category(c) == "Cn"})
    if new:
        sys.exit(f"{name}: code points unassigned in Unicode {unicodedata.unidata_version}: {new}")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return text, lines


def main():
    corpus, corpus_lines = read("corpus.txt")
    _, edge_lines = read("split_edge.txt")
    out = {
        "generator": f"scripts/ref/make_tokenizer_ref.py with regex {regex.__version__}",
        "corpus": [PATTERN.findall(line) for line in corpus_lines],
        "whole": PATTERN.findall(corpus),
        "edge": [PATTERN.findall(line) for line in edge_lines],
    }
    (DATA / "splits.json").write_text(json.dumps(out, ensure_ascii=True, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {len(corpus_lines)} corpus and {len(edge_lines)} edge lines to {DATA / 'splits.json'}")


if __name__ == "__main__":
    main()
