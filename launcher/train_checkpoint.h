// zo2 train's run files (docs/checkpoints.md): the options --out, --resume, --save-every, --keep,
// --trajectory, --trajectory-sync-every, and the two steps around building the model and the engine.
// Kept out of cmd_train.cpp so that the command only calls three functions.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/collectives.h"
#include "data/example.h"
#include "launcher/options.h"
#include "launcher/run_setup.h"
#include "train/checkpointing.h"
#include "train/trainer.h"

namespace zo2::cli {

void add_checkpoint_options(po::options_description& desc);

struct RunFiles {
  CheckpointOptions opt;
  bool active = false;   // the run keeps a log (and, with --out, checkpoints)
  ResumePlan plan;
  std::string base;      // the base weights: the --model directory or "preset:NAME:SEED"
};

// Before build_model: reads the options and, with --resume, where the run stands; points --model at
// the newest checkpoint so that build_model loads it. Rank 0 refuses --out of a directory that holds a
// run unless --resume is given (the other ranks do not look: rank 0 may have created the log already).
RunFiles prepare_run_files(po::variables_map& vm, int rank);

// After the engine is built: checks a resumed run's weights and settings against its files, replays the
// log records after its checkpoint, sets to->start_step, and returns the checkpointer whose hook() the
// trainer calls and whose finish() writes the final checkpoint (null when the run keeps no files).
std::unique_ptr<RunCheckpointer> start_run_files(RunFiles& rf, const ModelSetup& ms, ZoModel& model,
                                                 MezoEngine& engine, TrainOptions* to,
                                                 const std::vector<Example>& train_set, Collectives& comm);

}  // namespace zo2::cli
