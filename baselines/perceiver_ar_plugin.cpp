// Registers Perceiver AR with the harness as "perceiver_ar".
//
// The harness's byte_nll(bytes (B, T)) runs the model on bytes[:, :T-1] and scores the bytes the
// latent positions predict, bytes[:, C+1:] (N = T - 1 - C per row), every byte value included.
// generate() with an empty prime starts from a single 0x00 byte (the model needs one token).
// FLOPs are per predicted byte: one full window's forward pass divided by its latent count.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "baselines/perceiver_ar.h"
#include "harness/api/flops.h"
#include "harness/api/registry.h"

namespace megabench {
namespace {

namespace F = torch::nn::functional;

const std::vector<OptionSpec>& perceiver_options() {
  // The defaults: PerceiverAROptions' own, and these for the arguments its constructor requires
  // (prefix_len and num_latents default from seq_len in resolve). The table reads every default
  // from here, so each lives in one place.
  static const PerceiverAROptions d(/*num_tokens=*/256, /*dim=*/512, /*depth=*/8, /*seq_len=*/4096,
                                    /*prefix_len=*/3072);
  static const std::vector<OptionSpec> specs = {
      {"num_tokens", "int", d.num_tokens(), "vocabulary size (256 bytes)"},
      {"dim", "int", d.dim(), "model width"},
      {"depth", "int", d.depth(), "self-attention layers over the latents"},
      {"seq_len", "int", d.seq_len(), "window in bytes: prefix + latents"},
      {"prefix_len", "int", nullptr, "prefix length; default seq_len - num_latents"},
      {"num_latents", "int", nullptr,
       "latent positions (seq_len - prefix_len); default seq_len / 4"},
      {"dim_head", "int", d.dim_head(),
       "width of one attention head (>= 32: 32 features are rotated)"},
      {"heads", "int", d.heads(), "attention heads"},
      {"dropout", "float", d.dropout(),
       "attention dropout of the perceive layers, feedforward dropout"},
      {"cross_attn_dropout", "float", d.cross_attn_dropout(),
       "fraction of the prefix dropped per row in training"},
      {"ff_mult", "float", d.ff_mult(), "feedforward hidden width multiplier"},
      {"perceive_depth", "int", d.perceive_depth(), "cross-attention layers"},
      {"perceive_max_heads_process", "int", d.perceive_max_heads_process(),
       "heads the perceive layers score at once"},
      {"attention", "string", attention_name(d.attention()),
       "\"sdpa\" (fused scaled_dot_product_attention) or \"explicit\" (the reference's softmax)"},
      {"decode_window", "string", decode_window_name(d.decode_window()),
       "cached decoding once the window slides: \"recompute\" (the reference's semantics: the "
       "window is rerun per byte) or \"slide\" (streaming: cached keys/values are kept, an "
       "approximation; baselines/perceiver_ar.h)"},
  };
  return specs;
}

[[noreturn]] void fail(const std::string& msg) {
  throw std::invalid_argument("perceiver_ar: " + msg);
}

bool has(const json& c, const char* key) {
  return c.contains(key) && !c[key].is_null();
}

// prefix_len and num_latents split the window (seq_len = prefix_len + num_latents); each error
// names the option the user wrote, not the derived one.
void resolve_window(const json& config, json& r) {
  const int64_t L = r["seq_len"];
  if (has(config, "num_latents")) {
    const int64_t n = config["num_latents"].get<int64_t>();
    if (n < 1 || n > L) {
      throw OptionError("num_latents", "must be between 1 and the window length seq_len (" +
                                           std::to_string(L) + "), got " + std::to_string(n));
    }
    if (has(config, "prefix_len") && config["prefix_len"] != L - n) {
      throw OptionError("num_latents",
                        "disagrees with prefix_len: num_latents must equal "
                        "seq_len - prefix_len (" +
                            std::to_string(L - config["prefix_len"].get<int64_t>()) + "), got " +
                            std::to_string(n));
    }
    r["prefix_len"] = L - n;
  } else if (has(config, "prefix_len")) {
    const int64_t c = config["prefix_len"].get<int64_t>();
    if (c < 0 || c > L - 1) {
      throw OptionError("prefix_len", "must be between 0 and the window length - 1 (" +
                                          std::to_string(L - 1) + "), got " + std::to_string(c));
    }
  } else {
    if (L < 4) {
      throw OptionError("seq_len",
                        "must be at least 4 for the default num_latents (seq_len / 4), "
                        "got " +
                            std::to_string(L) + "; or give num_latents");
    }
    r["prefix_len"] = L - L / 4;
  }
  r["num_latents"] = L - r["prefix_len"].get<int64_t>();
}

json resolve_config(const json& config) {
  if (!config.is_object()) fail("config must be a JSON object, got " + config.dump());
  // A null value means "the default", as for the derived options below.
  json given = json::object();
  for (const auto& [key, value] : config.items()) {
    if (!value.is_null()) given[key] = value;
  }
  json r = apply_option_defaults("perceiver_ar", perceiver_options(), given);
  resolve_window(config, r);
  attention_path(r["attention"].get<std::string>(), "perceiver_ar.attention");
  decode_window_of(r["decode_window"].get<std::string>(), "perceiver_ar.decode_window");
  return r;
}

PerceiverAROptions options_of(const json& r) {
  return PerceiverAROptions(r["num_tokens"], r["dim"], r["depth"], r["seq_len"], r["prefix_len"])
      .dim_head(r["dim_head"])
      .heads(r["heads"])
      .dropout(r["dropout"])
      .cross_attn_dropout(r["cross_attn_dropout"])
      .ff_mult(r["ff_mult"])
      .perceive_depth(r["perceive_depth"])
      .perceive_max_heads_process(r["perceive_max_heads_process"])
      .attention(attention_path(r["attention"].get<std::string>()))
      .decode_window(decode_window_of(r["decode_window"].get<std::string>(), "decode_window"));
}

json resolve_checked(const json& config) {
  json r = resolve_config(config);
  try {
    options_of(r).validate();
  } catch (const c10::Error& e) {
    throw std::invalid_argument(std::string("perceiver_ar: ") + e.what_without_backtrace());
  }
  return r;
}

ParamCount count_params(const PerceiverAROptions& o) {
  const int64_t D = o.dim(), V = o.num_tokens(), I = o.heads() * o.dim_head();
  const auto hidden = static_cast<int64_t>(static_cast<double>(D) * o.ff_mult());
  const int64_t ff = 2 * D + 2 * D * hidden;            // LayerNorm, two bias-free linears
  const int64_t perceive = 4 * D + 4 * D * I + D + ff;  // 2 LayerNorms, q/kv/out, out bias
  const int64_t layer = 2 * D + 4 * D * I + ff;         // LayerNorm, qkv/out
  ParamCount pc;
  const int64_t embed = V * D + o.seq_len() * D, logits = D * V;
  pc.groups = {{"embeddings", embed},
               {"perceive", o.perceive_depth() * perceive},
               {"layers", o.depth() * layer},
               {"to_logits", logits}};
  for (const auto& g : pc.groups) pc.total += g.second;
  pc.non_embedding = pc.total - embed - logits;
  return pc;
}

// Per predicted byte, from the shared per-layer counts (harness/api/flops.h: a multiply-add is 2
// FLOPs, every query scores its whole key range). The perceive layers' queries are the N latents;
// their keys are the whole window (L), and the prefix's C keys and values, projected once, are
// shared by the N latents.
FlopBreakdown count_flops(const PerceiverAROptions& o) {
  const int64_t I = o.heads() * o.dim_head();
  const auto hidden = static_cast<int64_t>(static_cast<double>(o.dim()) * o.ff_mult());
  const int64_t L = o.seq_len(), C = o.prefix_len(), N = L - C;
  const auto perceive = flops::layer_per_token({o.dim(), I, hidden, L});
  const auto self = flops::layer_per_token({o.dim(), I, hidden, N});
  const double prefix_kv =
      flops::linear_per_token(o.dim(), 2 * I) * static_cast<double>(C) / static_cast<double>(N);
  FlopBreakdown f;
  f.attention = o.perceive_depth() * perceive.attention + o.depth() * self.attention;
  f.dense = o.perceive_depth() * (perceive.dense + prefix_kv) + o.depth() * self.dense;
  f.embed_logits = flops::linear_per_token(o.dim(), o.num_tokens());
  return f;
}

class PerceiverARByteModel : public ByteModel {
 public:
  explicit PerceiverARByteModel(const PerceiverAROptions& o) : model_(o) {}
  torch::nn::Module& module() override { return *model_; }
  int64_t seq_len() const override { return model_->options.seq_len(); }

