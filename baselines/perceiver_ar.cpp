#include "baselines/perceiver_ar.h"

#include <cmath>
#include <optional>
#include <string>

#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/profile_range.h"

namespace megabench {

namespace F = torch::nn::functional;

void PerceiverAROptions::validate() const {
  TORCH_CHECK(num_tokens() > 0, "PerceiverAR: num_tokens must be positive, got ", num_tokens());
  TORCH_CHECK(dim() > 0, "PerceiverAR: dim must be positive, got ", dim());
  TORCH_CHECK(depth() >= 0, "PerceiverAR: depth must be >= 0, got ", depth());
  TORCH_CHECK(perceive_depth() >= 0, "PerceiverAR: perceive_depth must be >= 0, got ",
              perceive_depth());
  TORCH_CHECK(prefix_len() >= 0, "PerceiverAR: prefix_len must be >= 0, got ", prefix_len());
  TORCH_CHECK(seq_len() > prefix_len(), "PerceiverAR: seq_len (", seq_len(),
              ") must be greater than prefix_len (", prefix_len(), ")");
  TORCH_CHECK(heads() > 0, "PerceiverAR: heads must be positive, got ", heads());
  TORCH_CHECK(dim_head() >= rotary_dim(), "PerceiverAR: dim_head must be at least 32 (the rotary ",
              "embedding rotates max(32, dim_head / 2) features), got ", dim_head());
  TORCH_CHECK(perceive_max_heads_process() > 0,
              "PerceiverAR: perceive_max_heads_process must be positive, got ",
              perceive_max_heads_process());
  TORCH_CHECK(dropout() >= 0 && dropout() < 1, "PerceiverAR: dropout must lie in [0, 1), got ",
              dropout());
  TORCH_CHECK(cross_attn_dropout() >= 0 && cross_attn_dropout() < 1,
              "PerceiverAR: cross_attn_dropout must lie in [0, 1), got ", cross_attn_dropout());
  TORCH_CHECK(ff_mult() > 0, "PerceiverAR: ff_mult must be positive, got ", ff_mult());
}

DecodeWindow decode_window_of(const std::string& name, const std::string& where) {
  if (name == "recompute") return DecodeWindow::kRecompute;
  if (name == "slide") return DecodeWindow::kSlide;
  throw std::invalid_argument(where + ": expected \"recompute\" or \"slide\", got \"" + name +
                              "\"");
}

const char* decode_window_name(DecodeWindow w) {
  return w == DecodeWindow::kSlide ? "slide" : "recompute";
}

static torch::nn::LayerNorm layer_norm(int64_t dim) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}));
}

static Linear linear(int64_t in, int64_t out, bool bias) {
  return Linear(torch::nn::LinearOptions(in, out).bias(bias));
}

// (B, n, H*d) -> (B, H, n, d)
static torch::Tensor split_heads(const torch::Tensor& t, int64_t heads) {
  return t.view({t.size(0), t.size(1), heads, -1}).transpose(1, 2);
}

// (B, H, n, d) -> (B, n, H*d)
static torch::Tensor merge_heads(const torch::Tensor& t) {
  return t.transpose(1, 2).reshape({t.size(0), t.size(2), -1});
}

// ---------------------------------------------------------------------------------------------
// CausalPrefixAttention

CausalPrefixAttentionImpl::CausalPrefixAttentionImpl(int64_t dim_, int64_t dim_head_,
                                                     int64_t heads_, int64_t max_heads_process_,
                                                     double dropout_, AttentionPath attention_)
    : dim(dim_),
      dim_head(dim_head_),
      heads(heads_),
      max_heads_process(max_heads_process_),
      dropout(dropout_),
      attention(attention_) {
  reset();
}

void CausalPrefixAttentionImpl::reset() {
  const int64_t inner = heads * dim_head;
  norm = register_module("norm", layer_norm(dim));
  context_norm = register_module("context_norm", layer_norm(dim));
  to_q = register_module("to_q", linear(dim, inner, false));
  to_kv = register_module("to_kv", linear(dim, 2 * inner, false));
  to_out = register_module("to_out", linear(inner, dim, true));
}

