#include "model/opt_config.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace zo2 {

int64_t OptConfig::block_params() const {
  const int64_t H = hidden, F = ffn;
  return 4 * (H * H + H) + 2 * H * F + F + H + 4 * H;
}

int64_t OptConfig::outer_params() const {
  int64_t n = vocab_size * word_embed_dim + position_rows() * hidden;
  if (has_projections()) n += 2 * hidden * word_embed_dim;
  if (has_final_ln()) n += 2 * hidden;
  if (!tie_word_embeddings) n += vocab_size * word_embed_dim;
  return n;
}

void OptConfig::validate(const std::string& source) const {
  auto pos = [&](int64_t v, const char* field) {
    ZO2_REQUIRE(v > 0, source, ": field '", field, "' must be positive, got ", v);
  };
  pos(vocab_size, "vocab_size");
  pos(hidden, "hidden_size");
  pos(layers, "num_hidden_layers");
  pos(heads, "num_attention_heads");
  pos(ffn, "ffn_dim");
  pos(max_positions, "max_position_embeddings");
  pos(word_embed_dim, "word_embed_proj_dim");
  ZO2_REQUIRE(hidden % heads == 0, source, ": hidden_size ", hidden, " is not a multiple of num_attention_heads ",
              heads);
  auto tok = [&](int64_t v, const char* field) {
    ZO2_REQUIRE(v >= 0 && v < vocab_size, source, ": field '", field, "' = ", v, " is outside the vocabulary (",
                vocab_size, ")");
  };
  tok(pad_token_id, "pad_token_id");
  tok(bos_token_id, "bos_token_id");
  tok(eos_token_id, "eos_token_id");
}

namespace {

using nlohmann::json;

int64_t get_int(const json& j, const char* key, int64_t fallback, const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  ZO2_REQUIRE(j[key].is_number_integer(), path, ": field '", key, "' must be an integer, got ", j[key].dump());
  return j[key].get<int64_t>();
}

bool get_bool(const json& j, const char* key, bool fallback, const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  ZO2_REQUIRE(j[key].is_boolean(), path, ": field '", key, "' must be true or false, got ", j[key].dump());
  return j[key].get<bool>();
}

}  // namespace

OptConfig load_hf_config(const std::string& path) {
  std::ifstream in(path);
  ZO2_REQUIRE(in.good(), path, ": cannot open (need a Hugging Face config.json)");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw_error(path, ": invalid JSON: ", e.what());
  }
  ZO2_REQUIRE(j.is_object(), path, ": top level must be a JSON object");
  if (j.contains("model_type")) {
    ZO2_REQUIRE(j["model_type"] == "opt", path, ": field 'model_type' is ", j["model_type"].dump(),
                ", zo2 trains OPT models (\"opt\")");
  }
  OptConfig c;
  c.vocab_size = get_int(j, "vocab_size", c.vocab_size, path);
  c.hidden = get_int(j, "hidden_size", c.hidden, path);
  c.layers = get_int(j, "num_hidden_layers", c.layers, path);
  c.heads = get_int(j, "num_attention_heads", c.heads, path);
  c.ffn = get_int(j, "ffn_dim", c.ffn, path);
  c.max_positions = get_int(j, "max_position_embeddings", c.max_positions, path);
  c.word_embed_dim = get_int(j, "word_embed_proj_dim", c.hidden, path);
  c.pre_ln = get_bool(j, "do_layer_norm_before", true, path);
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", true, path);
  c.pad_token_id = get_int(j, "pad_token_id", 1, path);
  c.bos_token_id = get_int(j, "bos_token_id", 2, path);
  c.eos_token_id = get_int(j, "eos_token_id", 2, path);

  if (j.contains("activation_function")) {
    ZO2_REQUIRE(j["activation_function"] == "relu", path, ": field 'activation_function' is ",
                j["activation_function"].dump(), "; only \"relu\" (every OPT checkpoint) is implemented");
  }
  ZO2_REQUIRE(get_bool(j, "enable_bias", true, path), path,
              ": field 'enable_bias' is false; OPT without biases is not implemented");
  ZO2_REQUIRE(get_bool(j, "layer_norm_elementwise_affine", true, path), path,
              ": field 'layer_norm_elementwise_affine' is false; not implemented");
  ZO2_REQUIRE(!get_bool(j, "_remove_final_layer_norm", false, path), path,
              ": field '_remove_final_layer_norm' is true; not implemented");
  c.validate(path);
  return c;
}

void save_hf_config(const OptConfig& c, const std::string& path, const std::string& torch_dtype) {
  json j = {
      {"_remove_final_layer_norm", false},
      {"activation_function", "relu"},
      {"architectures", {"OPTForCausalLM"}},
      {"attention_dropout", 0.0},
      {"bos_token_id", c.bos_token_id},
      {"do_layer_norm_before", c.pre_ln},
      {"dropout", 0.1},
      {"enable_bias", true},
      {"eos_token_id", c.eos_token_id},
      {"ffn_dim", c.ffn},
      {"hidden_size", c.hidden},
      {"init_std", 0.02},
      {"layer_norm_elementwise_affine", true},
      {"layerdrop", 0.0},
      {"max_position_embeddings", c.max_positions},
      {"model_type", "opt"},
      {"num_attention_heads", c.heads},
      {"num_hidden_layers", c.layers},
      {"pad_token_id", c.pad_token_id},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"torch_dtype", torch_dtype},  // transformers < 5
      {"dtype", torch_dtype},        // transformers >= 5
      {"use_cache", true},
      {"vocab_size", c.vocab_size},
      {"word_embed_proj_dim", c.word_embed_dim},
  };
  std::ofstream out(path);
  ZO2_REQUIRE(out.good(), path, ": cannot write");
  out << j.dump(2) << "\n";
  ZO2_REQUIRE(out.good(), path, ": write failed");
}

}  // namespace zo2
