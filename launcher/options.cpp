#include "launcher/options.h"

#include <fstream>
#include <iostream>
#include <sstream>

#include "common/error.h"

namespace zo2::cli {

bool parse_options(const std::string& command, const Args& args, po::options_description& desc,
                   po::variables_map& vm, const po::positional_options_description* positional) {
  po::options_description common("Common options");
  common.add_options()("help,h", "show this help")("config", po::value<std::string>(),
                                                   "INI run file; command-line options override it");
  po::options_description all;
  all.add(desc).add(common);
  try {
    po::command_line_parser parser(args);
    parser.options(all);
    if (positional) parser.positional(*positional);
    po::store(parser.run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: zo2 " << command << " [options]\n\n" << all << "\n";
      return false;
    }
    if (vm.count("config")) {
      const std::string path = vm["config"].as<std::string>();
      std::ifstream in(path);
      ZO2_REQUIRE(in.good(), "zo2 ", command, ": cannot open run file ", path);
      try {
        // The command line was stored first, so it wins over the file.
        po::store(po::parse_config_file(in, desc, /*allow_unregistered=*/false), vm);
      } catch (const po::error& e) {
        throw_error("zo2 ", command, ": run file ", path, ": ", e.what());
      }
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw_error("zo2 ", command, ": ", e.what());
  }
  return true;
}

int64_t int_option(const po::variables_map& vm, const std::string& name, int64_t min) {
  const int64_t v = vm[name].as<int64_t>();
  ZO2_REQUIRE(v >= min, "option --", name, ": must be >= ", min, ", got ", v);
  return v;
}

std::string describe(const po::variables_map& vm) {
  std::ostringstream os;
  for (const auto& [name, v] : vm) {
    if (name == "help") continue;
    os << "  " << name << " = ";
    const boost::any& a = v.value();
    if (auto s = boost::any_cast<std::string>(&a)) os << *s;
    else if (auto i = boost::any_cast<int>(&a)) os << *i;
    else if (auto l = boost::any_cast<int64_t>(&a)) os << *l;
    else if (auto u = boost::any_cast<uint64_t>(&a)) os << *u;
    else if (auto d = boost::any_cast<double>(&a)) os << *d;
    else if (auto f = boost::any_cast<float>(&a)) os << *f;
    else if (auto b = boost::any_cast<bool>(&a)) os << (*b ? "true" : "false");
    else os << "(set)";
    if (v.defaulted()) os << "  (default)";
    os << "\n";
  }
  return os.str();
}

}  // namespace zo2::cli