std::pair<torch::Tensor, torch::Tensor> CausalPrefixAttentionImpl::prefix_kv(
    const torch::Tensor& context, const torch::Tensor& prefix_rotary) {
  auto kv = to_kv(context_norm(context)).chunk(2, -1);  // 2 x (B, C, H*d)
  auto k = apply_rotary(prefix_rotary, split_heads(kv[0], heads));
  return {k, split_heads(kv[1], heads)};  // (B, H, C, d)
}

torch::Tensor CausalPrefixAttentionImpl::forward(const torch::Tensor& x_in,
                                                 const torch::Tensor& prefix_k,
                                                 const torch::Tensor& prefix_v,
                                                 const torch::Tensor& prefix_keep,
                                                 const torch::Tensor& rotary, LayerCache& cache) {
  auto x = norm(x_in);                   // (B, n, D)
  auto q = split_heads(to_q(x), heads);  // (B, H, n, d)
  auto kv = to_kv(x).chunk(2, -1);
  // As the reference: q is scaled before it is rotated, the scores are not scaled again.
  q = apply_rotary(rotary, q * std::pow(static_cast<double>(dim_head), -0.5));
  auto k_lat = apply_rotary(rotary, split_heads(kv[0], heads));
  auto [k, v] = cache.append(k_lat, split_heads(kv[1], heads));  // (B, H, [C +] m, d)
  if (prefix_k.defined()) {
    k = torch::cat({prefix_k, k}, 2);  // (B, H, C + m, d)
    v = torch::cat({prefix_v, v}, 2);
  }

  AttendOptions ao;
  ao.causal = true;  // end-aligned: every latent sees the whole prefix and latents up to itself
  ao.scale = 1.0;
  ao.dropout = dropout;
  ao.training = is_training();
  ao.attention = attention;
  if (prefix_keep.defined()) {
    auto latent_keep =
        torch::ones({prefix_keep.size(0), k.size(2) - prefix_keep.size(1)}, prefix_keep.options());
    ao.keep_mask = torch::cat({prefix_keep, latent_keep}, 1).view({x.size(0), 1, 1, -1});
  }
  if (attention == AttentionPath::kSdpa)
    return to_out(merge_heads(attend(q, k, v, ao)));  // no scores to bound
  // Heads in chunks of max_heads_process, as the reference, to bound the (n, C + m) scores.
  std::vector<torch::Tensor> out;
  for (int64_t h0 = 0; h0 < heads; h0 += max_heads_process) {
    const int64_t hc = std::min(max_heads_process, heads - h0);
    out.push_back(attend(q.narrow(1, h0, hc), k.narrow(1, h0, hc), v.narrow(1, h0, hc), ao));
  }
  return to_out(merge_heads(torch::cat(out, 1)));  // (B, n, D)
}

// ---------------------------------------------------------------------------------------------
// PerceiverAR

PerceiverARImpl::PerceiverARImpl(PerceiverAROptions options_) : options(std::move(options_)) {
  reset();
}

