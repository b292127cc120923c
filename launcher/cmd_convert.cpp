#include <cctype>
#include <cstdint>
#include <filesystem>
#include <iostream>

#include "common/error.h"
#include "io/checkpoint.h"
#include "io/checkpoint_save.h"
#include "io/safetensors.h"
#include "launcher/commands.h"

namespace zo2::cli {

namespace {

at::ScalarType parse_dtype(const std::string& s) {
  if (s == "f32") return at::kFloat;
  if (s == "f16") return at::kHalf;
  if (s == "bf16") return at::kBFloat16;
  throw_error("zo2 convert: --dtype '", s, "' is not one of f32, f16, bf16");
}

// "5GB", "800MB", "8KB", "1GiB" or a byte count (decimal units as transformers' max_shard_size).
uint64_t parse_size(const std::string& s) {
  size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  const std::string unit = s.substr(i);
  const struct {
    const char* name;
    uint64_t mult;
  } kUnits[] = {{"", 1},          {"B", 1},           {"KB", 1000},        {"MB", 1000000},
                {"GB", 1000000000}, {"KiB", uint64_t(1) << 10}, {"MiB", uint64_t(1) << 20}, {"GiB", uint64_t(1) << 30}};
  for (const auto& u : kUnits) {
    if (i == 0 || i > 18 || unit != u.name) continue;
    const uint64_t n = std::stoull(s.substr(0, i));
    if (n > 0 && n <= UINT64_MAX / u.mult) return n * u.mult;
  }
  throw_error("zo2 convert: --max-shard-size '", s, "' is not a positive size such as 5GB, 800MB or 1000000");
}

}  // namespace

int cmd_convert(const Args& args) {
  po::options_description desc("zo2 convert");
  desc.add_options()("model", po::value<std::string>()->required(), "source checkpoint directory")(
      "out", po::value<std::string>()->required(), "output directory (created; must not be --model)")(
      "dtype", po::value<std::string>()->default_value("f32"), "storage dtype: f32, f16 or bf16")(
      "max-shard-size", po::value<std::string>()->default_value("5GB"),
      "shard above this size (model-0000k-of-0000n.safetensors + index), e.g. 5GB, 800MB");
  po::variables_map vm;
  if (!parse_options("convert", args, desc, vm)) return 0;
  const std::string src = vm["model"].as<std::string>(), out = vm["out"].as<std::string>();
  std::error_code ec;
  ZO2_REQUIRE(!std::filesystem::equivalent(src, out, ec), "zo2 convert: --out ", out,
              " is the source directory; write the converted checkpoint elsewhere");
  const at::ScalarType dtype = parse_dtype(vm["dtype"].as<std::string>());
  SaveOptions opt;
  opt.max_shard_bytes = parse_size(vm["max-shard-size"].as<std::string>());
  opt.tokenizer_dir = src;
  const Checkpoint ck = load_checkpoint(src, {dtype, at::kCPU});
  save_checkpoint(out, ck.cfg, ck.weights, dtype, opt);
  std::cout << "wrote " << out << ": " << ck.cfg.total_params() << " parameters as "
            << safetensors_dtype_name(dtype) << "\n";
  return 0;
}

}  // namespace zo2::cli
