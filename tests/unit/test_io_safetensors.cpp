// The safetensors writer's layout against the format rules (tech.md §2; byte-identity with the
// reference writer is tested in test_io_save.cpp) and the reader's handling of unaligned data.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "test_io_util.h"

namespace zo2 {
namespace {

TEST(Safetensors, PlanSortsByDescendingDtypeThenNameAndPadsTheHeader) {
  const std::vector<SafetensorsTensorSpec> specs = {
      {"b", at::kHalf, {3}}, {"a", at::kHalf, {1}}, {"z", at::kBFloat16, {2}},
      {"c", at::kFloat, {2, 2}}, {"d", at::kLong, {}}, {"e", at::kByte, {5}}, {"f", at::kDouble, {0}}};
  const SafetensorsLayout l = plan_safetensors(specs, {{"format", "pt"}});
  std::vector<std::string> order;
  for (const SafetensorsEntry& e : l.entries) order.push_back(e.name);
  // The reference Dtype order: ... U8 < F16 < BF16 < F32 < F64 < I64; sorted descending, ties by name.
  EXPECT_EQ(order, (std::vector<std::string>{"d", "f", "c", "z", "a", "b", "e"}));
  EXPECT_EQ(l.header.size() % 8, 0u);
  const std::string json = l.header.substr(8);
  EXPECT_EQ(json.rfind("{\"__metadata__\":{\"format\":\"pt\"},\"d\":{\"dtype\":\"I64\",\"shape\":[],", 0), 0u) << json;
  EXPECT_EQ(json.find_last_not_of(' '), json.find_last_of('}'));
  // every tensor starts aligned to its element size when the data section is 8-aligned
  for (const SafetensorsEntry& e : l.entries)
    EXPECT_EQ(e.begin % safetensors_dtype_size(e.dtype, "", e.name), 0u) << e.name;
}

TEST(Safetensors, WriteThenReadRoundTrips) {
  const std::string path = test::temp_dir("st_rt") + "/x.safetensors";
  std::map<std::string, at::Tensor> m = {{"h", at::randn({3, 5}).to(at::kHalf)},
                                         {"f", at::randn({7}).t()},
                                         {"i", at::arange(6, at::kLong).view({2, 3}).t()},  // non-contiguous
                                         {"e", at::zeros({0, 4})}};
  std::vector<SafetensorsTensorSpec> specs;
  for (auto& [k, t] : m) specs.push_back({k, t.scalar_type(), t.sizes().vec()});
  write_safetensors(path, specs, {}, [&](const SafetensorsTensorSpec& s) { return m[s.name]; });
  SafetensorsFile f(path);
  EXPECT_TRUE(f.header().metadata.empty());
  for (auto& [k, t] : m) {
    EXPECT_EQ(f.entry(k).dtype, safetensors_dtype_name(t.scalar_type()));
    EXPECT_TRUE(at::equal(f.tensor(k), t)) << k;
  }
  test::expect_error([&] {
    write_safetensors(path, specs, {}, [&](const SafetensorsTensorSpec& s) { return m[s.name].to(at::kDouble); });
  }, {path, "is not"});
  EXPECT_TRUE(at::equal(SafetensorsFile(path).tensor("h"), m["h"]));  // the failed write left the file alone
}

TEST(Safetensors, UnalignedDataIsCopiedNotViewed) {
  // A legal file whose header length (9) leaves the F32 data at file offset 17: not 4-aligned.
  const std::string json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  std::string img(8, '\0');
  img[0] = static_cast<char>(json.size());
  img += json;
  const float v[2] = {1.5f, -2.25f};
  img.append(reinterpret_cast<const char*>(v), 8);
  ASSERT_NE((8 + json.size()) % 4, 0u);
  const std::string path = test::temp_dir("st_unaligned") + "/u.safetensors";
  test::write_bytes(path, img);
  const at::Tensor t = SafetensorsFile(path).tensor("a");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data_ptr()) % 4, 0u);
  EXPECT_EQ(t[0].item<float>(), 1.5f);
  EXPECT_EQ(t[1].item<float>(), -2.25f);
}

}  // namespace
}  // namespace zo2