void PerceiverARImpl::reset() {
  options.validate();
  const auto& o = options;
  token_emb = register_module("token_emb", torch::nn::Embedding(o.num_tokens(), o.dim()));
  pos_emb = register_module("pos_emb", torch::nn::Embedding(o.seq_len(), o.dim()));
  rotary_pos_emb =
      register_module("rotary_pos_emb", RotaryEmbedding(RotaryEmbeddingOptions(o.rotary_dim())));
  auto ff_options = FeedForwardOptions(o.dim())
                        .mult(o.ff_mult())
                        .dropout(o.dropout())
                        .norm(NormKind::kLayerNorm)
                        .bias(false);
  perceive_layers = register_module("perceive_layers", torch::nn::ModuleList());
  perceive_attn_.clear();
  perceive_ff_.clear();
  for (int64_t i = 0; i < o.perceive_depth(); ++i) {
    auto attn = CausalPrefixAttention(o.dim(), o.dim_head(), o.heads(),
                                      o.perceive_max_heads_process(), o.dropout(), o.attention());
    auto ff = make_feedforward(ff_options);
    perceive_layers->push_back(torch::nn::ModuleList(attn, ff));
    perceive_attn_.push_back(attn);
    perceive_ff_.push_back(ff);
  }
  layers = register_module("layers", torch::nn::ModuleList());
  attn_.clear();
  ff_.clear();
  for (int64_t i = 0; i < o.depth(); ++i) {
    // The shared attention block in the reference's layout: LayerNorm, one to_qkv, no dropout.
    auto attn = Attention(AttentionOptions(o.dim())
                              .dim_head(o.dim_head())
                              .heads(o.heads())
                              .norm(NormKind::kLayerNorm)
                              .fused_qkv(true)
                              .attention(o.attention()));
    auto ff = make_feedforward(ff_options);
    layers->push_back(torch::nn::ModuleList(attn, ff));
    attn_.push_back(attn);
    ff_.push_back(ff);
  }
  to_logits = register_module("to_logits", linear(o.dim(), o.num_tokens(), false));
}

torch::Tensor PerceiverARImpl::check_ids(const torch::Tensor& x, const char* what) const {
  const std::string where = std::string("PerceiverAR: ") + what;
  auto ids = check_byte_ids(x, options.num_tokens(), where.c_str());
  TORCH_CHECK(ids.dim() == 2, where, " must have shape (batch, length), got ", ids.sizes());
  TORCH_CHECK(ids.size(0) > 0 && ids.size(1) > 0, where, " must be non-empty, got shape ",
              ids.sizes());
  return ids.to(to_logits->weight.device());
}

torch::Tensor PerceiverARImpl::run_latents(torch::Tensor x, int64_t start,
                                           const std::vector<torch::Tensor>& pk,
                                           const std::vector<torch::Tensor>& pv,
                                           const torch::Tensor& prefix_keep,
                                           std::vector<LayerCache>& perceive_cache,
                                           std::vector<LayerCache>& layer_cache, bool project) {
  perceive_cache.resize(perceive_attn_.size());
  layer_cache.resize(attn_.size());
  auto rotary = rotary_pos_emb(x.size(1), start);  // (n, r) at the latents' positions
  // Cross-attention over the prefix and latent self-attention both span the whole sequence.
  for (size_t i = 0; i < perceive_attn_.size(); ++i) {
    {
      profile::Range r("global_attention");
      const auto& k = pk.empty() ? torch::Tensor() : pk[i];  // empty: the caches hold the prefix
      const auto& v = pv.empty() ? torch::Tensor() : pv[i];
      x = perceive_attn_[i](x, k, v, prefix_keep, rotary, perceive_cache[i]) + x;
    }
    profile::Range r("feedforward");
    x = perceive_ff_[i]->forward(x) + x;
  }
  for (size_t i = 0; i < attn_.size(); ++i) {
    {
      profile::Range r("global_attention");
      x = attn_[i](x, rotary, &layer_cache[i]) + x;
    }
    profile::Range r("feedforward");
    x = ff_[i]->forward(x) + x;
  }
  if (!project) return x;  // (B, n, D)
  profile::Range r("logits");
  return to_logits(x);  // (B, n, V)
}

torch::Tensor PerceiverARImpl::embed_tokens(const torch::Tensor& ids,
                                            const torch::Tensor& positions) const {
  return kernels::embedding(token_emb->weight, ids) +
         kernels::embedding(pos_emb->weight, positions);
}

