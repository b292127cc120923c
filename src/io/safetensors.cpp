#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "common/error.h"

namespace zo2 {

namespace {
constexpr uint64_t kMaxHeader = 100'000'000;  // the reference reader's MAX_HEADER_SIZE

struct DTypeInfo {
  const char* name;
  int bits;
  bool holdable;  // zo2 can make an at::Tensor of it
  at::ScalarType type;
};
const DTypeInfo kDTypes[] = {
    {"BOOL", 8, true, at::kBool},         {"U8", 8, true, at::kByte},        {"I8", 8, true, at::kChar},
    {"I16", 16, true, at::kShort},        {"I32", 32, true, at::kInt},       {"I64", 64, true, at::kLong},
    {"F16", 16, true, at::kHalf},         {"BF16", 16, true, at::kBFloat16}, {"F32", 32, true, at::kFloat},
    {"F64", 64, true, at::kDouble},       {"U16", 16, false, at::kByte},     {"U32", 32, false, at::kByte},
    {"U64", 64, false, at::kByte},        {"C64", 64, false, at::kByte},     {"F8_E5M2", 8, false, at::kByte},
    {"F8_E4M3", 8, false, at::kByte},     {"F8_E8M0", 8, false, at::kByte},  {"F8_E4M3FNUZ", 8, false, at::kByte},
    {"F8_E5M2FNUZ", 8, false, at::kByte}, {"F4", 4, false, at::kByte},       {"F6_E2M3", 6, false, at::kByte},
    {"F6_E3M2", 6, false, at::kByte},
};

const DTypeInfo& dtype_info(const std::string& dtype, const std::string& path, const std::string& tensor) {
  for (const DTypeInfo& d : kDTypes)
    if (dtype == d.name) return d;
  throw_error(path, ": tensor ", tensor, ": unknown dtype \"", dtype, "\"");
}
}  // namespace

int safetensors_dtype_size(const std::string& dtype, const std::string& path, const std::string& tensor) {
  const DTypeInfo& d = dtype_info(dtype, path, tensor);
  return d.holdable ? d.bits / 8 : 0;
}

at::ScalarType safetensors_scalar_type(const std::string& dtype, const std::string& path,
                                       const std::string& tensor) {
  const DTypeInfo& d = dtype_info(dtype, path, tensor);
  ZO2_REQUIRE(d.holdable, path, ": tensor ", tensor, ": dtype ", dtype, " is not supported by zo2");
  return d.type;
}

const char* safetensors_dtype_name(at::ScalarType t) {
  for (const DTypeInfo& d : kDTypes)
    if (d.holdable && d.type == t) return d.name;
  throw_error("no safetensors dtype for ", t);
}

SafetensorsHeader parse_safetensors_header(const uint8_t* data, uint64_t size, const std::string& path) {
  using nlohmann::json;
  ZO2_REQUIRE(size >= 8, path, ": truncated safetensors file (", size, " bytes, the header length alone is 8)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];  // little-endian u64
  ZO2_REQUIRE(n <= kMaxHeader, path, ": header length ", n, " exceeds the 100 MB limit");
  ZO2_REQUIRE(n <= size - 8, path, ": header length ", n, " runs past the end of the file (", size, " bytes)");

  // Duplicate top-level keys are an error in safetensors; nlohmann keeps the last silently, so count keys.
  std::set<std::string> seen;
  std::string dup;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (depth == 1 && ev == json::parse_event_t::key && !seen.insert(parsed.get<std::string>()).second)
      dup = parsed.get<std::string>();
    return true;
  };
  json j;
  try {
    j = json::parse(data + 8, data + 8 + n, cb);
  } catch (const json::exception& e) {
    throw_error(path, ": header is not valid JSON: ", e.what());
  }
  ZO2_REQUIRE(dup.empty(), path, ": tensor ", dup, " appears twice in the header");
  ZO2_REQUIRE(j.is_object(), path, ": header must be a JSON object");

  SafetensorsHeader h;
  h.data_start = 8 + n;
  const uint64_t data_size = size - h.data_start;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      ZO2_REQUIRE(v.is_object(), path, ": __metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        ZO2_REQUIRE(m.value().is_string(), path, ": __metadata__ value of '", m.key(), "' is not a string");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    ZO2_REQUIRE(v.is_object(), path, ": tensor ", name, ": entry must be an object");
    ZO2_REQUIRE(v.contains("dtype") && v["dtype"].is_string(), path, ": tensor ", name, ": missing string 'dtype'");
    ZO2_REQUIRE(v.contains("shape") && v["shape"].is_array(), path, ": tensor ", name, ": missing array 'shape'");
    ZO2_REQUIRE(v.contains("data_offsets") && v["data_offsets"].is_array() && v["data_offsets"].size() == 2, path,
                ": tensor ", name, ": 'data_offsets' must be [begin, end]");
    SafetensorsEntry e;
    e.name = name;
    e.dtype = v["dtype"].get<std::string>();
    const DTypeInfo& d = dtype_info(e.dtype, path, name);
    // numel * bits / 8 with overflow checks (shapes come from the file)
    unsigned __int128 numel = 1;
    for (const json& s : v["shape"]) {
      ZO2_REQUIRE(s.is_number_unsigned() || (s.is_number_integer() && s.get<int64_t>() >= 0), path, ": tensor ", name,
                  ": shape entries must be non-negative integers");
      const uint64_t dim = s.get<uint64_t>();
      ZO2_REQUIRE(dim <= (uint64_t(1) << 62), path, ": tensor ", name, ": dimension ", dim, " is too large");
      e.shape.push_back(static_cast<int64_t>(dim));
      numel *= dim;
      ZO2_REQUIRE(numel <= (static_cast<unsigned __int128>(1) << 64), path, ": tensor ", name,
                  ": element count overflows");
    }
    for (int k = 0; k < 2; ++k)
      ZO2_REQUIRE(v["data_offsets"][k].is_number_unsigned() ||
                      (v["data_offsets"][k].is_number_integer() && v["data_offsets"][k].get<int64_t>() >= 0),
                  path, ": tensor ", name, ": data_offsets must be non-negative integers");
    e.begin = v["data_offsets"][0].get<uint64_t>();
    e.end = v["data_offsets"][1].get<uint64_t>();
    ZO2_REQUIRE(e.begin <= e.end, path, ": tensor ", name, ": data_offsets [", e.begin, ", ", e.end, "] are reversed");
    ZO2_REQUIRE(e.end <= data_size, path, ": tensor ", name, ": data_offsets end ", e.end, " is past the end of the data (",
                data_size, " bytes)");
    const unsigned __int128 bytes = (numel * d.bits + 7) / 8;
    ZO2_REQUIRE(bytes == e.end - e.begin, path, ": tensor ", name, ": ", e.end - e.begin, " bytes for shape ",
                at::IntArrayRef(e.shape), " of ", e.dtype, " (needs ", static_cast<uint64_t>(bytes), ")");
    h.entries.push_back(std::move(e));
  }
  std::sort(h.entries.begin(), h.entries.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expect = 0;
  for (const SafetensorsEntry& e : h.entries) {
    ZO2_REQUIRE(e.begin >= expect, path, ": tensor ", e.name, ": data overlaps the previous tensor (begins at ",
                e.begin, ", previous ends at ", expect, ")");
    ZO2_REQUIRE(e.begin == expect, path, ": tensor ", e.name, ": gap in the data section before it (begins at ",
                e.begin, ", previous ends at ", expect, ")");
    expect = e.end;
  }
  ZO2_REQUIRE(expect == data_size, path, ": data section has ", data_size, " bytes but the tensors cover ", expect);
  return h;
}

struct SafetensorsFile::Mapping {
  void* addr = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (addr && addr != MAP_FAILED) munmap(addr, size);
  }
};

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path), map_(std::make_shared<Mapping>()) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ZO2_REQUIRE(fd >= 0, path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw_error(path, ": cannot stat: ", std::strerror(errno));
  }
  map_->size = static_cast<size_t>(st.st_size);
  if (map_->size > 0) {
    // copy-on-write: a stray write into a view changes private pages, never the file
    map_->addr = ::mmap(nullptr, map_->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);
    ZO2_REQUIRE(map_->addr != MAP_FAILED, path, ": mmap failed: ", std::strerror(err));
  } else {
    ::close(fd);
  }
  static const uint8_t kEmpty[1] = {0};
  const uint8_t* base = map_->size ? static_cast<const uint8_t*>(map_->addr) : kEmpty;
  header_ = parse_safetensors_header(base, map_->size, path);
  for (size_t i = 0; i < header_.entries.size(); ++i) index_[header_.entries[i].name] = i;
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = index_.find(name);
  ZO2_REQUIRE(it != index_.end(), path_, ": tensor ", name, " is missing");
  return header_.entries[it->second];
}

at::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  const at::ScalarType t = safetensors_scalar_type(e.dtype, path_, name);
  auto keep = map_;
  uint8_t* p = static_cast<uint8_t*>(map_->addr) + header_.data_start + e.begin;
  if (e.end == e.begin) return at::empty(e.shape, at::TensorOptions().dtype(t));
  return at::from_blob(p, e.shape, [keep](void*) {}, at::TensorOptions().dtype(t));
}

}  // namespace zo2
