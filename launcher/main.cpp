// zo2 entry point: parse the subcommand, run it, and turn any failure into one line and a non-zero exit.
#include <cstdio>
#include <exception>

#include "launcher/cli.h"

int main(int argc, char** argv) {
  try {
    return zo2::cli::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zo2: error: %s\n", e.what());
    zo2::cli::abort_peers();
    return 1;
  }
}