torch::Tensor PerceiverARImpl::forward(const torch::Tensor& x_in, const torch::Tensor& prefix_mask,
                                       const torch::Tensor& labels) {
  auto ids = check_ids(x_in, "x");  // (B, n)
  const int64_t b = ids.size(0), n = ids.size(1), C = options.prefix_len();
  TORCH_CHECK(n > C && n <= options.seq_len(), "PerceiverAR: x length must satisfy ",
              "prefix_len (", C, ") < length <= seq_len (", options.seq_len(), "), got ", n);
  torch::Tensor keep = prefix_mask;
  if (keep.defined()) {
    TORCH_CHECK(keep.scalar_type() == torch::kBool, "PerceiverAR: prefix_mask must be bool, got ",
                keep.scalar_type());
    TORCH_CHECK(keep.dim() == 2 && keep.size(0) == b && keep.size(1) == C,
                "PerceiverAR: prefix_mask must have shape (batch, prefix_len) = (", b, ", ", C,
                "), got ", keep.sizes());
    keep = keep.to(ids.device());
  }
  torch::Tensor targets;
  if (labels.defined()) {
    TORCH_CHECK(labels.sizes() == ids.sizes(), "PerceiverAR: labels must have the shape of x ",
                ids.sizes(), ", got ", labels.sizes());
    targets = check_ids(labels, "labels").narrow(1, C, n - C);  // (B, n - C)
  }

  std::optional<profile::Range> embedding_range(std::in_place, "embedding");
  auto h = embed_tokens(ids, torch::arange(n, ids.options()));  // (B, n, D)
  auto prefix = h.narrow(1, 0, C);                              // (B, C, D)
  auto latents = h.narrow(1, C, n - C);                         // (B, n - C, D)
  auto prefix_rotary = rotary_pos_emb(C);                       // (C, r)

  if (is_training() && options.cross_attn_dropout() > 0) {
    // Each row keeps a random subset of the prefix, in order, with the rotary angles of the kept
    // positions -- drawn as the reference does (a float32 uniform, top-k), so seeds agree.
    const int64_t kept = C - static_cast<int64_t>(C * options.cross_attn_dropout());
    auto rand = torch::zeros({b, C}, torch::TensorOptions().device(ids.device())).uniform_();
    auto idx = std::get<1>(rand.topk(kept, -1));
    auto kept_mask = torch::zeros_like(rand).scatter_(1, idx, 1).to(torch::kBool);  // (B, C)
    prefix = prefix.index({kept_mask}).view({b, kept, -1});                         // (B, kept, D)
    if (keep.defined()) keep = keep.index({kept_mask}).view({b, kept});
    const int64_t r = prefix_rotary.size(-1);
    prefix_rotary = prefix_rotary.unsqueeze(0)
                        .expand({b, C, r})
                        .index({kept_mask})
                        .view({b, 1, kept, r});  // (B, 1, kept, r)
  }

  embedding_range.reset();

  std::vector<torch::Tensor> pk(perceive_attn_.size()), pv(perceive_attn_.size());
  {
    profile::Range r("global_attention");  // the cross-attention's prefix keys/values
    for (size_t i = 0; i < perceive_attn_.size(); ++i) {
      std::tie(pk[i], pv[i]) = perceive_attn_[i]->prefix_kv(prefix, prefix_rotary);
    }
  }
  std::vector<LayerCache> perceive_cache, layer_cache;
  // Logits (B, n - C, V), or the loss (ignore_index 0) fused with the projection of (B, n - C, D).
  auto x = run_latents(latents, C, pk, pv, keep, perceive_cache, layer_cache, !targets.defined());
  if (!targets.defined()) return x;
  profile::Range r("logits");
  return kernels::linear_cross_entropy(x, to_logits->weight, to_logits->bias, targets, 0);
}

// ---------------------------------------------------------------------------------------------
// Decoding

torch::Tensor PerceiverARImpl::window_logits(const PerceiverARDecodeState& st) {
  const int64_t T = st.tokens.size(1);
  const int64_t start = std::max<int64_t>(0, T - options.seq_len());
  auto window = st.tokens.narrow(1, start, T - start);
  torch::Tensor mask;
  if (st.pad > start) mask = st.valid.narrow(1, start, options.prefix_len());
  auto logits = forward(window, mask);
  return logits.select(1, logits.size(1) - 1);  // (B, V)
}

