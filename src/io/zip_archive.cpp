#include "io/zip_archive.h"

#include <algorithm>
#include <array>

#include "common/error.h"

namespace zo2 {

namespace {
constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50, kEnd64LocatorSig = 0x07064b50;
constexpr uint64_t kEndSize = 22, kCentralSize = 46, kLocalSize = 30, kLocatorSize = 20, kEnd64Size = 56;

// Little-endian fields of the mapped file, every read bounds-checked.
struct Bytes {
  const uint8_t* p;
  uint64_t size;
  const std::string& path;
  void need(uint64_t pos, uint64_t n, const char* what) const {
    ZO2_REQUIRE(pos <= size && n <= size - pos, path, ": corrupt zip archive: ", what, " at byte ", pos,
                " runs past the end of the file (", size, " bytes)");
  }
  uint64_t le(uint64_t pos, int n) const {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[pos + i];
    return v;
  }
};
}  // namespace

uint32_t crc32(const uint8_t* data, size_t n) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ data[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

ZipArchive::ZipArchive(std::shared_ptr<const MappedFile> file) : file_(std::move(file)) {
  const std::string& path = file_->path();
  const Bytes b{file_->data(), file_->size(), path};
  ZO2_REQUIRE(b.size >= kEndSize, path, ": not a zip archive (", b.size, " bytes, too short)");

  // End of central directory: the last signature within the final 64 KiB + 22 bytes (comment space).
  uint64_t end = b.size - kEndSize;
  const uint64_t lowest = b.size > kEndSize + 0xFFFF ? b.size - kEndSize - 0xFFFF : 0;
  while (b.le(end, 4) != kEndSig) {
    ZO2_REQUIRE(end > lowest, path, ": not a zip archive (no end-of-central-directory record; truncated?)");
    --end;
  }
  uint64_t count = b.le(end + 10, 2), cd_size = b.le(end + 12, 4), cd_offset = b.le(end + 16, 4);
  if (end >= kLocatorSize && b.le(end - kLocatorSize, 4) == kEnd64LocatorSig) {
    const uint64_t z = b.le(end - kLocatorSize + 8, 8);
    b.need(z, kEnd64Size, "zip64 end record");
    ZO2_REQUIRE(b.le(z, 4) == kEnd64Sig, path, ": corrupt zip archive: bad zip64 end record signature");
    count = b.le(z + 32, 8);
    cd_size = b.le(z + 40, 8);
    cd_offset = b.le(z + 48, 8);
  }
  b.need(cd_offset, cd_size, "central directory");
  ZO2_REQUIRE(count <= cd_size / kCentralSize, path, ": corrupt zip archive: ", count,
              " entries cannot fit a central directory of ", cd_size, " bytes");

  uint64_t pos = cd_offset;
  const uint64_t cd_end = cd_offset + cd_size;
  for (uint64_t i = 0; i < count; ++i) {
    ZO2_REQUIRE(pos <= cd_end && cd_end - pos >= kCentralSize && b.le(pos, 4) == kCentralSig, path,
                ": corrupt zip archive: central directory entry ", i, " is malformed");
    ZipEntry e;
    e.method = static_cast<uint16_t>(b.le(pos + 10, 2));
    e.crc32 = static_cast<uint32_t>(b.le(pos + 16, 4));
    uint64_t csize = b.le(pos + 20, 4), usize = b.le(pos + 24, 4), local = b.le(pos + 42, 4);
    const uint64_t name_len = b.le(pos + 28, 2), extra_len = b.le(pos + 30, 2), comment_len = b.le(pos + 32, 2);
    const uint64_t next = pos + kCentralSize + name_len + extra_len + comment_len;
    ZO2_REQUIRE(next <= cd_end, path, ": corrupt zip archive: central directory entry ", i,
                " runs past the directory");
    e.name.assign(reinterpret_cast<const char*>(b.p + pos + kCentralSize), name_len);
    // zip64 extra field (id 1): 8-byte values for each 32-bit field that is 0xFFFFFFFF, in this order.
    for (uint64_t x = pos + kCentralSize + name_len, xe = x + extra_len; x + 4 <= xe;) {
      const uint64_t id = b.le(x, 2), len = b.le(x + 2, 2);
      ZO2_REQUIRE(x + 4 + len <= xe, path, ": corrupt zip archive: entry ", e.name, ": bad extra field");
      if (id == 1) {
        uint64_t f = x + 4;
        for (uint64_t* v : {&usize, &csize, &local}) {
          if (*v != 0xFFFFFFFFu) continue;
          ZO2_REQUIRE(f + 8 <= x + 4 + len, path, ": corrupt zip archive: entry ", e.name,
                      ": short zip64 extra field");
          *v = b.le(f, 8);
          f += 8;
        }
      }
      x += 4 + len;
    }
    ZO2_REQUIRE(e.method != 0 || csize == usize, path, ": corrupt zip archive: stored entry ", e.name,
                " has compressed size ", csize, " != size ", usize);
    b.need(local, kLocalSize, "local header");
    ZO2_REQUIRE(b.le(local, 4) == kLocalSig, path, ": corrupt zip archive: entry ", e.name,
                ": bad local header signature");
    e.offset = local + kLocalSize + b.le(local + 26, 2) + b.le(local + 28, 2);
    e.size = csize;
    b.need(e.offset, csize, ("data of entry " + e.name).c_str());
    entries_.push_back(std::move(e));
    pos = next;
  }
}

const ZipEntry* ZipArchive::find(const std::string& name) const {
  for (const ZipEntry& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

const uint8_t* ZipArchive::checked_data(const ZipEntry& e) const {
  ZO2_REQUIRE(e.method == 0, file_->path(), ": zip entry ", e.name, " is compressed (method ", e.method,
              "); torch.save stores entries uncompressed");
  const uint8_t* p = file_->data() + e.offset;
  ZO2_REQUIRE(crc32(p, e.size) == e.crc32, file_->path(), ": zip entry ", e.name, " fails its CRC-32 check (corrupt)");
  return p;
}

}  // namespace zo2
