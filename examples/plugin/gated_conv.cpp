// A gated-convolution byte model, as an out-of-tree megabench plugin (README.md here): each layer
// sees the last `kernel` positions of the layer below through one causal convolution, written as
// a matrix product over the unfolded window, gated as in GLU (Dauphin et al. 2017):
//
//   x_0 = embed(bytes)                                          (B, T, D)
//   w_l = [x_l(t - K + 1), ..., x_l(t)]   (zeros before t = 0)  (B, T, K * D)
//   a, g = split(W_l w_l)                                       (B, T, D) each
//   x_{l+1} = x_l + V_l (a * sigmoid(g))                        (B, T, D)
//   logits = U norm(x_L)                                        (B, T, 256)
//
// Byte t sees bytes t - depth * (K - 1) .. t, never a later one. Generation keeps only that
// receptive field, so each new byte costs the same (a Decoder of megabench's decoding.h).
#include <torch/torch.h>

#include "harness/api/registry.h"
#include "models/decoding.h"

namespace gated_conv {

using megabench::json;

struct GatedConvOptions {
  GatedConvOptions(int64_t dim, int64_t depth, int64_t kernel, int64_t seq_len)
      : dim_(dim), depth_(depth), kernel_(kernel), seq_len_(seq_len) {}
  /// Bytes the last position's logits depend on: depth * (kernel - 1) + 1.
  int64_t receptive_field() const { return depth() * (kernel() - 1) + 1; }
  /// Width of every layer. Default: 128
  TORCH_ARG(int64_t, dim);
  /// Gated convolution layers. Default: 2
  TORCH_ARG(int64_t, depth);
  /// Positions each layer sees (the convolution's width). Default: 8
  TORCH_ARG(int64_t, kernel);
  /// Training context in bytes. Default: 256
  TORCH_ARG(int64_t, seq_len);
};

const GatedConvOptions kDefaults(/*dim=*/128, /*depth=*/2, /*kernel=*/8, /*seq_len=*/256);
constexpr int64_t kVocab = 256;

struct GatedConvImpl : torch::nn::Module {
  explicit GatedConvImpl(const GatedConvOptions& o) : options(o) {
    embed = register_module("embed", torch::nn::Embedding(kVocab, o.dim()));
    for (int64_t l = 0; l < o.depth(); ++l) {
      conv->push_back(torch::nn::Linear(o.kernel() * o.dim(), 2 * o.dim()));
      out->push_back(torch::nn::Linear(o.dim(), o.dim()));
    }
    register_module("conv", conv);
    register_module("out", out);
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim()})));
    to_logits = register_module("to_logits", torch::nn::Linear(o.dim(), kVocab));
  }

  torch::Tensor forward(const torch::Tensor& bytes) {  // (B, T) -> (B, T, 256)
    const int64_t K = options.kernel();
    torch::Tensor x = embed(bytes);  // (B, T, D)
    for (int64_t l = 0; l < options.depth(); ++l) {
      // (B, T + K - 1, D) -> windows (B, T, D, K) -> (B, T, K * D), oldest position first
      auto padded = torch::constant_pad_nd(x, {0, 0, K - 1, 0});
      auto window = padded.unfold(1, K, 1).transpose(2, 3).flatten(2);
      auto ag = conv[l]->as<torch::nn::Linear>()->forward(window).chunk(2, -1);  // (B, T, D) x2
      x = x + out[l]->as<torch::nn::Linear>()->forward(ag[0] * torch::sigmoid(ag[1]));
    }
    return to_logits(norm(x));
  }

  GatedConvOptions options;
  torch::nn::Embedding embed{nullptr};
  torch::nn::ModuleList conv, out;
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear to_logits{nullptr};
};
TORCH_MODULE(GatedConv);

// Cached decoding: the last receptive_field bytes are all the next byte's logits depend on.
class WindowDecoder : public megabench::Decoder {
 public:
  explicit WindowDecoder(GatedConv& model) : model_(model) {}
  torch::Tensor begin(const torch::Tensor& prime) override {
    seq_ = prime;
    return next();
  }
  torch::Tensor append(const torch::Tensor& byte) override {
    seq_ = torch::cat({seq_, byte.unsqueeze(1)}, 1);
    const int64_t R = model_->options.receptive_field();
    if (seq_.size(1) > R) seq_ = seq_.narrow(1, seq_.size(1) - R, R);
    return next();
  }

