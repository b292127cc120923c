#include "train/checkpointing.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "common/error.h"
#include "io/atomic_file.h"
#include "io/checkpoint_save.h"
#include "offload/offload_model.h"

namespace zo2 {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kStateFile = "zo2_state.json";

// Complete checkpoints (checkpoint-<step>) of `out`, newest first.
std::vector<std::pair<int64_t, std::string>> complete_checkpoints(const std::string& out) {
  static const std::regex re(R"(checkpoint-(\d{1,18}))");
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(out, ec)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (e.is_directory() && std::regex_match(name, m, re)) found.emplace_back(std::stoll(m[1]), e.path().string());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return found;
}

// Saves interrupted before their rename (.checkpoint-<step>.partial).
std::vector<std::string> partial_checkpoints(const std::string& out) {
  static const std::regex re(R"(\.(checkpoint-\d+|best-dev)\.partial)");
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(out, ec))
    if (std::regex_match(e.path().filename().string(), re)) found.push_back(e.path().string());
  return found;
}

// Tests kill a run inside a save: ZO2_TEST_PAUSE_IN_SAVE=<step> stops the save of that step after the
// weights and config.json are written (the directory looks like a checkpoint) and before its state file.
void test_pause(const std::string& dir, int64_t step) {
  const char* v = std::getenv("ZO2_TEST_PAUSE_IN_SAVE");
  if (!v || std::strtoll(v, nullptr, 10) != step) return;
  write_file_atomic((fs::path(dir) / "PAUSED_FOR_TEST").string(), "");
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

}  // namespace

std::string CheckpointOptions::log_path() const {
  if (!trajectory.empty()) return trajectory;
  return out.empty() ? std::string() : (fs::path(out) / "trajectory.zo2traj").string();
}

std::string best_dev_dir(const std::string& out) { return (fs::path(out) / "best-dev").string(); }

std::string checkpoint_dir(const std::string& out, int64_t step) {
  return (fs::path(out) / ("checkpoint-" + std::to_string(step))).string();
}

TrainState read_train_state(const std::string& dir) {
  const std::string path = (fs::path(dir) / kStateFile).string();
  std::ifstream in(path);
  ZO2_REQUIRE(in.good(), path, ": missing: ", dir, " is not a complete zo2 checkpoint");
  TrainState s;
  try {
    const json j = json::parse(in);
    ZO2_REQUIRE(j.at("format") == "zo2-train-state" && j.at("version") == 1, path, ": not a zo2 state file (version 1)");
    s.step = j.at("step").get<int64_t>();
    s.weights_checksum = std::stoull(j.at("weights_checksum").get<std::string>(), nullptr, 16);
    s.skipped = j.at("skipped").get<int64_t>();
    s.run_id = std::stoull(j.at("run_id").get<std::string>(), nullptr, 16);
  } catch (const json::exception& e) {
    throw_error(path, ": corrupt state file: ", e.what());
  } catch (const std::logic_error&) {
    throw_error(path, ": corrupt state file: bad checksum field");
  }
  const std::string name = fs::path(dir).filename().string();
  if (name.rfind("checkpoint-", 0) == 0)
    ZO2_REQUIRE(name == "checkpoint-" + std::to_string(s.step), path, ": says step ", s.step, " in ", name);
  return s;
}

void save_model(ZoModel& model, const std::string& dir, at::ScalarType dtype, const std::string& tokenizer_dir) {
  SaveOptions so;
  so.tokenizer_dir = tokenizer_dir;
  if (auto* r = dynamic_cast<ResidentModel*>(&model)) return save_checkpoint(dir, r->config(), r->weights(), dtype, so);
  auto* o = dynamic_cast<OffloadModel*>(&model);
  ZO2_REQUIRE(o, dir, ": cannot save this kind of model");
  // Streamed blocks are views of the host store; resident ones are CPU copies.
  OptWeights w;
  w.outer = o->outer();
  w.blocks.resize(static_cast<size_t>(o->config().layers));
  o->for_each_block([&](int64_t l, const BlockWeights& b) { w.blocks[static_cast<size_t>(l)] = b; });
  save_checkpoint(dir, o->config(), w, dtype, so);
}

ResumePlan plan_resume(const CheckpointOptions& opt) {
  ResumePlan plan;
  plan.log_path = opt.log_path();
  const auto ckpts = opt.out.empty() ? decltype(complete_checkpoints("")){} : complete_checkpoints(opt.out);
  if (!fs::exists(plan.log_path)) {
    ZO2_REQUIRE(ckpts.empty(), plan.log_path, ": missing, but ", ckpts.front().second,
                " exists: without the log the run cannot be resumed");
    return plan;
  }
  plan.found = true;
  plan.log = read_trajectory(plan.log_path);
  if (!plan.log.dropped.empty()) plan.notes.push_back(plan.log_path + ": dropping " + plan.log.dropped);
  for (const std::string& p : opt.out.empty() ? std::vector<std::string>{} : partial_checkpoints(opt.out))
    plan.notes.push_back("removing " + p + " (a save that did not finish)");
  if (ckpts.empty()) return plan;
  const auto& [step, dir] = ckpts.front();
  plan.state = read_train_state(dir);
  ZO2_REQUIRE(plan.state.run_id == trajectory_id(plan.log.header), dir, "/", kStateFile,
              ": checkpoint of step ", step, " belongs to another run than ", plan.log_path);
  ZO2_REQUIRE(step >= plan.log.header.first_step && step <= plan.next_step(), dir,
              ": checkpoint of step ", step, " is beyond the ", plan.next_step(), " steps of ", plan.log_path,
              " (records lost from the log)");
  plan.checkpoint = dir;
  return plan;
}

