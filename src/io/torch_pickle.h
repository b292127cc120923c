// The pickle inside a torch.save'd state dict (data.pkl), read by a small interpreter for exactly the
// opcodes and globals such files use (tech.md §3): a dict or collections.OrderedDict from names to
// torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]), the
// storages being persistent ids ("storage", torch.<T>Storage, key, location, numel). Nothing is executed.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace zo2 {

struct PickledTensor {
  std::string name;            // state-dict key
  std::string storage;         // storage record key (the zip entry <archive>/data/<storage>)
  at::ScalarType dtype;
  int64_t storage_numel = 0;   // elements in the storage
  int64_t offset = 0;          // storage offset, in elements
  std::vector<int64_t> sizes, strides;
};

struct PickledStateDict {
  bool ordered_dict = false;  // top level is collections.OrderedDict (LibTorch's unpickler rejects these)
  std::vector<PickledTensor> tensors;  // in pickle order
};

// Parses `size` bytes of data.pkl. Throws zo2::Error naming `path` (and the byte offset or key) for any
// opcode, global or structure outside this subset, for truncation, duplicate keys and for tensors whose
// size/stride/offset reach outside their storage.
PickledStateDict parse_state_dict_pickle(const uint8_t* data, size_t size, const std::string& path);

}  // namespace zo2
