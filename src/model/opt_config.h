// OPT hyper-parameters, with the architecture variants as fields (not as branches on model names).
#pragma once

#include <algorithm>

#include <cstdint>
#include <string>

namespace zo2 {

struct OptConfig {
  std::string name = "opt";       // preset or directory name, for messages
  int64_t vocab_size = 50272;
  int64_t hidden = 768;           // H
  int64_t layers = 12;            // L
  int64_t heads = 12;
  int64_t ffn = 3072;             // F
  int64_t max_positions = 2048;   // the position table has max_positions + 2 rows (offset 2)
  int64_t word_embed_dim = 768;   // E; != H means project_in/out (opt-350m: 512)
  bool pre_ln = true;             // do_layer_norm_before; false = post-LN (opt-350m)
  bool tie_word_embeddings = true;
  int64_t pad_token_id = 1;
  int64_t bos_token_id = 2;
  int64_t eos_token_id = 2;

  int64_t head_dim() const { return hidden / heads; }
  bool has_projections() const { return word_embed_dim != hidden; }
  // transformers builds decoder.final_layer_norm only for pre-LN models.
  bool has_final_ln() const { return pre_ln; }
  int64_t position_rows() const { return max_positions + 2; }

  int64_t block_params() const;   // parameters of one decoder block
  int64_t outer_params() const;   // embeddings, projections, final LN, untied head
  // Elements of the largest weight matrix (fc1/fc2, the token table, or the position table).
  int64_t largest_block_matrix() const { return std::max(ffn, hidden) * hidden; }
  int64_t largest_matrix() const { return std::max({ffn * hidden, vocab_size * word_embed_dim, position_rows() * hidden}); }
  int64_t total_params() const { return outer_params() + layers * block_params(); }

  // Throws zo2::Error naming `source` and the field when a value is impossible.
  void validate(const std::string& source) const;
};

// Reads a Hugging Face config.json (OPTConfig fields). Refuses variants the forward does not implement
// (non-ReLU activation, enable_bias=false, non-affine LayerNorm, _remove_final_layer_norm).
OptConfig load_hf_config(const std::string& path);

// Writes config.json that transformers' OPTForCausalLM.from_pretrained accepts.
void save_hf_config(const OptConfig& cfg, const std::string& path, const std::string& torch_dtype);

}  // namespace zo2