void PerceiverARImpl::prefill(PerceiverARDecodeState& st) {
  const int64_t T = st.tokens.size(1) - st.origin, C = options.prefix_len();
  TORCH_INTERNAL_ASSERT(T > C && T <= options.seq_len());
  auto window = st.tokens.narrow(1, st.origin, T);
  auto h = embed_tokens(window, torch::arange(T, window.options()));  // (B, T, D)
  auto prefix_rotary = rotary_pos_emb(C);
  const size_t P = perceive_attn_.size();
  // Each perceive layer's cache starts with the prefix keys/values; the latents' follow them.
  st.perceive_cache.assign(P, {});
  st.layer_cache.clear();
  for (size_t i = 0; i < P; ++i) {
    auto [k, v] = perceive_attn_[i]->prefix_kv(h.narrow(1, 0, C), prefix_rotary);  // (B, H, C, d)
    st.perceive_cache[i].append(k, v);
  }
  st.prefix_keep = st.pad > 0 ? st.valid.narrow(1, st.origin, C) : torch::Tensor();
  auto latents = h.narrow(1, C, T - C);  // (B, T - C, D)
  if (options.decode_window() == DecodeWindow::kSlide) st.latent_h = latents;
  auto logits = run_latents(latents, C, {}, {}, st.prefix_keep, st.perceive_cache, st.layer_cache);
  st.logits = logits.select(1, T - C - 1);
  st.cache_live = true;
}

// Drops the first of dim `d`'s entries and appends `last` (the window moves by one).
static torch::Tensor shift_in(const torch::Tensor& t, const torch::Tensor& last, int64_t d) {
  return torch::cat({t.narrow(d, 1, t.size(d) - 1), last}, d);
}

void PerceiverARImpl::slide(PerceiverARDecodeState& st, const torch::Tensor& token) {
  const int64_t S = options.seq_len(), C = options.prefix_len(), N = S - C;
  const int64_t t = st.tokens.size(1) - 1 - st.origin;  // the new token's position, >= S
  // The oldest latent (t - N) joins the prefix; the prefix's oldest token (t - S) leaves. In each
  // perceive cache ([C prefix | N latents]) that drops the first entry and overwrites the joining
  // latent's keys/values, now at prefix position C - 1, with its prefix keys/values: in place.
  auto joining = st.latent_h.narrow(1, 0, 1);  // (B, 1, D)
  auto rotary = rotary_pos_emb(1, t - N);
  for (size_t i = 0; i < perceive_attn_.size(); ++i) {
    auto& c = st.perceive_cache[i];
    c.keep_newest(C + N - 1);
    if (C == 0) continue;
    auto [k, v] = perceive_attn_[i]->prefix_kv(joining, rotary);  // (B, H, 1, d)
    c.k.narrow(2, C - 1, 1).copy_(k);
    c.v.narrow(2, C - 1, 1).copy_(v);
  }
  if (C > 0 && st.prefix_keep.defined())  // the joining latent is a real token
    st.prefix_keep = shift_in(st.prefix_keep, st.prefix_keep.new_ones({st.tokens.size(0), 1}), 1);
  // The self-attention caches keep the newest N - 1 latents: with the new one, the window's N.
  for (auto& c : st.layer_cache) c.keep_newest(N - 1);
  // The new token sits at the window's last position, as in the reference's recomputed window.
  auto h = token_emb(token) + pos_emb(torch::full({1}, S - 1, token.options()));  // (B, 1, D)
  st.latent_h = shift_in(st.latent_h, h, 1);
  st.logits = run_latents(h, t, {}, {}, st.prefix_keep, st.perceive_cache, st.layer_cache)
                  .select(1, 0);  // (B, V)
}

