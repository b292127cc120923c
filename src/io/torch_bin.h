// pytorch_model.bin files (torch.save of a state dict: a zip archive holding data.pkl and raw storages).
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

namespace zo2 {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// The command printed when a .bin cannot be read (scripts/convert_bin_to_safetensors.py).
std::string bin_conversion_hint(const std::string& checkpoint_dir);

// Every tensor of the state dict, on the CPU in its stored dtype, possibly non-contiguous views of
// shared storages. Our reader first validates everything but the tensor bytes -- zip structure, data.pkl
// (CRC-32, then the pickle subset of torch_pickle.h), every storage record against the views on it --
// so no malformed file reaches LibTorch (whose 1.13 unpickler does not bounds-check views). Then:
//  - plain dict: LibTorch reads it (PyTorchStreamReader + readArchiveAndTensors: each storage is read
//    once into memory, the file is never held whole); should LibTorch fail, our reader does;
//  - top-level collections.OrderedDict, which LibTorch's unpickler rejects and which every hub OPT .bin
//    is: our reader, whose tensors view the memory-mapped file (nothing copied).
// Throws zo2::Error naming the file (and tensor); a pickle outside the subset names the conversion
// command (bin_conversion_hint).
NamedTensors read_torch_bin(const std::string& path);

// Each reader alone (for tests): LibTorch's throws c10::Error on OrderedDict files.
NamedTensors read_torch_bin_own(const std::string& path);
NamedTensors read_torch_bin_libtorch(const std::string& path);

}  // namespace zo2
