// What comm/ reads from the environment before MPI_Init: launch detection, local rank, the collective
// timeout, backend names, NCCL defaults. Process-local; each rank runs them on its own environment and
// restores every variable it touches.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>

#include "comm/dist.h"
#include "comm/launch_env.h"
#include "common/error.h"

namespace zo2::test {
namespace {

// Sets (or with nullptr unsets) variables for one test and restores the previous values after it.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> vars) {
    for (auto [name, value] : vars) {
      const char* old = std::getenv(name);
      saved_.emplace(name, old ? std::optional<std::string>(old) : std::nullopt);
      value ? setenv(name, value, 1) : unsetenv(name);
    }
  }
  ~ScopedEnv() {
    for (auto& [name, value] : saved_) value ? setenv(name.c_str(), value->c_str(), 1) : unsetenv(name.c_str());
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};


TEST(LaunchEnv, MultiRankDetection) {
  auto check = [](const char* ompi, const char* pmi, const char* pmix, const char* slurm) {
    ScopedEnv env{{"OMPI_COMM_WORLD_SIZE", ompi}, {"PMI_SIZE", pmi}, {"PMIX_RANK", pmix},
                  {"SLURM_STEP_NUM_TASKS", slurm}};
    return launched_multi_rank();
  };
  EXPECT_FALSE(check(nullptr, nullptr, nullptr, nullptr));  // started without a launcher
  EXPECT_FALSE(check("1", nullptr, "0", nullptr));          // mpirun -np 1
  EXPECT_TRUE(check("4", nullptr, "0", nullptr));           // mpirun -np 4
  EXPECT_FALSE(check("1", "4", nullptr, nullptr));          // mpirun's value wins
  EXPECT_TRUE(check(nullptr, "2", nullptr, nullptr));       // srun --mpi=pmi2
  EXPECT_TRUE(check(nullptr, nullptr, "0", "8"));           // srun --mpi=pmix
  EXPECT_FALSE(check(nullptr, nullptr, "0", "1"));          // srun -n 1 --mpi=pmix
  EXPECT_TRUE(check(nullptr, nullptr, "3", nullptr));       // a PMIx launcher without Slurm
  EXPECT_FALSE(check(nullptr, nullptr, nullptr, "8"));      // inside sbatch but not under srun
  EXPECT_THROW(check("two", nullptr, nullptr, nullptr), Error);
}

TEST(LaunchEnv, LocalRankPrefersOpenMpiThenSlurm) {
  {
    ScopedEnv env{{"OMPI_COMM_WORLD_LOCAL_RANK", "3"}, {"SLURM_LOCALID", "5"}};
    auto h = local_rank_from_env();
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->rank, 3);
    EXPECT_STREQ(h->source, "OMPI_COMM_WORLD_LOCAL_RANK");
  }
  {
    ScopedEnv env{{"OMPI_COMM_WORLD_LOCAL_RANK", nullptr}, {"SLURM_LOCALID", "5"}};
    auto h = local_rank_from_env();
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->rank, 5);
    EXPECT_STREQ(h->source, "SLURM_LOCALID");
  }
  {
    ScopedEnv env{{"OMPI_COMM_WORLD_LOCAL_RANK", nullptr}, {"SLURM_LOCALID", nullptr}};
    EXPECT_FALSE(local_rank_from_env().has_value());
  }
  {
    ScopedEnv env{{"OMPI_COMM_WORLD_LOCAL_RANK", "-1"}};
    EXPECT_THROW(local_rank_from_env(), Error);
  }
}

TEST(LaunchEnv, BadIntegerNamesTheVariable) {
  ScopedEnv env{{"SLURM_LOCALID", "1x"}, {"OMPI_COMM_WORLD_LOCAL_RANK", nullptr}};
  try {
    local_rank_from_env();
    ADD_FAILURE() << "no error for SLURM_LOCALID=1x";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("SLURM_LOCALID='1x'"), std::string::npos) << e.what();
  }
}

TEST(LaunchEnv, CollectiveTimeout) {
  {
    ScopedEnv env{{"ZO2_COLLECTIVE_TIMEOUT", nullptr}};
    EXPECT_EQ(collective_timeout_from_env(300), 300);
  }
  {
    ScopedEnv env{{"ZO2_COLLECTIVE_TIMEOUT", "2.5"}};
    EXPECT_EQ(collective_timeout_from_env(300), 2.5);
  }
  for (const char* bad : {"", "abc", "0", "-1", "5s"}) {
    ScopedEnv env{{"ZO2_COLLECTIVE_TIMEOUT", bad}};
    EXPECT_THROW(collective_timeout_from_env(300), Error) << "'" << bad << "'";
  }
}

TEST(LaunchEnv, BackendNames) {
  for (Backend b : {Backend::Auto, Backend::Single, Backend::Mpi, Backend::Nccl})
    EXPECT_EQ(parse_backend(backend_name(b), "--backend"), b);
  try {
    parse_backend("gloo", "--backend");
    ADD_FAILURE() << "no error for gloo";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--backend = 'gloo'"), std::string::npos) << e.what();
  }
}

TEST(LaunchEnv, NvlsStaysOffUnlessTheUserSetIt) {
  {
    ScopedEnv env{{"NCCL_NVLS_ENABLE", nullptr}};
    default_nccl_env();
    ASSERT_NE(std::getenv("NCCL_NVLS_ENABLE"), nullptr);
    EXPECT_STREQ(std::getenv("NCCL_NVLS_ENABLE"), "0");
  }
  {
    ScopedEnv env{{"NCCL_NVLS_ENABLE", "1"}};
    default_nccl_env();
    EXPECT_STREQ(std::getenv("NCCL_NVLS_ENABLE"), "1");
  }
}

}  // namespace
}  // namespace zo2::test
