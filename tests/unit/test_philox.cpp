// The host Philox4x32-10 and the counter layout of the zo2 RNG contract (docs/zo.md), checked against
// published known-answer vectors and against LibTorch's independent at::philox_engine.
#include <ATen/core/PhiloxRNGEngine.h>
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "kernels/philox.h"
#include "kernels/zo_kernels.h"

namespace zo2::kernels {
namespace {

// Random123 kat_vectors, philox4x32_10: counter words 0..3, key words 0..1, outputs 0..3.
TEST(Philox, KnownAnswerVectors) {
  struct Kat {
    Philox4 ctr;
    uint32_t k0, k1;
    Philox4 out;
  };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const Kat& k : kats) {
    const Philox4 got = philox4x32_10(k.ctr, k.k0, k.k1);
    for (int j = 0; j < 4; ++j) EXPECT_EQ(got.w[j], k.out.w[j]) << "ctr " << std::hex << k.ctr.w[0] << " word " << j;
  }
}

// philox_engine(seed, subsequence, offset) counts offset in 128-bit blocks, i.e. our group index,
// and its operator() walks the words of successive groups in order.
TEST(Philox, MatchesATenPhiloxEngine) {
  std::mt19937_64 rng(20261125);
  std::vector<std::array<uint64_t, 3>> cases = {
      {0, 0, 0}, {~0ull, ~0ull, 0}, {1, subsequence(0xFFFFFFFFu, 7), 0xFFFFFFFFull},  // g crosses 2^32
      {42, subsequence(3, 0xFFFFFFFFu), (1ull << 40) + 5}};
  for (int c = 0; c < 300; ++c) cases.push_back({rng(), subsequence(uint32_t(rng()), uint32_t(rng())), rng() >> 8});
  for (const auto& [key, subseq, g] : cases) {
    at::philox_engine eng(key, subseq, g);
    for (uint64_t k = 0; k < 3; ++k) {  // three consecutive groups: counter increments carry like cuRAND's
      const Philox4 w = philox_group(key, subseq, g + k);
      for (int j = 0; j < 4; ++j)
        ASSERT_EQ(w.w[j], eng()) << "key " << key << " S " << subseq << " g " << g + k << " word " << j;
    }
    Philox4 two[2];
    philox_groups<2>(key, subseq, g, two);
    EXPECT_EQ(two[1].w[3], philox_group(key, subseq, g + 1).w[3]);
  }
}

// SplitMix64 reference outputs for seed 0 (Vigna's splitmix64.c: state += golden gamma, then mix).
TEST(Philox, StepKeyIsSplitMix64) {
  EXPECT_EQ(splitmix64(0), 0xe220a8397b1dcdafull);
  EXPECT_EQ(splitmix64(0x9E3779B97F4A7C15ull), 0x6e789e6aa1b965f4ull);
  std::set<uint64_t> keys;
  for (uint64_t seed : {0ull, 1ull, 12345ull})
    for (uint64_t step = 0; step < 1000; ++step) keys.insert(step_key(seed, step));
  EXPECT_EQ(keys.size(), 3000u) << "step keys collide";
}

}  // namespace
}  // namespace zo2::kernels
