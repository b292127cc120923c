// The trajectory log of a MeZO run (docs/checkpoints.md): a header that fixes everything a step's
// update depends on besides its own scalars, then one fixed-size record per step (step, lr, loss, the
// projected gradients g and a CRC-32), appended and fsynced as the run goes. The base weights plus the
// log are the fine-tuned weights: replay() rebuilds them bitwise on the same device type.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/opt_config.h"
#include "zo/mezo.h"
#include "zo/zo_model.h"

namespace zo2 {

struct TrajectoryHeader {
  // What replay needs.
  MezoOptions mezo;                        // seed, q, eps, weight decay, rounding, perturbation groups
  at::ScalarType storage = at::kFloat;     // dtype the weights are stored (and updated) in
  OptConfig cfg;                           // the model's shape (name not compared)
  uint64_t base_checksum = 0;              // model_checksum() of the base weights in `storage`
  std::string base;                        // where the base came from (a directory or "preset:NAME:SEED")
  int64_t first_step = 0;                  // step of record 0
  // What else decides the run (data order, lr schedule, compute dtype, ranks, ...): compared on resume,
  // not used by replay.
  nlohmann::json run = nlohmann::json::object();

  int64_t dirs() const { return mezo.q * mezo.perturbation_groups; }  // g's per record
};

struct TrajectoryRecord {
  int64_t step = 0;
  float lr = 0.f;                // the learning rate the update used (fp32, as applied)
  float loss = 0.f;              // mean of (L+ + L-) / 2 over directions (information only)
  std::vector<double> g;         // projected gradient per direction d = group * q + k
  bool skipped = false;          // a non-finite loss: no update
};

// Bytes of one record with `dirs` directions: 24 + 8 * dirs (32 for q = 1).
int64_t trajectory_record_bytes(int64_t dirs);

// The record of an engine step.
TrajectoryRecord trajectory_record(const StepStats& st);

// Appends records to a log. Not copyable; closes the file on destruction.
class TrajectoryWriter {
 public:
  // Creates `path` holding only the header (durably: temporary file, fsync, rename); throws if it exists.
  static void create(const std::string& path, const TrajectoryHeader& header);
  // Opens the log at `path` for appending after its first `records` records; anything after them (a
  // torn record) is cut off. `sync_every`: fsync after every N records (and on sync()).
  TrajectoryWriter(const std::string& path, const TrajectoryHeader& header, int64_t records, int64_t sync_every);
  ~TrajectoryWriter();
  TrajectoryWriter(const TrajectoryWriter&) = delete;
  TrajectoryWriter& operator=(const TrajectoryWriter&) = delete;

  // Throws unless rec.step is the next step of the log.
  void append(const TrajectoryRecord& rec);
  void sync();
  int64_t records() const { return records_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  TrajectoryHeader header_;
  int fd_ = -1;
  int64_t header_bytes_ = 0, records_ = 0, unsynced_ = 0, sync_every_ = 1;
};

struct TrajectoryLog {
  TrajectoryHeader header;
  std::vector<TrajectoryRecord> records;
  int64_t header_bytes = 0;
  std::string dropped;           // non-empty: what was cut from the end (a torn last record)
};

// Reads and checks a log: the header's CRC and fields, each record's CRC and step (first_step + index).
// A torn (short) or corrupt last record is dropped and described in `dropped` (a run killed while
// appending it); any other bad record throws zo2::Error naming the file and the step.
TrajectoryLog read_trajectory(const std::string& path);

// The header's fields that `other` (this command's) disagrees with, as "name: log value vs this run's"
// lines joined by "; "; "" when they agree. The base checksum is compared only when `with_base`.
std::string trajectory_mismatch(const TrajectoryHeader& log, const TrajectoryHeader& other, bool with_base);

// A checksum of the header (ties checkpoints to the log they belong to).
uint64_t trajectory_id(const TrajectoryHeader& header);

// One 64-bit checksum of every stored weight (ZoModel::checksums() combined): device independent.
uint64_t model_checksum(ZoModel& model);

// Applies the updates of records [begin, end) to `model`, in step order, with the engine's kernels
// (update only). Throws when a record's step does not follow, or a record says skipped but its g's are
// finite (or the reverse).
void replay(ZoModel& model, const TrajectoryHeader& header, const std::vector<TrajectoryRecord>& records,
            size_t begin, size_t end, at::ScalarType compute_dtype);

std::string checksum_hex(uint64_t v);

}  // namespace zo2
