// safetensors files (huggingface/safetensors format): memory-mapped reading with full validation.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/mapped_file.h"

namespace zo2 {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;            // "F16", "BF16", "F32", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets relative to the data section
};

struct SafetensorsHeader {
  uint64_t data_start = 0;                      // 8 + header length
  std::vector<SafetensorsEntry> entries;        // sorted by begin
  std::map<std::string, std::string> metadata;  // "__metadata__"
};

// Parses and validates the header of a whole file image of `size` bytes. Throws zo2::Error naming `path`
// (and the tensor, where one is at fault) for every malformation: short file, header length past the
// end, invalid JSON, duplicate or malformed entries, unknown dtype, offsets that overlap, leave gaps or
// run past the end, sizes that disagree with shape x dtype.
SafetensorsHeader parse_safetensors_header(const uint8_t* data, uint64_t size, const std::string& path);

// Element size of a safetensors dtype string, or 0 when the dtype is not one zo2 can hold as a tensor.
// Throws for strings that are not safetensors dtypes at all.
int safetensors_dtype_size(const std::string& dtype, const std::string& path, const std::string& tensor);
at::ScalarType safetensors_scalar_type(const std::string& dtype, const std::string& path,
                                       const std::string& tensor);
const char* safetensors_dtype_name(at::ScalarType t);

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const std::string& path() const { return path_; }
  const SafetensorsHeader& header() const { return header_; }
  bool has(const std::string& name) const { return index_.count(name) != 0; }
  const SafetensorsEntry& entry(const std::string& name) const;
  // A CPU tensor viewing the mapped bytes (no copy; see mapped_tensor); it keeps the mapping alive.
  at::Tensor tensor(const std::string& name) const;

 private:
  std::string path_;
  std::shared_ptr<const MappedFile> map_;
  SafetensorsHeader header_;
  std::map<std::string, size_t> index_;
};

// Writing. A tensor to be written: name, dtype and shape (the data comes later, one tensor at a time).
struct SafetensorsTensorSpec {
  std::string name;
  at::ScalarType dtype;
  std::vector<int64_t> shape;
};

struct SafetensorsLayout {
  std::string header;                     // 8-byte length + JSON padded with spaces to a multiple of 8
  std::vector<SafetensorsEntry> entries;  // in file order
};

// The header and data layout the reference writer (safetensors' serialize) produces: tensors sorted by
// descending dtype (its "alignment" order) then name, "__metadata__" first, compact JSON, space padding.
SafetensorsLayout plan_safetensors(const std::vector<SafetensorsTensorSpec>& specs,
                                   const std::map<std::string, std::string>& metadata);

// Writes `path` atomically (io/atomic_file.h). `get` is called once per tensor, in file order, and must
// return a tensor of exactly the spec's dtype and shape (any device, any strides); only one tensor is
// converted to contiguous CPU memory at a time.
void write_safetensors(const std::string& path, const std::vector<SafetensorsTensorSpec>& specs,
                       const std::map<std::string, std::string>& metadata,
                       const std::function<at::Tensor(const SafetensorsTensorSpec&)>& get);

}  // namespace zo2
