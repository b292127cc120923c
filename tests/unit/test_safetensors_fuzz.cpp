// Seeded fuzzing of the safetensors header parser: 100k mutations of valid files (byte flips, truncation,
// length fields, offsets, dtypes, shapes, JSON structure). Each case must either be accepted -- and then
// satisfy the invariants the reader relies on (entries sorted, contiguous from 0, sizes = shape x dtype,
// inside the file) -- or throw zo2::Error; anything else (crash, other exception) fails.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <cstdio>
#include <random>

#include "common/error.h"
#include "io/safetensors.h"

namespace zo2 {
namespace {

const char* const kDtypes[] = {"BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
                               "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32",
                               "C64", "F64", "I64", "U64"};
int bits_of(const std::string& d) {
  if (d == "F4") return 4;
  if (d == "F6_E2M3" || d == "F6_E3M2") return 6;
  if (d == "BOOL" || d == "U8" || d == "I8" || d.rfind("F8", 0) == 0) return 8;
  if (d == "I16" || d == "U16" || d == "F16" || d == "BF16") return 16;
  if (d == "I32" || d == "U32" || d == "F32") return 32;
  return 64;
}

using Json = nlohmann::ordered_json;
const Json kDeep = "(300 nested arrays)";  // written out as text by header_text

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}
  uint64_t r(uint64_t n) { return rng_() % n; }

  // A valid file: the JSON entries (kept as objects so that edits can be made) and the data size.
  struct File {
    std::vector<std::pair<std::string, Json>> entries;
    uint64_t data = 0;
    std::string padding;
  };
  File valid() {
    File f;
    const int n = static_cast<int>(r(6));
    std::vector<std::pair<std::string, Json>> t;
    for (int i = 0; i < n; ++i) {
      const std::string d = kDtypes[r(22)];
      Json shape = Json::array();
      uint64_t numel = 1;
      for (uint64_t k = r(4); k > 0; --k) {
        const uint64_t dim = r(6);
        shape.push_back(dim);
        numel *= dim;
      }
      const uint64_t bytes = (numel * bits_of(d) + 7) / 8;
      t.push_back({"t" + std::to_string(i) + (r(4) == 0 ? "\xc3\xa9\\\"" : ""),
                   Json{{"dtype", d}, {"shape", shape}, {"data_offsets", {f.data, f.data + bytes}}}});
      f.data += bytes;
    }
    if (r(2)) t.insert(t.begin() + static_cast<std::ptrdiff_t>(r(t.size() + 1)), {"__metadata__", Json{{"format", "pt"}}});
    std::shuffle(t.begin(), t.end(), rng_);
    f.entries = std::move(t);
    f.padding = std::string(r(9), ' ');
    return f;
  }

  Json odd_number() {
    switch (r(9)) {
      case 0: return -1;
      case 1: return 1.5;
      case 2: return "3";
      case 3: return nullptr;
      case 4: return uint64_t(1) << 62;
      case 5: return ~uint64_t(0);
      case 6: return uint64_t(1) << 32;
      case 7: return Json::array({1});
      default: return r(64);
    }
  }

  void edit_json(File& f) {
    if (f.entries.empty()) {
      f.entries.push_back({"x", odd_number()});
      return;
    }
    auto& [name, v] = f.entries[r(f.entries.size())];
    const bool offsets = v.is_object() && v.contains("data_offsets") && v["data_offsets"].is_array() &&
                         v["data_offsets"].size() == 2 && v["data_offsets"][0].is_number_unsigned();
    switch (r(12)) {
      case 0: if (offsets) v["data_offsets"][r(2)] = v["data_offsets"][0].get<uint64_t>() + r(5) - 2; break;
      case 1: if (offsets) v["data_offsets"][r(2)] = odd_number(); break;
      case 2: if (offsets) v["data_offsets"] = Json::array({r(10)}); break;
      case 3: if (v.is_object()) v["dtype"] = r(2) ? Json(kDtypes[r(22)]) : Json(r(2) ? "F17" : "f32"); break;
      case 4: if (v.is_object()) v["shape"] = Json::array({odd_number(), r(4)}); break;
      case 5: if (v.is_object() && v.contains("shape") && v["shape"].is_array()) v["shape"].push_back(r(3)); break;
      case 6: if (v.is_object() && !v.empty()) v.erase(v.begin()); break;
      case 7: v = odd_number(); break;
      case 8: f.entries.push_back(f.entries[r(f.entries.size())]); break;  // duplicate key
      case 9: v = Json{{"format", odd_number()}}; name = "__metadata__"; break;
      case 10: v = kDeep; break;
      default: f.entries.erase(f.entries.begin() + static_cast<std::ptrdiff_t>(r(f.entries.size()))); break;
    }
  }

