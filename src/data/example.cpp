#include "data/example.h"

#include <algorithm>

#include "common/error.h"

namespace zo2 {

Sequence truncate(const Sequence& s, int64_t max_len) {
  const int64_t n = static_cast<int64_t>(s.ids.size());
  if (n <= max_len) return s;
  const int64_t drop = n - max_len;
  Sequence t;
  t.ids.push_back(s.ids[0]);
  t.ids.insert(t.ids.end(), s.ids.begin() + 1 + drop, s.ids.end());
  t.target_begin = std::max<int64_t>(1, s.target_begin - drop);
  return t;
}

Batch make_batch(const std::vector<const Example*>& examples, const BatchOptions& opt) {
  ZO2_REQUIRE(!examples.empty(), "empty batch");
  ZO2_REQUIRE(opt.max_len >= 2, "max sequence length must be >= 2, got ", opt.max_len);
  const bool cls = examples[0]->is_classification();
  std::vector<Sequence> seqs;
  std::vector<std::vector<int64_t>> cand_rows;
  std::vector<int64_t> gold;
  for (const Example* e : examples) {
    ZO2_REQUIRE(e->is_classification() == cls, "a batch mixes classification and language-modelling examples");
    ZO2_REQUIRE(!e->candidates.empty(), "an example has no sequence");
    ZO2_REQUIRE(cls || e->candidates.size() == 1, "a language-modelling example has exactly one sequence");
    ZO2_REQUIRE(!cls || e->gold < static_cast<int64_t>(e->candidates.size()), "gold candidate ", e->gold,
                " out of range (", e->candidates.size(), " candidates)");
    std::vector<int64_t> rows;
    for (const Sequence& s : e->candidates) {
      rows.push_back(static_cast<int64_t>(seqs.size()));
      seqs.push_back(truncate(s, opt.max_len));
    }
    cand_rows.push_back(rows);
    gold.push_back(e->gold);
  }
  int64_t T = 0;
  for (const Sequence& s : seqs) T = std::max<int64_t>(T, static_cast<int64_t>(s.ids.size()));
  if (opt.pad_multiple > 1) T = std::min(opt.max_len, (T + opt.pad_multiple - 1) / opt.pad_multiple * opt.pad_multiple);
  const int64_t B = static_cast<int64_t>(seqs.size());

  Batch b;
  b.ids = at::full({B, T}, opt.pad_id, at::kLong);
  b.mask = at::zeros({B, T}, at::kLong);
  std::vector<int64_t> rows, targets, seq;
  auto ids = b.ids.accessor<int64_t, 2>();
  auto mask = b.mask.accessor<int64_t, 2>();
  for (int64_t r = 0; r < B; ++r) {
    const Sequence& s = seqs[r];
    const int64_t n = static_cast<int64_t>(s.ids.size()), off = T - n;
    for (int64_t t = 0; t < n; ++t) {
      ids[r][off + t] = s.ids[t];
      mask[r][off + t] = 1;
    }
    // hidden row at position p predicts the token at p + 1
    for (int64_t t = std::max<int64_t>(1, s.target_begin); t < n; ++t) {
      rows.push_back(r * T + off + t - 1);
      targets.push_back(s.ids[t]);
      seq.push_back(r);
    }
    b.tokens += n;
  }
  ZO2_REQUIRE(!targets.empty(), "batch has no target tokens (every sequence too short?)");
  b.targets.rows = at::tensor(rows, at::kLong);
  b.targets.targets = at::tensor(targets, at::kLong);
  b.targets.seq = at::tensor(seq, at::kLong);
  b.targets.batch = B;
  b.attn = make_attn_mask(b.mask);
  if (cls) {
    b.kind = LossKind::kClassification;
    size_t C = 0;
    for (const auto& r : cand_rows) C = std::max(C, r.size());
    b.cand = at::full({static_cast<int64_t>(cand_rows.size()), static_cast<int64_t>(C)}, -1, at::kLong);
    for (size_t x = 0; x < cand_rows.size(); ++x)
      for (size_t c = 0; c < cand_rows[x].size(); ++c) b.cand[x][c] = cand_rows[x][c];
    b.gold = at::tensor(gold, at::kLong);
  }
  return b;
}

}  // namespace zo2
