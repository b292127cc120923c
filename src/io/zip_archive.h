// A minimal reader for zip archives whose entries are stored uncompressed, as torch.save writes them
// (central directory, zip64 included). Entries are byte ranges of the memory-mapped file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/mapped_file.h"

namespace zo2 {

struct ZipEntry {
  std::string name;
  uint64_t offset = 0;  // of the data in the file
  uint64_t size = 0;
  uint32_t crc32 = 0;
  uint16_t method = 0;  // 0 = stored
};

class ZipArchive {
 public:
  // Parses and bounds-checks the central directory and every local header. Throws zo2::Error naming the
  // file (and entry) for anything malformed.
  explicit ZipArchive(std::shared_ptr<const MappedFile> file);
  const std::shared_ptr<const MappedFile>& file() const { return file_; }
  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;  // null when absent
  // The bytes of a stored entry, checked against its CRC-32 (for small entries such as data.pkl).
  const uint8_t* checked_data(const ZipEntry& e) const;

 private:
  std::shared_ptr<const MappedFile> file_;
  std::vector<ZipEntry> entries_;
};

uint32_t crc32(const uint8_t* data, size_t n);

}  // namespace zo2
