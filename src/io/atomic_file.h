// Crash-safe file creation: data goes to a temporary file in the target directory, which is fsynced
// and renamed over the target, and the directory is fsynced. A reader sees the old file or the whole
// new one, never a prefix; a crash leaves at most a ".<name>.tmp.*" file behind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace zo2 {

class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);  // creates the temporary file
  ~AtomicFile();                                 // without commit(): removes the temporary file
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);
  uint64_t written() const { return written_; }
  // fsync, rename over the target, fsync the directory. Throws zo2::Error naming the target.
  void commit();

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t written_ = 0;
};

// Makes `tmp`, a finished file in the same directory as `path`, durable and renames it to `path`
// (for files written by code that takes a path, such as save_hf_config).
void publish_file(const std::string& tmp, const std::string& path);
void write_file_atomic(const std::string& path, const std::string& content);
void copy_file_atomic(const std::string& from, const std::string& to);
// Removes `path` if it exists and makes the removal durable (fsyncs the directory).
void remove_file_durable(const std::string& path);
void fsync_directory(const std::string& dir);

}  // namespace zo2