 private:
  torch::Tensor next() {      // the logits of the byte after seq_ (B, 256)
    if (seq_.size(1) == 0) {  // an empty prime: byte 0's distribution from a zero byte
      return model_->forward(torch::zeros({seq_.size(0), 1}, torch::kLong)).select(1, 0);
    }
    return model_->forward(seq_).select(1, -1);
  }
  GatedConv& model_;
  torch::Tensor seq_;
};

class GatedConvByteModel : public megabench::ByteModel {
 public:
  explicit GatedConvByteModel(const GatedConvOptions& o) : model_(o) {}
  torch::nn::Module& module() override { return *model_; }
  int64_t seq_len() const override { return model_->options.seq_len(); }
  torch::Tensor byte_nll(const torch::Tensor& bytes) override {  // (B, T) -> (B, T - 1)
    auto logits = model_->forward(bytes.narrow(1, 0, bytes.size(1) - 1));
    return megabench::nll_from_logits(logits, bytes.narrow(1, 1, bytes.size(1) - 1));
  }
  torch::Tensor logits(const torch::Tensor& bytes) override { return model_->forward(bytes); }
  torch::Tensor generate(const torch::Tensor& prime, int64_t n,
                         const megabench::SamplingOptions& opts) override {
    WindowDecoder cached(model_);
    megabench::RerunDecoder uncached([this](const torch::Tensor& seq) {
      return model_->forward(seq.size(1) ? seq : torch::zeros({seq.size(0), 1}, torch::kLong))
          .select(1, -1);
    });
    if (opts.use_cache) return megabench::decode(cached, prime, n, opts);
    return megabench::decode(uncached, prime, n, opts);
  }
  megabench::ParamCount params() const override;

 private:
  GatedConv model_;
};

megabench::ParamCount count_params(const GatedConvOptions& o) {
  const int64_t D = o.dim(), K = o.kernel();
  const int64_t layer = (K * D + 1) * 2 * D + (D + 1) * D;
  const int64_t embed = kVocab * D, logits = (D + 1) * kVocab, norm = 2 * D;
  megabench::ParamCount p;
  p.total = embed + o.depth() * layer + norm + logits;
  p.non_embedding = o.depth() * layer + norm;
  p.groups = {{"embed", embed}, {"layers", o.depth() * layer}, {"norm", norm}, {"logits", logits}};
  return p;
}

megabench::ParamCount GatedConvByteModel::params() const {
  return count_params(model_->options);
}

// Analytical FLOPs per byte (harness/api/FLOPS.md: a multiply-add is 2; the logits count, the
// embedding lookup does not): per layer the convolution (K * D -> 2 * D) and the output (D -> D).
megabench::FlopBreakdown count_flops(const GatedConvOptions& o) {
  const double D = static_cast<double>(o.dim()), K = static_cast<double>(o.kernel());
  megabench::FlopBreakdown f;
  f.dense = static_cast<double>(o.depth()) * (2 * K * D * 2 * D + 2 * D * D);
  f.embed_logits = 2 * D * kVocab;
  return f;
}

const std::vector<megabench::OptionSpec> kOptions = {
    {"dim", "int", kDefaults.dim(), "width of every layer"},
    {"depth", "int", kDefaults.depth(), "gated convolution layers"},
    {"kernel", "int", kDefaults.kernel(), "positions each layer sees (the convolution's width)"},
    {"seq_len", "int", kDefaults.seq_len(), "training context in bytes"},
};

json resolve(const json& config) {
  json c = megabench::apply_option_defaults("gated_conv", kOptions, config);
  for (const char* key : {"dim", "depth", "kernel", "seq_len"}) {
    if (c[key].get<int64_t>() < 1)
      throw megabench::OptionError(key, "must be a positive integer, got " + c[key].dump());
  }
  return c;
}

MEGABENCH_REGISTER_MODEL(
    gated_conv,
    megabench::TypedModelSpec<GatedConvOptions>{
        .name = "gated_conv",
        .description = "gated-convolution byte model (an out-of-tree plugin: examples/plugin/)",
        .options = kOptions,
        .resolve = resolve,
        .parse =
            [](const json& r) {
              return GatedConvOptions(r["dim"], r["depth"], r["kernel"], r["seq_len"]);
            },
        .build = [](const GatedConvOptions& o) -> std::unique_ptr<megabench::ByteModel> {
          return std::make_unique<GatedConvByteModel>(o);
        },
        .flops = count_flops,
        .params = count_params,
        .tiny_config = {{"dim", 16}, {"depth", 1}, {"kernel", 4}, {"seq_len", 32}}});

}  // namespace gated_conv
