// pytorch_model.bin: our zip/pickle reader against LibTorch's (an independent implementation) on the
// files torch 2.11 wrote (tests/data/parity/variants, scripts/ref/make_parity.py), and robustness of our
// reader against mutated inputs (accept, or throw zo2::Error; never crash or throw anything else).
#include <gtest/gtest.h>

#include <random>

#include "io/torch_bin.h"
#include "io/torch_pickle.h"
#include "io/zip_archive.h"
#include "test_io_util.h"

namespace zo2 {
namespace {

std::map<std::string, at::Tensor> as_map(const NamedTensors& v) {
  std::map<std::string, at::Tensor> m;
  for (const auto& [k, t] : v) m[k] = t;
  return m;
}

TEST(TorchBin, OwnReaderMatchesLibTorchOnPlainDicts) {
  for (const char* f : {"parity/variants/bin_dict/pytorch_model.bin",
                        "parity/variants/bin_sharded/pytorch_model-00001-of-00002.bin",
                        "parity/variants/bin_sharded/pytorch_model-00002-of-00002.bin"}) {
    SCOPED_TRACE(f);
    const auto ours = as_map(read_torch_bin_own(test::data_path(f)));
    const auto theirs = as_map(read_torch_bin_libtorch(test::data_path(f)));
    ASSERT_EQ(ours.size(), theirs.size());
    ASSERT_GT(ours.size(), 10u);
    for (const auto& [k, t] : theirs) {
      ASSERT_TRUE(ours.count(k)) << k;
      EXPECT_EQ(ours.at(k).scalar_type(), t.scalar_type()) << k;
      EXPECT_TRUE(at::equal(ours.at(k), t)) << k;
    }
  }
}

TEST(TorchBin, LibTorchRejectsOrderedDictsWhichOurReaderReads) {
  // known-facts.md: LibTorch's unpickler maps collections.OrderedDict to None. If it ever learns to read
  // them, this test says so and the fallback can go.
  const std::string ordered = test::data_path("parity/variants/bin_ordered/pytorch_model.bin");
  EXPECT_ANY_THROW(read_torch_bin_libtorch(ordered));
  const auto ours = as_map(read_torch_bin(ordered));
  // Same model as bin_dict (fp32, model.decoder.* keys, lm_head) stored as fp16 with decoder.* keys.
  const auto f32 = as_map(read_torch_bin(test::data_path("parity/variants/bin_dict/pytorch_model.bin")));
  ASSERT_EQ(ours.size() + 1, f32.size());  // no lm_head
  for (const auto& [k, t] : ours) {
    ASSERT_EQ(k.rfind("decoder.", 0), 0u) << k;
    EXPECT_EQ(t.scalar_type(), at::kHalf);
    EXPECT_TRUE(at::equal(t, f32.at("model." + k).to(at::kHalf))) << k;
  }
}

uint64_t le(const std::string& b, size_t p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[p + i]);
  return v;
}
void put(std::string& out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Rewrites a small torch.save zip in the form files above 4 GB take: every central directory entry's
// sizes and local header offset 0xFFFFFFFF with a zip64 extra field (id 1) holding them, a zip64 end
// record and locator, and an end record whose count/size/offset fields say "see zip64".
std::string to_zip64(const std::string& zip) {
  const size_t end = zip.size() - 22;
  EXPECT_EQ(le(zip, end, 4), 0x06054b50u);
  const uint64_t count = le(zip, end + 10, 2), cd_size = le(zip, end + 12, 4), cd_offset = le(zip, end + 16, 4);
  std::string cd;
  for (size_t pos = cd_offset, i = 0; i < count; ++i) {
    const uint64_t name = le(zip, pos + 28, 2), extra = le(zip, pos + 30, 2), comment = le(zip, pos + 32, 2);
    std::string e = zip.substr(pos, 46);
    for (size_t f : {20, 24, 42}) e.replace(f, 4, "\xff\xff\xff\xff");
    e.replace(30, 2, std::string{static_cast<char>((extra + 28) & 0xff), static_cast<char>((extra + 28) >> 8)});
    e += zip.substr(pos + 46, name + extra);
    put(e, 1, 2);
    put(e, 24, 2);
    put(e, le(zip, pos + 24, 4), 8);  // uncompressed size
    put(e, le(zip, pos + 20, 4), 8);  // compressed size
    put(e, le(zip, pos + 42, 4), 8);  // local header offset
    e += zip.substr(pos + 46 + name + extra, comment);
    cd += e;
    pos += 46 + name + extra + comment;
  }
  EXPECT_EQ(cd.size(), cd_size + 28 * count);
  std::string out = zip.substr(0, cd_offset) + cd;
  const uint64_t end64 = out.size();
  put(out, 0x06064b50, 4);
  put(out, 44, 8);
  put(out, 45, 2);
  put(out, 45, 2);
  put(out, 0, 4);
  put(out, 0, 4);
  put(out, count, 8);
  put(out, count, 8);
  put(out, cd.size(), 8);
  put(out, cd_offset, 8);
  put(out, 0x07064b50, 4);
  put(out, 0, 4);
  put(out, end64, 8);
  put(out, 1, 4);
  put(out, 0x06054b50, 4);
  put(out, 0, 4);
  put(out, 0xffff, 2);
  put(out, 0xffff, 2);
  put(out, 0xffffffff, 4);
  put(out, 0xffffffff, 4);
  put(out, 0, 2);
  return out;
}

TEST(TorchBin, ReadsZip64Archives) {
  // LibTorch's miniz reading the rewritten file shows it is valid zip64; ours must read the same tensors.
  const std::string path = test::temp_dir("zip64") + "/pytorch_model.bin";
  test::write_bytes(path, to_zip64(test::read_bytes(test::data_path("parity/variants/bin_dict/pytorch_model.bin"))));
  const auto theirs = as_map(read_torch_bin_libtorch(path));
  const auto ours = as_map(read_torch_bin_own(path));
  const auto plain = as_map(read_torch_bin_own(test::data_path("parity/variants/bin_dict/pytorch_model.bin")));
  ASSERT_EQ(ours.size(), plain.size());
  ASSERT_EQ(theirs.size(), plain.size());
  for (const auto& [k, t] : plain) {
    EXPECT_TRUE(at::equal(ours.at(k), t)) << k;
    EXPECT_TRUE(at::equal(theirs.at(k), t)) << k;
  }
}

// Our pickle interpreter on data.pkl images mutated by byte flips, byte insertions of interesting
// opcodes and truncation. 20k cases, seeded.
TEST(TorchBin, PickleParserNeverCrashesOnMutations) {
  for (const char* file : {"parity/variants/bin_ordered/pytorch_model.bin", "parity/variants/bin_dict/pytorch_model.bin"}) {
    ZipArchive zip(MappedFile::open(test::data_path(file)));
    const ZipEntry* pkl = nullptr;
    for (const ZipEntry& e : zip.entries())
      if (e.name.size() > 8 && e.name.compare(e.name.size() - 8, 8, "data.pkl") == 0) pkl = &e;
    ASSERT_TRUE(pkl);
    const std::string good(reinterpret_cast<const char*>(zip.checked_data(*pkl)), pkl->size);
    ASSERT_GT(parse_state_dict_pickle(reinterpret_cast<const uint8_t*>(good.data()), good.size(), "x").tensors.size(), 10u);
    std::mt19937_64 rng(1234);
    const std::string ops = "\x80}(XqrhjcQKMJ\x8at)\x85\x86\x87\x88\x89NRsu.";
    int accepted = 0, rejected = 0;
    for (int i = 0; i < 10000; ++i) {
      std::string m = good;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        const size_t at = rng() % m.size();
        switch (rng() % 4) {
          case 0: m[at] = static_cast<char>(rng()); break;
          case 1: m[at] = ops[rng() % ops.size()]; break;
          case 2: m.insert(at, 1, ops[rng() % ops.size()]); break;
          default: m.resize(at + 1); break;
        }
      }
      try {
        const PickledStateDict sd = parse_state_dict_pickle(reinterpret_cast<const uint8_t*>(m.data()), m.size(), "x");
        for (const PickledTensor& t : sd.tensors) {  // the invariant the reader relies on
          int64_t last = t.offset;
          bool empty = false;
          for (size_t d = 0; d < t.sizes.size(); ++d) {
            empty |= t.sizes[d] == 0;
            if (t.sizes[d] > 0) last += (t.sizes[d] - 1) * t.strides[d];
          }
          ASSERT_TRUE(empty || last < t.storage_numel) << t.name;
        }
        ++accepted;
      } catch (const Error&) {
        ++rejected;
      }
    }
    EXPECT_GT(rejected, 1000);
    EXPECT_GT(accepted, 10);  // some mutations (e.g. inside tensor names) keep the pickle valid
  }
}

// The whole .bin reader on files mutated in their zip structure (headers, sizes, offsets) and
// truncated: 600 seeded cases, each must load or throw zo2::Error.
TEST(TorchBin, ZipReaderNeverCrashesOnMutations) {
  const std::string good = test::read_bytes(test::data_path("parity/variants/bin_ordered/pytorch_model.bin"));
  const std::string dir = test::temp_dir("zipfuzz");
  std::vector<size_t> headers;  // positions of zip signatures: mutate near them
  for (size_t p = good.find("PK"); p != std::string::npos; p = good.find("PK", p + 1)) headers.push_back(p);
  std::mt19937_64 rng(99);
  int rejected = 0;
  for (int i = 0; i < 600; ++i) {
    std::string m = good;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const size_t at = std::min(m.size() - 1, headers[rng() % headers.size()] + rng() % 48);
      if (rng() % 8 == 0)
        m.resize(rng() % m.size());
      else
        m[at] = rng() % 2 ? static_cast<char>(rng()) : static_cast<char>(0xff);
      if (m.empty()) m = "P";
    }
    const std::string path = dir + "/m" + std::to_string(i) + ".bin";
    test::write_bytes(path, m);
    try {
      for (const auto& [k, t] : read_torch_bin(path)) t.sum();  // touch the data
    } catch (const Error&) {
      ++rejected;
    }
    std::filesystem::remove(path);
  }
  EXPECT_GT(rejected, 100);
}

}  // namespace
}  // namespace zo2
