// MeZO's F1 for SQuAD and DROP (mezo: large_models/metrics.py): SQuAD's answer normalisation and
// token-overlap F1, best over the gold answers; when the first gold answer is "CANNOTANSWER" or
// "no answer", exact match of the normalised strings instead.
#pragma once

#include <string>
#include <vector>

namespace zo2 {

// Lower case, remove ASCII punctuation (Python's string.punctuation), replace the words a, an, the by a
// space (Unicode word boundaries), then join the whitespace-separated words by single spaces.
std::string normalize_answer(const std::string& s);

// In [0, 1]; no common token (an empty prediction included) scores 0. `golds` must not be empty.
double squad_f1(const std::string& prediction, const std::vector<std::string>& golds);

}  // namespace zo2
