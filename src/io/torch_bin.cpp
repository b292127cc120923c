#include "io/torch_bin.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/import_read.h>

#include <filesystem>

#include "common/error.h"
#include "io/mapped_file.h"
#include "io/torch_pickle.h"
#include "io/zip_archive.h"

namespace zo2 {

namespace {

// The archive's top-level folder (any name; torch uses the file stem) holding data.pkl.
std::string archive_prefix(const ZipArchive& zip) {
  for (const ZipEntry& e : zip.entries()) {
    const size_t slash = e.name.find('/');
    if (slash != std::string::npos && e.name.compare(slash, std::string::npos, "/data.pkl") == 0)
      return e.name.substr(0, slash + 1);
  }
  throw_error(zip.file()->path(), ": not a torch.save archive (no <archive>/data.pkl entry)");
}

struct OwnArchive {
  std::unique_ptr<ZipArchive> zip;
  std::string prefix;
  PickledStateDict sd;
  std::vector<const ZipEntry*> records;  // storage record of each tensor
};

// Opens and validates everything but the tensor bytes: zip structure, byte order, data.pkl (CRC and
// pickle), and that every tensor's storage record exists, is stored and is large enough.
OwnArchive open_own(const std::string& path) {
  OwnArchive a;
  a.zip = std::make_unique<ZipArchive>(MappedFile::open(path));
  a.prefix = archive_prefix(*a.zip);
  if (const ZipEntry* bo = a.zip->find(a.prefix + "byteorder")) {
    const uint8_t* p = a.zip->checked_data(*bo);
    ZO2_REQUIRE(std::string(reinterpret_cast<const char*>(p), bo->size) == "little", path,
                ": big-endian tensor data is not supported");
  }
  const ZipEntry& pkl = *a.zip->find(a.prefix + "data.pkl");
  const uint8_t* bytes = a.zip->checked_data(pkl);
  try {
    a.sd = parse_state_dict_pickle(bytes, pkl.size, path);
  } catch (const Error& e) {  // a pickle outside our subset may still be readable by Python
    throw_error(e.what(), "; ", bin_conversion_hint(std::filesystem::path(path).parent_path().string()));
  }
  for (const PickledTensor& t : a.sd.tensors) {
    const ZipEntry* rec = a.zip->find(a.prefix + "data/" + t.storage);
    ZO2_REQUIRE(rec, path, ": tensor ", t.name, ": storage record data/", t.storage, " is missing");
    const uint64_t bytes_needed = static_cast<uint64_t>(t.storage_numel) * c10::elementSize(t.dtype);
    ZO2_REQUIRE(rec->method == 0 && rec->size >= bytes_needed, path, ": tensor ", t.name, ": storage record data/",
                t.storage, " holds ", rec->size, " bytes, needs ", bytes_needed, " (stored)");
    a.records.push_back(rec);
  }
  return a;
}

NamedTensors tensors_own(const OwnArchive& a) {
  NamedTensors out;
  for (size_t i = 0; i < a.sd.tensors.size(); ++i) {
    const PickledTensor& t = a.sd.tensors[i];
    at::Tensor storage = mapped_tensor(a.zip->file(), a.records[i]->offset, {t.storage_numel}, t.dtype);
    out.emplace_back(t.name, storage.as_strided(t.sizes, t.strides, t.offset));
  }
  return out;
}

}  // namespace

NamedTensors read_torch_bin_libtorch(const std::string& path) {
  caffe2::serialize::PyTorchStreamReader reader(path);
  const c10::IValue v = torch::jit::readArchiveAndTensors("data", "", "", {}, {}, {}, reader);
  ZO2_REQUIRE(v.isGenericDict(), path, ": data.pkl is not a dict");
  NamedTensors out;
  for (const auto& kv : v.toGenericDict()) {
    ZO2_REQUIRE(kv.key().isString() && kv.value().isTensor(), path, ": state dict entry is not name -> tensor");
    out.emplace_back(kv.key().toStringRef(), kv.value().toTensor());
  }
  return out;
}

std::string bin_conversion_hint(const std::string& checkpoint_dir) {
  return "convert it to safetensors with: python3 scripts/convert_bin_to_safetensors.py " +
         (checkpoint_dir.empty() ? std::string(".") : checkpoint_dir);
}

NamedTensors read_torch_bin_own(const std::string& path) { return tensors_own(open_own(path)); }

NamedTensors read_torch_bin(const std::string& path) {
  const OwnArchive a = open_own(path);
  if (a.sd.ordered_dict) return tensors_own(a);
  try {
    return read_torch_bin_libtorch(path);
  } catch (const std::exception&) {  // a file our reader validated: read it ourselves
    return tensors_own(a);
  }
}

}  // namespace zo2