int64_t restore_run(const ResumePlan& plan, const TrajectoryHeader& expected, ZoModel& model, MezoEngine& engine,
                    at::ScalarType compute_dtype) {
  if (!plan.found) return 0;
  const TrajectoryHeader& h = plan.log.header;
  const std::string diff = trajectory_mismatch(h, expected, /*with_base=*/false);
  ZO2_REQUIRE(diff.empty(), plan.log_path, ": this command's settings differ from the run's (", diff,
              "); resume with the run's settings");
  size_t begin = 0;
  int64_t skipped = 0;
  const uint64_t have = model_checksum(model);
  if (plan.checkpoint.empty()) {
    ZO2_REQUIRE(have == h.base_checksum, plan.log_path, ": the base weights (", expected.base, ", checksum ",
                checksum_hex(have), ") are not the run's (", h.base, ", checksum ", checksum_hex(h.base_checksum), ")");
  } else {
    ZO2_REQUIRE(have == plan.state.weights_checksum, plan.checkpoint, ": weights of step ", plan.state.step,
                " do not match the checksum in ", kStateFile, " (", checksum_hex(have), " vs ",
                checksum_hex(plan.state.weights_checksum), "): corrupt checkpoint; delete it to resume from an earlier one");
    begin = static_cast<size_t>(plan.state.step - h.first_step);
    skipped = plan.state.skipped;
  }
  replay(model, h, plan.log.records, begin, plan.log.records.size(), compute_dtype);
  for (size_t i = begin; i < plan.log.records.size(); ++i) skipped += plan.log.records[i].skipped;
  engine.set_skipped_steps(skipped);
  return plan.next_step();
}

RunCheckpointer::RunCheckpointer(const CheckpointOptions& opt, const TrajectoryHeader& header, const ResumePlan& plan,
                                 MezoEngine& engine, ZoModel& model, at::ScalarType storage, int64_t steps, bool root)
    : opt_(opt), header_(plan.found ? plan.log.header : header), engine_(engine), model_(model), storage_(storage),
      steps_(steps), last_saved_(plan.checkpoint.empty() ? -1 : plan.state.step), root_(root) {
  if (!root_) return;
  const std::string path = opt_.log_path();
  ZO2_REQUIRE(!path.empty(), "checkpointing needs a run directory or a trajectory path");
  if (!opt_.out.empty()) {
    std::error_code ec;
    fs::create_directories(opt_.out, ec);
    ZO2_REQUIRE(fs::is_directory(opt_.out), opt_.out, ": cannot create the run directory: ", ec.message());
    for (const std::string& p : partial_checkpoints(opt_.out)) fs::remove_all(p);
  }
  if (!plan.found) TrajectoryWriter::create(path, header_);
  for (const std::string& n : plan.notes) std::cerr << "zo2: resume: " << n << "\n";
  log_ = std::make_unique<TrajectoryWriter>(path, header_, static_cast<int64_t>(plan.log.records.size()),
                                            opt_.sync_every);
}

RunCheckpointer::~RunCheckpointer() = default;

void RunCheckpointer::on_step(const StepStats& st) {
  if (log_) log_->append(trajectory_record(st));
  const int64_t done = st.step + 1;
  if (!opt_.out.empty() && opt_.save_every > 0 && done % opt_.save_every == 0 && done < steps_) save(done);
}

void RunCheckpointer::finish() {
  if (log_) log_->sync();
  if (!opt_.out.empty() && last_saved_ != steps_) save(steps_);
}

void RunCheckpointer::save(int64_t step) {
  write(step, checkpoint_dir(opt_.out, step));
  last_saved_ = step;
  if (!root_ || opt_.keep <= 0) return;
  const auto all = complete_checkpoints(opt_.out);
  for (size_t i = static_cast<size_t>(opt_.keep); i < all.size(); ++i) fs::remove_all(all[i].second);
  if (all.size() > static_cast<size_t>(opt_.keep)) fsync_directory(opt_.out);
}

void RunCheckpointer::save_best(int64_t step) {
  if (!opt_.out.empty()) write(step, best_dev_dir(opt_.out));
}

void RunCheckpointer::write(int64_t step, const std::string& dir) {
  // The checkpoint holds every finished step; applying the pending update now gives the bits of applying
  // it fused into the next step. (Lagging host copies of streamed blocks are brought up to date by the
  // checksum and the save below.)
  if (!engine_.pending().empty()) engine_.flush();
  if (!root_) return;
  log_->sync();     // a checkpoint is never ahead of the durable log
  TrainState st;
  st.step = step;
  st.weights_checksum = model_checksum(model_);
  st.skipped = engine_.skipped_steps();
  st.run_id = trajectory_id(header_);
  const std::string partial = (fs::path(opt_.out) / ("." + fs::path(dir).filename().string() + ".partial")).string();
  fs::remove_all(partial);
  save_model(model_, partial, storage_, opt_.tokenizer_dir);
  test_pause(partial, step);
  const json state = {{"format", "zo2-train-state"},
                      {"version", 1},
                      {"step", st.step},
                      {"weights_checksum", checksum_hex(st.weights_checksum)},
                      {"skipped", st.skipped},
                      {"run_id", checksum_hex(st.run_id)}};
  write_file_atomic((fs::path(partial) / kStateFile).string(), state.dump(2) + "\n");
  fs::remove_all(dir);
  std::error_code ec;
  fs::rename(partial, dir, ec);
  ZO2_REQUIRE(!ec, dir, ": cannot rename the finished save from ", partial, ": ", ec.message());
  fsync_directory(opt_.out);
}

}  // namespace zo2
