#include "launcher/cli.h"

#include <boost/program_options.hpp>
#include <iostream>
#include <string>

#include "common/error.h"

namespace zo2::cli {

namespace po = boost::program_options;

int run(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << "usage: zo2 <command> [options]\n";
    return argc < 2 ? 1 : 0;
  }
  throw_error("unknown command '", argv[1], "' (see zo2 --help)");
}

void abort_peers() {}

}  // namespace zo2::cli
