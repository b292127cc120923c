// Pretrains zo2's embedded demo model (configs/demo/model) by backpropagation with Adam on the
// unlabelled text that scripts/demo/make_demo_data.py writes, using zo2's own OPT forward under
// LibTorch autograd. The result knows the sentiment of the demo sentences but has never seen the
// verbalizer words " great" / " terrible", so its zero-shot accuracy on the demo task is near chance
// and MeZO fine-tuning has something to learn (docs/demo.md).
//
// Regenerate (deterministic on one machine; a few minutes on 2 CPU cores):
//   python3 scripts/demo/make_demo_data.py --out configs/demo
//   cmake --build build --target zo2_pretrain_demo
//   build/zo2_pretrain_demo configs/demo/model configs/demo/data/pretrain.txt configs/demo/model
// (the tokenizer files that make_demo_data.py wrote into configs/demo/model stay; weights and
// config.json are added beside them).
#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "data/example.h"
#include "io/checkpoint_save.h"
#include "text/tokenizer.h"
#include "train/sampler.h"
#include "zo/init.h"
#include "zo/zo_model.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s TOKENIZER_DIR PRETRAIN_TEXT OUT_DIR [STEPS]\n", argv[0]);
    return 2;
  }
  const std::string tok_dir = argv[1], text = argv[2], out = argv[3];
  const int64_t steps = argc > 4 ? std::stoll(argv[4]) : 2000;
  try {
    torch::manual_seed(1);
    zo2::Tokenizer tok(tok_dir);
    std::vector<zo2::Example> corpus;
    std::ifstream in(text);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) corpus.push_back({{{tok.encode(line), 1}}, -1});
    if (corpus.empty()) throw zo2::Error(text + ": no text");

    zo2::OptConfig cfg;
    cfg.name = "zo2-demo";
    cfg.vocab_size = (tok.vocab_size() + 7) / 8 * 8;
    cfg.hidden = 64;
    cfg.layers = 2;
    cfg.heads = 4;
    cfg.ffn = 256;
    cfg.max_positions = 64;
    cfg.word_embed_dim = 64;
    cfg.pad_token_id = tok.special().pad;
    cfg.bos_token_id = tok.special().bos;
    cfg.eos_token_id = tok.special().eos;
    zo2::OptWeights w = zo2::random_weights(cfg, at::kFloat, at::kCPU, 1);
    std::vector<at::Tensor> params;
    zo2::for_each_param(cfg, w, [&](const zo2::ParamInfo&, at::Tensor& t) { params.push_back(t.requires_grad_(true)); });
    torch::optim::Adam adam(params, torch::optim::AdamOptions(3e-3));
    zo2::ResidentModel model(cfg, w);
    zo2::PlainParams plain(at::kFloat);
    zo2::Sampler sampler(static_cast<int64_t>(corpus.size()), 2);
    const int64_t batch = 32;
    double avg = 0;
    for (int64_t s = 0; s < steps; ++s) {
      std::vector<const zo2::Example*> ex;
      for (int64_t i : sampler.take(s * batch, batch)) ex.push_back(&corpus[i]);
      zo2::BatchOptions bo;
      bo.pad_id = cfg.pad_token_id;
      bo.max_len = cfg.max_positions;
      zo2::Batch b = zo2::make_batch(ex, bo);
      adam.zero_grad();
      at::Tensor loss = model.branch_losses(plain, b).sum();
      loss.backward();
      adam.step();
      avg = s == 0 ? loss.item<double>() : 0.98 * avg + 0.02 * loss.item<double>();
      if ((s + 1) % 250 == 0) std::printf("step %lld loss %.4f\n", static_cast<long long>(s + 1), avg);
    }
    torch::NoGradGuard no_grad;
    zo2::SaveOptions so;
    if (tok_dir != out) so.tokenizer_dir = tok_dir;
    zo2::save_checkpoint(out, cfg, w, at::kFloat, so);
    std::printf("wrote %s (%lld parameters)\n", out.c_str(), static_cast<long long>(cfg.total_params()));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zo2_pretrain_demo: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