  torch::Tensor byte_nll(const torch::Tensor& bytes) override {
    const int64_t C = model_->options.prefix_len();
    TORCH_CHECK(bytes.dim() == 2, "perceiver_ar: bytes must have shape (batch, length), got ",
                bytes.sizes());
    const int64_t T = bytes.size(1);
    TORCH_CHECK(T >= C + 2 && T <= seq_len() + 1, "perceiver_ar: byte_nll needs ",
                "prefix_len + 2 (", C + 2, ") to seq_len + 1 (", seq_len() + 1, ") bytes, got ", T);
    auto logits = model_->forward(bytes.narrow(1, 0, T - 1));  // (B, N, V)
    auto targets = bytes.narrow(1, C + 1, T - 1 - C).to(logits.device(), torch::kLong);
    auto nll = F::cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}),
                                F::CrossEntropyFuncOptions().reduction(torch::kNone));
    return nll.view({bytes.size(0), -1});  // (B, N)
  }

  /// Logits of the latent positions only, (B, T - prefix_len, V).
  torch::Tensor logits(const torch::Tensor& bytes) override { return model_->forward(bytes); }

  torch::Tensor generate(const torch::Tensor& prime, int64_t n,
                         const SamplingOptions& opts) override {
    // The model needs at least one token to predict from; an empty prime starts from byte 0,
    // which is not part of the result.
    if (prime.dim() == 2 && prime.size(1) == 0) {
      auto start = torch::zeros({prime.size(0), 1}, torch::kLong);
      return model_->generate(start, n, opts.temperature, opts.filter_thres, opts.use_cache)
          .narrow(1, 1, n);  // (B, n)
    }
    return model_->generate(prime, n, opts.temperature, opts.filter_thres, opts.use_cache);
  }

  bool generates_past_seq_len() const override { return true; }  // the window slides

  ParamCount params() const override { return count_params(model_->options); }

 private:
  PerceiverAR model_;
};

TypedModelSpec<PerceiverAROptions> perceiver_spec() {
  TypedModelSpec<PerceiverAROptions> spec;
  spec.name = "perceiver_ar";
  spec.description =
      "Perceiver AR (perceiver-ar-pytorch 0.0.10): causal cross-attention from the latents to a "
      "long prefix, then self-attention over the latents; cached decoding until the window slides, "
      "then the window recomputed per byte or (decode_window \"slide\") streamed";
  spec.options = perceiver_options();
  spec.resolve = resolve_checked;
  spec.parse = options_of;
  spec.build = [](const PerceiverAROptions& o) -> std::unique_ptr<ByteModel> {
    return std::make_unique<PerceiverARByteModel>(o);
  };
  spec.flops = count_flops;
  spec.params = count_params;
  spec.tiny_config = {{"dim", 32},        {"depth", 1}, {"seq_len", 24},
                      {"num_latents", 8}, {"heads", 2}, {"dim_head", 32}};
  return spec;
}

}  // namespace

MEGABENCH_REGISTER_MODEL(perceiver_ar, perceiver_spec());

}  // namespace megabench
