#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common/error.h"
#include "launcher/commands.h"
#include "text/tokenizer.h"

namespace zo2::cli {

namespace {

// Ids of one --decode input line ("2 31414 232").
std::vector<int64_t> parse_ids(const std::string& line) {
  std::vector<int64_t> ids;
  std::istringstream fields(line);
  std::string f;
  while (fields >> f) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(f.c_str(), &end, 10);
    ZO2_REQUIRE(end != f.c_str() && *end == '\0' && errno == 0, "'", f, "' is not a token id");
    ids.push_back(v);
  }
  return ids;
}

}  // namespace

int cmd_tokenize(const Args& args) {
  po::options_description desc("zo2 tokenize: the token ids of each input line (or, with --decode, the text)");
  desc.add_options()("tokenizer", po::value<std::string>()->required(),
                     "tokenizer directory: vocab.json, merges.txt [, tokenizer_config.json, special_tokens_map.json]")(
      "input", po::value<std::string>()->default_value("-"), "input file, '-' for stdin")(
      "no-bos", po::bool_switch(), "do not prepend the BOS token")(
      "bos-id", po::value<int64_t>(), "BOS id to prepend instead of the configured one (MeZO/ZO2 use 0 for OPT)")(
      "decode", po::bool_switch(), "read space-separated ids per line and print their text")(
      "skip-special", po::bool_switch(), "with --decode: leave out BOS/EOS/UNK/PAD ids");
  po::variables_map vm;
  if (!parse_options("tokenize", args, desc, vm)) return 0;

  TokenizerOptions opt;
  if (vm["no-bos"].as<bool>()) opt.add_bos = false;
  if (vm.count("bos-id")) opt.bos_id = vm["bos-id"].as<int64_t>();
  const Tokenizer tok(vm["tokenizer"].as<std::string>(), opt);

  const std::string input = vm["input"].as<std::string>();
  std::ifstream file;
  if (input != "-") {
    file.open(input, std::ios::binary);
    ZO2_REQUIRE(file.good(), input, ": cannot open");
  }
  std::istream& in = input == "-" ? std::cin : file;
  const std::string name = input == "-" ? "stdin" : input;
  const bool decode = vm["decode"].as<bool>(), skip_special = vm["skip-special"].as<bool>();

  std::ios::sync_with_stdio(false);
  std::string line, out;
  for (size_t n = 1; std::getline(in, line); ++n) {  // lines end at '\n' only; a '\r' is text
    try {
      if (decode) {
        out += tok.decode(parse_ids(line), skip_special);
      } else {
        const char* sep = "";
        for (int64_t id : tok.encode(line)) out.append(sep).append(std::to_string(id)), sep = " ";
      }
    } catch (const Error& e) {
      throw_error(name, ":", n, ": ", e.what());
    }
    out += '\n';
    if (out.size() > (1 << 20)) std::cout.write(out.data(), out.size()), out.clear();
  }
  std::cout.write(out.data(), out.size());
  std::cout.flush();
  return std::cout.good() ? 0 : 1;
}

}  // namespace zo2::cli
