#include "train/metrics.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace zo2 {

MetricsLog::MetricsLog(const std::string& path, bool append) : path_(path) {
  if (path.empty()) return;
  f_ = std::fopen(path.c_str(), append ? "a" : "w");
  ZO2_REQUIRE(f_ != nullptr, path, ": cannot write metrics: ", std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (f_) std::fclose(f_);
}

void MetricsLog::write(const nlohmann::json& record) {
  if (!f_) return;
  const std::string line = record.dump() + "\n";
  ZO2_REQUIRE(std::fwrite(line.data(), 1, line.size(), f_) == line.size() && std::fflush(f_) == 0, path_,
              ": write failed: ", std::strerror(errno));
}

std::string format_duration(double s) {
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof(buf), "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof(buf), "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof(buf), "%lds", t);
  return buf;
}

Progress::Progress(int64_t total_steps, int64_t first_step, bool enabled, int64_t plain_every)
    : total_(total_steps), first_(first_step), enabled_(enabled), tty_(isatty(fileno(stderr)) == 1),
      every_(std::max<int64_t>(1, plain_every)), start_(std::chrono::steady_clock::now()) {}

void Progress::update(int64_t step, const std::string& text) {
  if (!enabled_) return;
  const int64_t done = step + 1;
  if (!tty_ && done % every_ != 0 && done != total_) return;
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = (done - first_) / std::max(el, 1e-9);
  const double eta = rate > 0 ? (total_ - done) / rate : 0;
  char head[96];
  std::snprintf(head, sizeof(head), "step %lld/%lld [%5.1f%%] ", static_cast<long long>(done),
                static_cast<long long>(total_), 100.0 * done / std::max<int64_t>(1, total_));
  const std::string line = std::string(head) + text + " ETA " + format_duration(eta);
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    dirty_ = true;
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

void Progress::finish() {
  if (dirty_) std::fprintf(stderr, "\n");
  dirty_ = false;
}

}  // namespace zo2