PerceiverARDecodeState PerceiverARImpl::begin(const torch::Tensor& prime_in, bool use_cache) {
  c10::InferenceMode inference;               // cheaper than NoGradGuard for decoding
  auto prime = check_ids(prime_in, "prime");  // (B, L)
  const int64_t b = prime.size(0), L = prime.size(1), C = options.prefix_len();
  PerceiverARDecodeState st;
  st.use_cache = use_cache;
  // The window needs more than C tokens; a shorter prime is left-padded, the padding masked.
  st.pad = std::max<int64_t>(0, C + 1 - L);
  st.tokens = torch::cat({torch::zeros({b, st.pad}, prime.options()), prime}, 1);
  auto bool_opts = prime.options().dtype(torch::kBool);
  st.valid = torch::cat({torch::zeros({b, st.pad}, bool_opts), torch::ones({b, L}, bool_opts)}, 1);
  // The slide mode caches a prime longer than the window too: its last seq_len tokens.
  const int64_t T = st.tokens.size(1), S = options.seq_len();
  if (use_cache && options.decode_window() == DecodeWindow::kSlide && T > S) st.origin = T - S;
  if (use_cache && T - st.origin <= S) {
    prefill(st);
  } else {
    st.logits = window_logits(st);
  }
  return st;
}

void PerceiverARImpl::append(PerceiverARDecodeState& st, const torch::Tensor& token_in) {
  c10::InferenceMode inference;  // cheaper than NoGradGuard for decoding
  const int64_t b = st.tokens.size(0);
  TORCH_CHECK(token_in.dim() == 1 && token_in.size(0) == b,
              "PerceiverAR: append expects one token per row, shape (", b, "), got ",
              token_in.sizes());
  auto token = check_ids(token_in.view({b, 1}), "token");  // (B, 1)
  st.tokens = torch::cat({st.tokens, token}, 1);
  st.valid = torch::cat({st.valid, torch::ones({b, 1}, st.valid.options())}, 1);
  const int64_t T = st.tokens.size(1) - st.origin;  // window positions so far
  const bool slide_mode = options.decode_window() == DecodeWindow::kSlide;
  if (st.use_cache && st.cache_live && T <= options.seq_len()) {
    auto pos = torch::full({1}, T - 1, token.options());
    auto h = token_emb(token) + pos_emb(pos);  // (B, 1, D)
    if (slide_mode) st.latent_h = torch::cat({st.latent_h, h}, 1);
    st.logits = run_latents(h, T - 1, {}, {}, st.prefix_keep, st.perceive_cache, st.layer_cache)
                    .select(1, 0);  // (B, V)
    return;
  }
  if (st.use_cache && st.cache_live && slide_mode) return slide(st, token);
  // The window slides from here on: every token's learned position moves, so the reference's
  // semantics (kRecompute) rerun it.
  if (st.cache_live) {
    st.cache_live = false;
    st.perceive_cache.clear();
    st.layer_cache.clear();
  }
  st.logits = window_logits(st);
}

namespace {

// Both modes live in PerceiverARDecodeState: the caches until the window slides, or (uncached) the
// whole window recomputed per token.
class PerceiverARDecoder : public Decoder {
 public:
  PerceiverARDecoder(PerceiverARImpl& model, bool use_cache)
      : model_(model), use_cache_(use_cache) {}
  torch::Tensor begin(const torch::Tensor& prime) override {
    state_ = model_.begin(prime, use_cache_);
    return state_.logits;  // (B, V)
  }
  torch::Tensor append(const torch::Tensor& token) override {
    model_.append(state_, token);
    return state_.logits;  // (B, V)
  }

 private:
  PerceiverARImpl& model_;
  bool use_cache_;
  PerceiverARDecodeState state_;
};

}  // namespace

std::unique_ptr<Decoder> PerceiverARImpl::decoder(bool use_cache) {
  return std::make_unique<PerceiverARDecoder>(*this, use_cache);
}

torch::Tensor PerceiverARImpl::generate(const torch::Tensor& prime, int64_t length,
                                        double temperature, double filter_thres, bool use_cache) {
  TORCH_CHECK(length >= 0, "PerceiverAR: length must be >= 0, got ", length);
  auto ids = check_ids(prime, "prime");  // (B, L)
  // Sampling runs in eval mode, as the reference's eval_decorator; the mode is restored after.
  struct ModeGuard {
    torch::nn::Module& m;
    bool was_training;
    ~ModeGuard() { m.train(was_training); }
  } guard{*this, is_training()};
  eval();
  return decode(*decoder(use_cache), ids, length, {temperature, filter_thres, use_cache});
}

}  // namespace megabench
