// The real `zo2 train` killed with SIGKILL -- at a random step, and inside a checkpoint save -- then
// `zo2 train --resume`: the final checkpoint and the trajectory log are byte for byte those of an
// uninterrupted run, and `zo2 replay` rebuilds the same weights from the base and the log. CPU, the
// embedded demo model (configs/demo), bf16 storage with stochastic rounding.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include "common/test_util.h"
#include "unit/test_checkpoint_util.h"

extern char** environ;

namespace zo2 {
namespace {

namespace fs = std::filesystem;

const std::string kZo2 = std::string(ZO2_BINARY_DIR) + "/zo2";
const std::string kDemo = std::string(ZO2_SOURCE_DIR) + "/configs/demo";
constexpr int64_t kSteps = 60;

std::vector<std::string> train_args(const std::string& out, int64_t save_every) {
  return {kZo2, "train", "--model", kDemo + "/model", "--data", kDemo + "/data/train.jsonl", "--device", "cpu",
          "--dtype", "f32", "--storage-dtype", "bf16", "--steps", std::to_string(kSteps), "--batch-size", "4",
          "--lr", "2e-3", "--weight-decay", "0.01", "--seed", "3", "--progress", "false", "--out", out,
          "--save-every", std::to_string(save_every), "--keep", "2"};
}

// Starts `args` with stdout and stderr to `log` and `env` added to the environment.
pid_t spawn(const std::vector<std::string>& args, const std::string& log, const std::vector<std::string>& env = {}) {
  std::vector<char*> argv, envp;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (char** e = environ; *e; ++e) envp.push_back(*e);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  // One thread: the CPU forward's reductions depend on the thread count (every run of a comparison must
  // use the same), and idle OpenMP threads spin on a shared 2-core CI machine.
  static const std::string one_thread = "OMP_NUM_THREADS=1";
  envp.push_back(const_cast<char*>(one_thread.c_str()));
  envp.push_back(nullptr);
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const pid_t pid = ::fork();
  if (pid == 0) {  // only async-signal-safe calls until exec
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(fd);
  return pid;
}

// Exit status, or -signal.
int wait_for(pid_t pid) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
}

int run_to_end(const std::vector<std::string>& args, const std::string& log) { return wait_for(spawn(args, log)); }

// Polls until `ready` holds or the child exits (false) or 120 s pass.
bool wait_until(pid_t pid, const std::function<bool()>& ready) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < end) {
    if (ready()) return true;
    int st;
    if (::waitpid(pid, &st, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  return false;
}

// Records in the log so far (its header length is at bytes 12..15).
int64_t records(const std::string& log) {
  const std::string b = test::read_bytes(log);
  if (b.size() < 16) return 0;
  uint32_t len;
  std::memcpy(&len, b.data() + 12, 4);
  const int64_t body = static_cast<int64_t>(b.size()) - (16 + len + 4);
  return body < 0 ? 0 : body / 32;
}

struct Files {
  std::string weights, log;
};
Files files(const std::string& out) {
  return {test::read_bytes(out + "/checkpoint-" + std::to_string(kSteps) + "/model.safetensors"),
          test::read_bytes(out + "/trajectory.zo2traj")};
}

std::string tail(const std::string& log) {
  const std::string b = test::read_bytes(log);
  return b.size() > 2000 ? b.substr(b.size() - 2000) : b;
}

TEST(ResumeKill, KilledRunsResumeToTheUninterruptedBytes) {
  const std::string root = test::temp_dir("resume_kill");
  const std::string ref = root + "/ref";
  ASSERT_EQ(run_to_end(train_args(ref, 0), root + "/ref.txt"), 0) << tail(root + "/ref.txt");
  const Files want = files(ref);
  ASSERT_GT(want.weights.size(), 100000u);
  ASSERT_EQ(records(ref + "/trajectory.zo2traj"), kSteps);

  // SIGKILL once the log holds k records (the run is then somewhere after step k - 1).
  std::mt19937 rng(20240611);
  const int64_t k = std::uniform_int_distribution<int64_t>(3, kSteps - 20)(rng);
  const std::string a = root + "/killed";
  pid_t pid = spawn(train_args(a, 10), root + "/a1.txt");
  ASSERT_TRUE(wait_until(pid, [&] { return records(a + "/trajectory.zo2traj") >= k; }))
      << "the run ended before step " << k << ": " << tail(root + "/a1.txt");
  ::kill(pid, SIGKILL);
  ASSERT_EQ(wait_for(pid), -SIGKILL);
  const int64_t at = records(a + "/trajectory.zo2traj");
  ASSERT_LT(at, kSteps) << "killed too late to test anything";
  std::vector<std::string> resume = train_args(a, 10);
  resume.insert(resume.end(), {"--resume", a});
  ASSERT_EQ(run_to_end(resume, root + "/a2.txt"), 0) << tail(root + "/a2.txt");
  EXPECT_NE(test::read_bytes(root + "/a2.txt").find("zo2: resuming"), std::string::npos);
  const Files got = files(a);
  EXPECT_TRUE(got.weights == want.weights) << "killed after " << at << " steps";
  EXPECT_TRUE(got.log == want.log) << "killed after " << at << " steps";

  // SIGKILL inside the save of checkpoint-30, after its weights and config.json are written.
  const std::string b = root + "/killed_in_save";
  pid = spawn(train_args(b, 10), root + "/b1.txt", {"ZO2_TEST_PAUSE_IN_SAVE=30"});
  const std::string partial = b + "/.checkpoint-30.partial";
  ASSERT_TRUE(wait_until(pid, [&] { return fs::exists(partial + "/PAUSED_FOR_TEST"); })) << tail(root + "/b1.txt");
  ::kill(pid, SIGKILL);
  ASSERT_EQ(wait_for(pid), -SIGKILL);
  EXPECT_TRUE(fs::exists(partial + "/config.json")) << "the save had written a loadable directory";
  EXPECT_FALSE(fs::exists(b + "/checkpoint-30"));
  resume = train_args(b, 10);
  resume.insert(resume.end(), {"--resume", b});
  ASSERT_EQ(run_to_end(resume, root + "/b2.txt"), 0) << tail(root + "/b2.txt");
  EXPECT_NE(test::read_bytes(root + "/b2.txt").find(".checkpoint-30.partial"), std::string::npos)
      << "the removal of the partial save is reported";
  EXPECT_FALSE(fs::exists(partial));
  const Files got_b = files(b);
  EXPECT_TRUE(got_b.weights == want.weights);
  EXPECT_TRUE(got_b.log == want.log);

  // The base and the log give the same weights.
  const std::string r = root + "/replayed";
  ASSERT_EQ(run_to_end({kZo2, "replay", "--base", kDemo + "/model", "--trajectory", ref + "/trajectory.zo2traj",
                        "--out", r, "--device", "cpu"},
                       root + "/r.txt"),
            0)
      << tail(root + "/r.txt");
  EXPECT_TRUE(test::read_bytes(r + "/model.safetensors") == want.weights);

  // A fresh run into a directory that holds one is refused.
  ASSERT_EQ(run_to_end(train_args(ref, 0), root + "/c.txt"), 1);
  EXPECT_NE(test::read_bytes(root + "/c.txt").find("--resume"), std::string::npos) << tail(root + "/c.txt");
}

}  // namespace
}  // namespace zo2
