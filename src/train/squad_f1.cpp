#include "train/squad_f1.h"

#include <algorithm>
#include <map>

#include "common/error.h"
#include "data/pystr.h"

namespace zo2 {

std::string normalize_answer(const std::string& s) {
  static const std::string punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  std::string t;
  for (char c : py::lower(s))  // ASCII bytes never occur inside a multi-byte UTF-8 character
    if (punctuation.find(c) == std::string::npos) t += c;
  t = py::re_sub(R"(\b(a|an|the)\b)", " ", t);
  std::string out;
  for (const std::string& w : py::split(t)) out += (out.empty() ? "" : " ") + w;
  return out;
}

double squad_f1(const std::string& prediction, const std::vector<std::string>& golds) {
  ZO2_REQUIRE(!golds.empty(), "F1 needs at least one gold answer");
  const std::string pred = normalize_answer(prediction);
  if (golds[0] == "CANNOTANSWER" || golds[0] == "no answer") return pred == normalize_answer(golds[0]) ? 1.0 : 0.0;
  const std::vector<std::string> p = py::split(pred);
  double best = 0;
  for (const std::string& g : golds) {
    const std::vector<std::string> t = py::split(normalize_answer(g));
    std::map<std::string, int64_t> count;  // Counter(p) & Counter(t)
    for (const std::string& w : t) ++count[w];
    int64_t same = 0;
    for (const std::string& w : p)
      if (count[w]-- > 0) ++same;
    if (same == 0) continue;
    const double precision = static_cast<double>(same) / p.size(), recall = static_cast<double>(same) / t.size();
    best = std::max(best, 2 * precision * recall / (precision + recall));
  }
  return best;
}

}  // namespace zo2
