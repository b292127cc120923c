// Run output: metrics as JSON lines (one object per step or evaluation), and a one-line progress
// display that becomes plain lines when stderr is not a terminal.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

namespace zo2 {

class MetricsLog {
 public:
  // path "" writes nothing. Appends when `append` (resume).
  explicit MetricsLog(const std::string& path, bool append = false);
  ~MetricsLog();
  void write(const nlohmann::json& record);

 private:
  std::FILE* f_ = nullptr;
  std::string path_;
};

class Progress {
 public:
  Progress(int64_t total_steps, int64_t first_step, bool enabled, int64_t plain_every);
  // Shows step/total, ETA and the given text (loss, tok/s, memory).
  void update(int64_t step, const std::string& text);
  void finish();

 private:
  int64_t total_, first_;
  bool enabled_, tty_;
  int64_t every_;
  std::chrono::steady_clock::time_point start_;
  bool dirty_ = false;
};

std::string format_duration(double seconds);

}  // namespace zo2
