#include "io/safetensors.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "common/error.h"
#include "io/atomic_file.h"

namespace zo2 {

namespace {
constexpr uint64_t kMaxHeader = 100'000'000;  // the reference reader's MAX_HEADER_SIZE

struct DTypeInfo {
  const char* name;
  int bits;
  bool holdable;  // zo2 can make an at::Tensor of it
  at::ScalarType type;
};
// In the reference's Dtype enum order, which its writer sorts by (descending) as "alignment".
const DTypeInfo kDTypes[] = {
    {"BOOL", 8, true, at::kBool},          {"F4", 4, false, at::kByte},          {"F6_E2M3", 6, false, at::kByte},
    {"F6_E3M2", 6, false, at::kByte},      {"U8", 8, true, at::kByte},           {"I8", 8, true, at::kChar},
    {"F8_E5M2", 8, false, at::kByte},      {"F8_E4M3", 8, false, at::kByte},     {"F8_E8M0", 8, false, at::kByte},
    {"F8_E4M3FNUZ", 8, false, at::kByte},  {"F8_E5M2FNUZ", 8, false, at::kByte}, {"I16", 16, true, at::kShort},
    {"U16", 16, false, at::kByte},         {"F16", 16, true, at::kHalf},         {"BF16", 16, true, at::kBFloat16},
    {"I32", 32, true, at::kInt},           {"U32", 32, false, at::kByte},        {"F32", 32, true, at::kFloat},
    {"C64", 64, false, at::kByte},         {"F64", 64, true, at::kDouble},       {"I64", 64, true, at::kLong},
    {"U64", 64, false, at::kByte},
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

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path), map_(MappedFile::open(path)) {
  header_ = parse_safetensors_header(map_->data(), map_->size(), path);
  for (size_t i = 0; i < header_.entries.size(); ++i) index_[header_.entries[i].name] = i;
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = index_.find(name);
  ZO2_REQUIRE(it != index_.end(), path_, ": tensor ", name, " is missing");
  return header_.entries[it->second];
}

at::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  return mapped_tensor(map_, header_.data_start + e.begin, e.shape, safetensors_scalar_type(e.dtype, path_, name));
}

namespace {
size_t dtype_rank(at::ScalarType t) {
  const std::string name = safetensors_dtype_name(t);
  for (size_t i = 0; i < sizeof kDTypes / sizeof kDTypes[0]; ++i)
    if (name == kDTypes[i].name) return i;
  return 0;
}
}  // namespace

SafetensorsLayout plan_safetensors(const std::vector<SafetensorsTensorSpec>& specs,
                                   const std::map<std::string, std::string>& metadata) {
  std::vector<const SafetensorsTensorSpec*> order;
  std::set<std::string> names;
  for (const SafetensorsTensorSpec& s : specs) {
    ZO2_REQUIRE(names.insert(s.name).second && s.name != "__metadata__", "safetensors writer: tensor name '",
                s.name, "' is reserved or used twice");
    order.push_back(&s);
  }
  // The reference writer's order: descending dtype rank, then name.
  std::sort(order.begin(), order.end(), [](const SafetensorsTensorSpec* a, const SafetensorsTensorSpec* b) {
    const size_t ra = dtype_rank(a->dtype), rb = dtype_rank(b->dtype);
    return ra != rb ? ra > rb : a->name < b->name;
  });
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (!metadata.empty()) j["__metadata__"] = metadata;
  SafetensorsLayout layout;
  uint64_t offset = 0;
  for (const SafetensorsTensorSpec* s : order) {
    SafetensorsEntry e;
    e.name = s->name;
    e.dtype = safetensors_dtype_name(s->dtype);
    e.shape = s->shape;
    uint64_t numel = 1;
    for (int64_t d : s->shape) numel *= static_cast<uint64_t>(d);
    e.begin = offset;
    e.end = offset += numel * c10::elementSize(s->dtype);
    j[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {e.begin, e.end}}};
    layout.entries.push_back(std::move(e));
  }
  std::string text = j.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');
  layout.header.resize(8);
  for (int i = 0; i < 8; ++i) layout.header[i] = static_cast<char>((uint64_t(text.size()) >> (8 * i)) & 0xff);
  layout.header += text;
  return layout;
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsTensorSpec>& specs,
                       const std::map<std::string, std::string>& metadata,
                       const std::function<at::Tensor(const SafetensorsTensorSpec&)>& get) {
  const SafetensorsLayout layout = plan_safetensors(specs, metadata);
  std::map<std::string, const SafetensorsTensorSpec*> by_name;
  for (const SafetensorsTensorSpec& s : specs) by_name[s.name] = &s;
  AtomicFile out(path);
  out.write(layout.header.data(), layout.header.size());
  for (const SafetensorsEntry& e : layout.entries) {
    const SafetensorsTensorSpec& spec = *by_name.at(e.name);
    at::Tensor t = get(spec);
    ZO2_REQUIRE(t.defined() && t.scalar_type() == spec.dtype && t.sizes().vec() == spec.shape, path,
                ": tensor ", e.name, " handed to the writer is not ", e.dtype, " ", at::IntArrayRef(spec.shape));
    t = t.to(at::kCPU).contiguous();
    out.write(t.data_ptr(), e.end - e.begin);  // safetensors data is little-endian, as is every host zo2 runs on
  }
  out.commit();
}

}  // namespace zo2
