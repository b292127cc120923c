#!/usr/bin/env python3
"""Reference data for zo2's task tests (tests/unit/test_tasks.cpp, test_f1.cpp), made by Python itself:

  permutations   numpy.random.RandomState(seed).permutation(n)[:k], which is what MeZO's sample_subset
                 draws under temp_seed(seed) (np.random.seed + np.random.permutation)
  strings        CPython's str.strip/lstrip/rstrip/split/lower/upper on strings with Unicode whitespace
                 and letters, which zo2's data/pystr.h reproduces
  normalize      SQuAD's normalize_answer (lower, drop string.punctuation, re.sub(r'\\b(a|an|the)\\b', ' '),
                 ' '.join(split())), written out below as in the SQuAD v1.1 evaluation script

Regenerate (needs numpy; any version: the legacy RandomState stream is frozen):
  python3 scripts/ref/make_task_ref.py > tests/data/tasks/reference.json
"""
import json
import re
import string

import numpy as np

PERMUTATIONS = [  # (n, seed, how many to keep)
    (1, 0, 1), (2, 0, 2), (10, 0, 10), (10, 1, 10), (7, 42, 7), (250, 0, 250), (400, 0, 400),
    (1500, 0, 1500), (67349, 0, 1500), (87599, 0, 1000), (100730, 3, 200), (1000, 4294967295, 1000),
]

STRINGS = [
    "  plain text  ", "\t\n tabs and newlines \r\n", "\u00a0nbsp\u3000ideographic\u2009", "\x1c\x1fseparators\x1e",
    "\u0085next line\u2028", "zero\u200bwidth", "", "   ", "a  b\u00a0c\u2003d", "Ünïcödé ÀÉÎ Straße", "ΣΊΣΥΦΟΣ",
    "привет МИР", "ǅ title", "MiXeD CaSe", "i\u0307 dot", "\u00e9cole", "ébène",
]

NORMALIZE = [
    "The Eiffel Tower", "an apple a day", "Theater, the ANSWER!", "a", "the-the", "  spaced   out  ",
    "l'homme", "a\u00e9 b", "\u00e9a the", "The\u00a0cat", "An—the end", "¿Qué? ¡Sí!", "Denver Broncos",
    "100,000 (approx.)", "\u00c9COLE the École", "under_score the", "",
]


def normalize_answer(s):
    def remove_articles(text):
        return re.sub(r'\b(a|an|the)\b', ' ', text)

    def white_space_fix(text):
        return ' '.join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def main():
    perms = []
    for n, seed, k in PERMUTATIONS:
        state = np.random.get_state()
        np.random.seed(seed)
        p = np.random.permutation(n).tolist()[:k]
        np.random.set_state(state)
        perms.append({"n": n, "seed": seed, "first": p})
    strings = [{"s": s, "strip": s.strip(), "lstrip": s.lstrip(), "rstrip": s.rstrip(), "strip_spaces": s.strip(' '),
                "split": s.split(), "lower": s.lower(), "upper": s.upper(),
                "upper_first": (s[0].upper() + s[1:]) if s else ""} for s in STRINGS]
    norm = [{"s": s, "normalized": normalize_answer(s)} for s in NORMALIZE]
    print(json.dumps({"numpy": np.__version__, "permutations": perms, "strings": strings, "normalize": norm},
                     ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
