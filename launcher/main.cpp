// zo2 entry point: parse the subcommand, run it, and turn any failure into one line and a non-zero exit.
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "launcher/cli.h"

int main(int argc, char** argv) {
  // Expandable segments let LibTorch's CUDA allocator grow one mapping instead of caching blocks of
  // every size it saw: streamed block slots, perturbed copies and activations of different shapes then
  // fragment less (OPT-175B block shape, prefetch 0, H100: 15,909 -> 15,093 MiB used). The user's setting wins.
  if (!std::getenv("PYTORCH_ALLOC_CONF")) setenv("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True", /*overwrite=*/0);
  try {
    return zo2::cli::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zo2: error: %s\n", e.what());
    zo2::cli::abort_peers();
    return 1;
  }
}