  static std::string header_text(const File& f) {
    std::string s = "{";
    for (size_t i = 0; i < f.entries.size(); ++i) {
      const Json& v = f.entries[i].second;
      s += (i ? "," : "") + Json(f.entries[i].first).dump() + ":" +
           (v == kDeep ? std::string(300, '[') + "1" + std::string(300, ']') : v.dump());
    }
    return s + "}" + f.padding;
  }

  std::string image(const File& f) {
    const std::string h = header_text(f);
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((uint64_t(h.size()) >> (8 * i)) & 0xff);
    out += h;
    out.append(f.data, static_cast<char>(0xA5));  // tensor bytes: the parser never reads them
    return out;
  }

  void mutate_bytes(std::string& b) {
    switch (r(6)) {
      case 0: case 1: if (!b.empty()) b[r(b.size())] = static_cast<char>(rng_()); break;
      case 2: b.resize(r(b.size() + 1)); break;
      case 3: {  // length field
        const uint64_t vals[] = {0, 1, 7, b.size() - 8, b.size() - 7, b.size(), 100'000'001, uint64_t(1) << 63,
                                 ~uint64_t(0), r(1 << 16)};
        const uint64_t v = vals[r(10)];
        if (b.size() >= 8)
          for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
        break;
      }
      case 4: if (b.size() > 8) b.insert(8 + r(b.size() - 8), 1, "{}[],:\"0 \\"[r(10)]); break;
      default: if (b.size() > 9) b.erase(8 + r(b.size() - 8), 1); break;
    }
  }

 private:
  std::mt19937_64 rng_;
};

void check_invariants(const SafetensorsHeader& h, const std::string& img) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(img[i]);
  ASSERT_EQ(h.data_start, 8 + n);
  ASSERT_LE(h.data_start, img.size());
  uint64_t expect = 0;
  for (const SafetensorsEntry& e : h.entries) {
    ASSERT_EQ(e.begin, expect) << e.name;
    ASSERT_LE(e.begin, e.end);
    unsigned __int128 numel = 1;
    for (int64_t d : e.shape) {
      ASSERT_GE(d, 0);
      numel *= static_cast<uint64_t>(d);
    }
    ASSERT_TRUE((numel * bits_of(e.dtype) + 7) / 8 == e.end - e.begin) << e.name;
    ASSERT_LE(h.data_start + e.end, img.size());
    expect = e.end;
  }
  ASSERT_EQ(h.data_start + expect, img.size());
}

TEST(SafetensorsFuzz, HeaderParserAcceptsOrThrowsZo2Error) {
  Gen g(20261125);
  int accepted = 0, rejected = 0, accepted_mutants = 0;
  for (int i = 0; i < 100000; ++i) {
    Gen::File f = g.valid();
    const int json_edits = static_cast<int>(g.r(3)), byte_edits = static_cast<int>(g.r(3));
    for (int k = 0; k < json_edits; ++k) g.edit_json(f);
    std::string img = g.image(f);
    for (int k = 0; k < byte_edits; ++k) g.mutate_bytes(img);
    try {
      const SafetensorsHeader h =
          parse_safetensors_header(reinterpret_cast<const uint8_t*>(img.data()), img.size(), "fuzz");
      check_invariants(h, img);
      if (HasFatalFailure()) FAIL() << "case " << i << ": " << img.substr(0, std::min<size_t>(img.size(), 400));
      ++accepted;
      accepted_mutants += json_edits + byte_edits > 0;
    } catch (const Error&) {
      ++rejected;
    }
  }
  // Both outcomes are well represented, so the invariant checks and the error paths both ran.
  std::printf("accepted %d (%d mutated), rejected %d\n", accepted, accepted_mutants, rejected);
  EXPECT_GT(accepted, 10000);
  EXPECT_GT(rejected, 50000);
  EXPECT_GT(accepted_mutants, 1000);
}

}  // namespace
}  // namespace zo2
