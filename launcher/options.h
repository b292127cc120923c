// Boost.Program_options plumbing shared by every subcommand: INI run files, overrides, --help.
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace zo2::cli {

namespace po = boost::program_options;
using Args = std::vector<std::string>;  // the arguments after the subcommand name

// Parses `args` for `command`. `--config FILE` (an INI file with the same option names, sections
// allowed as "section.option") supplies values that the command line overrides. Returns false after
// printing --help. Throws zo2::Error naming the bad option and value.
bool parse_options(const std::string& command, const Args& args, po::options_description& desc,
                   po::variables_map& vm, const po::positional_options_description* positional = nullptr);

// The integer option `name` (without "--"), refused with "option --name: must be >= min, got v" below `min`.
int64_t int_option(const po::variables_map& vm, const std::string& name, int64_t min);

// Resolved settings as "name = value" lines (printed by rank 0 before a run).
std::string describe(const po::variables_map& vm);

}  // namespace zo2::cli
