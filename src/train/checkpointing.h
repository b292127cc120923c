// Checkpoints of a training run and resuming it (docs/checkpoints.md). A run directory holds
//   trajectory.zo2traj      the trajectory log (train/trajectory.h), one record per finished step
//   checkpoint-<step>/      a Hugging Face checkpoint of the weights after <step> steps, plus
//                           zo2_state.json (written last: its presence makes the checkpoint complete)
//   best-dev/               the same for the step with the best dev evaluation so far (task runs)
// A checkpoint is written as .checkpoint-<step>.partial/ and renamed when complete, so a directory named
// checkpoint-<step> is never a partial save. Resuming loads the newest checkpoint, checks it against its
// state file, replays the log records after it, and continues at the log's next step: no finished step
// is lost, and the final weights are bitwise those of an uninterrupted run.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "train/trainer.h"
#include "train/trajectory.h"
#include "zo/mezo.h"
#include "zo/zo_model.h"

namespace zo2 {

struct CheckpointOptions {
  std::string out;                 // run directory ("" = no checkpoints, only the log if `trajectory`)
  std::string trajectory;          // log path ("" = <out>/trajectory.zo2traj, or none without `out`)
  int64_t save_every = 0;          // checkpoint every N steps (0: only the final one)
  int64_t keep = 2;                // newest complete checkpoints kept (0: all)
  int64_t sync_every = 1;          // fsync the log every N records (and before every checkpoint)
  std::string tokenizer_dir;       // tokenizer files copied into every checkpoint ("" = none)

  std::string log_path() const;    // "" when the run keeps no log
};

// zo2_state.json of a checkpoint.
struct TrainState {
  int64_t step = 0;                // finished steps: the weights hold the updates of steps [0, step)
  uint64_t weights_checksum = 0;   // model_checksum() of the weights as trained (storage dtype)
  int64_t skipped = 0;             // steps skipped so far (non-finite loss)
  uint64_t run_id = 0;             // trajectory_id() of the run's log header
};

std::string checkpoint_dir(const std::string& out, int64_t step);  // <out>/checkpoint-<step>
std::string best_dev_dir(const std::string& out);                   // <out>/best-dev
// Reads and checks <dir>/zo2_state.json; throws naming the file (and the step of `dir`'s name).
TrainState read_train_state(const std::string& dir);

// Writes the stored weights of `model` (resident or streamed) as a Hugging Face checkpoint in `dtype`.
void save_model(ZoModel& model, const std::string& dir, at::ScalarType dtype, const std::string& tokenizer_dir);

// Where a run stands in its directory: read-only, so every rank can look.
struct ResumePlan {
  bool found = false;              // a log exists (else the run starts at step 0)
  std::string log_path;
  TrajectoryLog log;
  std::string checkpoint;          // newest complete checkpoint ("" = start from the base weights)
  TrainState state;                // its state file
  std::vector<std::string> notes;  // what resume will clean up (a torn record, partial saves)
  int64_t next_step() const { return log.header.first_step + static_cast<int64_t>(log.records.size()); }
};
// Throws, naming the file and step, on a corrupt log, a checkpoint beyond the log or of another run, or an
// unreadable state file.
ResumePlan plan_resume(const CheckpointOptions& opt);

// After the model is loaded from plan.checkpoint (or the base): checks its weights against the state
// file (or the base checksum of `expected`), checks that this run's options match the log's, and replays
// the log records after the checkpoint. Returns the step to continue at.
int64_t restore_run(const ResumePlan& plan, const TrajectoryHeader& expected, ZoModel& model, MezoEngine& engine,
                    at::ScalarType compute_dtype);

// Keeps a run's files while it trains: appends a log record after every step, writes checkpoints.
// Only rank 0 (`root`) writes; every rank flushes at the same steps.
class RunCheckpointer {
 public:
  // A fresh run creates the log; a resumed one (`plan.found`) cuts a torn record and removes partial
  // saves. `steps`: the run's last step (its checkpoint is written by finish()).
  RunCheckpointer(const CheckpointOptions& opt, const TrajectoryHeader& header, const ResumePlan& plan,
                  MezoEngine& engine, ZoModel& model, at::ScalarType storage, int64_t steps, bool root);
  ~RunCheckpointer();

  void on_step(const StepStats& st);
  StepHook hook() { return [this](const StepStats& st) { on_step(st); }; }
  // The final checkpoint (unless the last one is already at `steps`); call after train() returned.
  void finish();
  // Flushes the pending update and writes checkpoint-<step>, then deletes all but the newest `keep`.
  void save(int64_t step);
  // Flushes and writes best-dev/ (replacing the previous best) when the run has a directory.
  void save_best(int64_t step);

 private:
  // Writes `dir` as .<name>.partial, then renames it (every rank flushes; rank 0 writes).
  void write(int64_t step, const std::string& dir);

  CheckpointOptions opt_;
  TrajectoryHeader header_;
  MezoEngine& engine_;
  ZoModel& model_;
  at::ScalarType storage_;
  int64_t steps_, last_saved_ = -1;
  bool root_;
  std::unique_ptr<TrajectoryWriter> log_;
};

}  // namespace zo2
