#include "models/layers.h"

#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <stdexcept>

#include "kernels/decode_attention.h"
#include "kernels/gemv.h"
#include "kernels/local_attention.h"
#include "kernels/profile_range.h"
#include "kernels/rms_norm.h"
#include "kernels/short_attention.h"

namespace megabench {

namespace F = torch::nn::functional;

// ---------------------------------------------------------------------------------------------
// Linear

torch::Tensor LinearImpl::forward(const torch::Tensor& input) {
  const int64_t k = weight.size(1);
  const bool one_row = input.numel() == k && input.dim() >= 1 && input.size(-1) == k;
  const bool grad =
      torch::GradMode::is_enabled() &&
      (weight.requires_grad() || input.requires_grad() || (bias.defined() && bias.requires_grad()));
  // One row without gradient (a decoding step) goes through kernels/gemv.h, which reads the
  // weights at the memory's speed; everything else is at::linear (one addmm over the batch).
  if (!one_row || grad || (bias.defined() && bias.scalar_type() != weight.scalar_type())) {
    return at::linear(input, weight, bias);
  }
  // Under CPU autocast at::linear computes in the autocast dtype: a kernel runs only where that
  // changes nothing (bf16 weights and row under bf16 autocast).
  const bool autocast = at::autocast::is_autocast_enabled(at::kCPU);
  const bool autocast_bf16 =
      autocast && at::autocast::get_autocast_dtype(at::kCPU) == at::kBFloat16;
  torch::Tensor out;  // (N)
  if (kernels::gemv_bf16_supported(weight, input) && (!autocast || autocast_bf16)) {
    // The kernel where its AVX512-BF16 path runs; elsewhere at::mv, which reads bf16 weights as
    // fast as the kernel's portable path does.
    out = kernels::gemv_bf16_auto_path() == kernels::GemvPath::kAvx512Bf16
              ? kernels::gemv_bf16(weight, input, bias)
              : kernels::gemv_bf16_reference(weight, input, bias);
  } else if (!autocast && kernels::gemv_f32_fast() && kernels::gemv_f32_supported(weight, input)) {
    out = kernels::gemv_f32(weight, input, bias);
  } else {
    return at::linear(input, weight, bias);
  }
  auto shape = input.sizes().vec();
  shape.back() = weight.size(0);
  return out.view(shape);  // (..., 1, N)
}

// ---------------------------------------------------------------------------------------------
// RMSNorm

RMSNormImpl::RMSNormImpl(RMSNormOptions options_) : options(std::move(options_)) {
  reset();
}

void RMSNormImpl::reset() {
  TORCH_CHECK(options.dim() > 0, "RMSNorm: dim must be positive, got ", options.dim());
  g = register_parameter("g", torch::ones({options.dim()}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  // The fused CPU kernel for float32 / float64 (under bf16 autocast the residual stream it reads is
  // float32) and for bf16 inference weights without gradients; the composite expression elsewhere
  // (CUDA, bf16 with gradients).
  if (kernels::rms_norm_supported(x, g)) return kernels::rms_norm(x, g, options.eps());
  return kernels::rms_norm_reference(x, g, options.eps());
}

torch::nn::AnyModule make_norm(NormKind kind, int64_t dim) {
  if (kind == NormKind::kRMSNorm) return torch::nn::AnyModule(RMSNorm(RMSNormOptions(dim)));
  return torch::nn::AnyModule(torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
}

// ---------------------------------------------------------------------------------------------
// Feedforward

torch::nn::Sequential make_feedforward(const FeedForwardOptions& o) {
  const auto hidden = static_cast<int64_t>(static_cast<double>(o.dim()) * o.mult());
  TORCH_CHECK(hidden > 0, "FeedForward: dim * mult must be positive, got dim=", o.dim(),
              " mult=", o.mult());
  torch::nn::Sequential ff;
  ff->push_back(make_norm(o.norm(), o.dim()));
  ff->push_back(Linear(torch::nn::LinearOptions(o.dim(), hidden).bias(o.bias())));
  ff->push_back(torch::nn::GELU());
  ff->push_back(torch::nn::Dropout(o.dropout()));
  ff->push_back(Linear(torch::nn::LinearOptions(hidden, o.dim()).bias(o.bias())));
  return ff;
}

// ---------------------------------------------------------------------------------------------
// Rotary

RotaryEmbeddingImpl::RotaryEmbeddingImpl(RotaryEmbeddingOptions options_)
    : options(std::move(options_)) {
  reset();
}

void RotaryEmbeddingImpl::reset() {
  TORCH_CHECK(options.dim() > 0 && options.dim() % 2 == 0,
              "RotaryEmbedding: dim must be positive and even, got ", options.dim());
  auto exponent =
      torch::arange(0, options.dim(), 2).to(torch::kFloat32) / static_cast<double>(options.dim());
  inv_freq = register_buffer("inv_freq", 1.0 / torch::pow(options.theta(), exponent));
  exact_inv_freq_ = inv_freq.clone();
}

torch::Tensor RotaryEmbeddingImpl::forward(int64_t n, int64_t start) {
  auto freq = inv_freq;
  if (freq.scalar_type() == torch::kBFloat16 || freq.scalar_type() == torch::kHalf) {
    // Weights cast to 16 bits for inference: the angles stay float32, from the exact frequencies
    // (a position times a rounded frequency is off by radians at long contexts), kept since
    // reset() so that a decoding step does not recompute them.
    freq = exact_inv_freq_.to(freq.device());
  }
  auto t = torch::arange(start, start + n, freq.options());
  auto freqs = torch::outer(t, freq);     // (n, dim/2)
  return torch::cat({freqs, freqs}, -1);  // (n, dim)
}

static torch::Tensor rotate_half(const torch::Tensor& x) {
  auto halves = x.chunk(2, -1);
  return torch::cat({-halves[1], halves[0]}, -1);
}

torch::Tensor apply_rotary(const torch::Tensor& freqs, const torch::Tensor& t) {
  const int64_t rot = freqs.size(-1);
  TORCH_CHECK(rot <= t.size(-1), "apply_rotary: rotary dim ", rot, " exceeds head dim ",
              t.size(-1));
  if (rot == t.size(-1)) {
    return (t * freqs.cos() + rotate_half(t) * freqs.sin()).to(t.scalar_type());
  }
  auto head = t.narrow(-1, 0, rot);
  auto pass = t.narrow(-1, rot, t.size(-1) - rot);
  head = head * freqs.cos() + rotate_half(head) * freqs.sin();
  return torch::cat({head.to(t.scalar_type()), pass}, -1);
}

// ---------------------------------------------------------------------------------------------
// Token shift

torch::Tensor token_shift(const torch::Tensor& x) {
  auto parts = x.chunk(2, -1);
  auto shifted = torch::constant_pad_nd(parts[1], {0, 0, 1, -1}, 0);  // (..., n, D - D/2)
  return torch::cat({parts[0], shifted}, -1);
}

torch::Tensor token_shift_step(const torch::Tensor& x, const torch::Tensor& prev) {
  if (!prev.defined()) return token_shift(x);
  if (x.size(-2) == 1) {  // the decoding step: one cat instead of cat, pad, cat and narrow
    const int64_t d = x.size(-1), h = (d + 1) / 2;  // chunk(2) puts the odd feature first
    return torch::cat({x.narrow(-1, 0, h), prev.narrow(-1, h, d - h)}, -1);
  }
  const int64_t n = x.size(-2);
  return token_shift(torch::cat({prev, x}, -2)).narrow(-2, 1, n);
}

// ---------------------------------------------------------------------------------------------
// Attention core

AttentionPath attention_path(const std::string& name, const std::string& where) {
  if (name == "explicit") return AttentionPath::kExplicit;
  if (name == "sdpa") return AttentionPath::kSdpa;
  throw std::invalid_argument(where + ": expected \"explicit\" or \"sdpa\", got \"" + name + "\"");
}

const char* attention_name(AttentionPath path) {
  return path == AttentionPath::kSdpa ? "sdpa" : "explicit";
}

// -finfo(dtype).max, the references' mask value.
static double finfo_lowest(c10::ScalarType t) {
  double v = 0;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, t, "finfo_lowest", [&] {
    v = -static_cast<double>(std::numeric_limits<scalar_t>::max());
  });
  return v;
}

// LibTorch's CPU flash attention backward in bf16 / fp16 is several times slower than in fp32 on
// short sequences (fwd + bwd at (B, H, n, d) = (256, 16, 9, 64), 2 threads: 174 ms against 16 ms
// for the explicit product in bf16; the two meet near n = 256 and SDPA wins beyond, 39 against
// 148 ms at n = 1025). There, when gradients will flow, attention takes the explicit path.
static bool slow_cpu_flash_backward(const torch::Tensor& q, const torch::Tensor& k,
                                    const torch::Tensor& v) {
  const auto t = q.scalar_type();
  return q.device().is_cpu() && (t == torch::kBFloat16 || t == torch::kHalf) && k.size(-2) <= 256 &&
         at::GradMode::is_enabled() &&
         (q.requires_grad() || k.requires_grad() || v.requires_grad());
}

namespace {

// -1: not measured yet; 0 / 1: the decision (measured or set).
std::atomic<int> g_cpu_sdpa_in_fp32{-1};

// Seconds of the fastest of five 256^3 products in `dtype` on the CPU.
double matmul_seconds(torch::ScalarType dtype) {
  c10::InferenceMode inference;
  // Called from inside autocast regions, which would run the fp32 product in bf16.
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  auto a = torch::randn({256, 256}).to(dtype), b = torch::randn({256, 256}).to(dtype);
  at::mm(a, b);  // warm: the first call may pick or pack kernels
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    at::mm(a, b);
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// SDPA on 16-bit CPU inputs, widened to float32 when cpu_sdpa_in_fp32() says so.
torch::Tensor cpu_aware_sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             const std::optional<torch::Tensor>& mask, double p, bool causal,
                             double scale) {
  const auto t = q.scalar_type();
  if (!q.device().is_cpu() || (t != torch::kBFloat16 && t != torch::kHalf) || !cpu_sdpa_in_fp32()) {
    return at::scaled_dot_product_attention(q, k, v, mask, p, causal, scale);
  }
  // Autocast would narrow the widened inputs again: SDPA is on its lower-precision list.
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  auto wide = [](const torch::Tensor& x) { return x.to(torch::kFloat32); };
  return at::scaled_dot_product_attention(wide(q), wide(k), wide(v), mask, p, causal, scale)
      .to(t);  // (B, H, n, d)
}

// The fused path's CPU kernels, or nothing when neither takes the call: short key ranges
// (MEGABYTE's local stages) take the short-attention kernel, which fuses what LibTorch's flash
// kernel spends on blocking there; a decoding step (one query, no gradient) takes the decode
// kernel, which reads the key and value cache once, where LibTorch's flash kernel runs a single
// query through a GEMV. Windows beyond the key range are no windows.
std::optional<torch::Tensor> cpu_attention_kernel(const torch::Tensor& q, const torch::Tensor& k,
                                                  const torch::Tensor& v, const AttendOptions& o,
                                                  double p, double scale) {
  const int64_t k_len = k.size(-2);
  if (o.attention != AttentionPath::kSdpa || p != 0.0 || (o.window != 0 && o.window < k_len)) {
    return std::nullopt;
  }
  if (kernels::short_attention_supported(q, k, v, o.keep_mask)) {
    return kernels::short_attention(q, k, v, scale, o.causal, o.keep_mask);  // (B, H, n, d)
  }
  if (kernels::decode_attention_supported(q, k, v, o.keep_mask)) {
    return kernels::decode_attention(q, k, v, scale, o.causal, o.keep_mask);  // (B, H, 1, d)
  }
  return std::nullopt;
}

}  // namespace

bool cpu_sdpa_in_fp32() {
  int value = g_cpu_sdpa_in_fp32.load();
  if (value < 0) {
    value = matmul_seconds(torch::kBFloat16) > 1.2 * matmul_seconds(torch::kFloat32) ? 1 : 0;
    g_cpu_sdpa_in_fp32.store(value);
  }
  return value == 1;
}

void set_cpu_sdpa_in_fp32(std::optional<bool> value) {
  g_cpu_sdpa_in_fp32.store(value ? static_cast<int>(*value) : -1);
}

torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const AttendOptions& o) {
  // Scores, softmax and the weighted sum, nested in the caller's attention range: the part whose
  // cost grows with the key range (the projections around it are linear in the length).
  profile::Range core("attention_core");
  const int64_t n = q.size(-2), k_len = k.size(-2);
  TORCH_CHECK(k_len >= n || !o.causal, "attend: causal attention needs at least as many keys (",
              k_len, ") as queries (", n, ")");
  const double scale = o.scale ? *o.scale : std::pow(static_cast<double>(q.size(-1)), -0.5);
  if (o.kernel == AttentionKernel::kLocalCuda && q.is_cuda() && o.causal && n == k_len &&
      (o.window == 0 || o.window >= n) && !o.keep_mask.defined() &&
      !(o.training && o.dropout > 0) && kernels::local_attention_supported(q, k, v)) {
    return kernels::local_attention(q, k, v, scale);  // (B, H, n, d)
  }

  const double p = o.training ? o.dropout : 0.0;
  if (auto fused = cpu_attention_kernel(q, k, v, o, p, scale)) return *fused;
  const bool sdpa = o.attention == AttentionPath::kSdpa && !slow_cpu_flash_backward(q, k, v);
  // Plain causal self-attention goes through is_causal, which lets LibTorch pick its flash kernel
  // and never builds the (n, k_len) mask: memory stays linear in the length.
  if (sdpa && o.causal && n == k_len && o.window == 0 && !o.keep_mask.defined()) {
    return cpu_aware_sdpa(q, k, v, std::nullopt, p, /*causal=*/true, scale);
  }

  // Keys that query i may see, as a bool (n, k_len) mask; undefined when all are visible.
  torch::Tensor keep;
  const bool need_positional = (o.causal && n > 1) || o.window > 0;
  if (need_positional) {
    auto opts = torch::TensorOptions().dtype(torch::kLong).device(q.device());
    auto qi = torch::arange(k_len - n, k_len, opts).unsqueeze(1);  // (n, 1) query positions
    auto kj = torch::arange(0, k_len, opts).unsqueeze(0);          // (1, k_len)
    keep = o.causal ? kj <= qi : torch::ones({n, k_len}, opts.dtype(torch::kBool));
    if (o.window > 0) keep = keep & (kj > qi - o.window);
  }
  if (o.keep_mask.defined()) keep = keep.defined() ? keep & o.keep_mask : o.keep_mask;

  if (sdpa) {
    std::optional<torch::Tensor> mask;
    if (keep.defined()) mask = keep;
    return cpu_aware_sdpa(q, k, v, mask, p, /*causal=*/false, scale);
  }
  auto sim = torch::matmul(q, k.transpose(-1, -2));  // (B, H, n, k_len)
  if (scale != 1.0) sim = sim * scale;  // callers that pre-scale q skip a pass over the scores
  if (keep.defined()) {
    sim = sim.masked_fill(keep.logical_not(), finfo_lowest(sim.scalar_type()));
  }
  auto attn = sim.softmax(-1);
  if (p > 0) attn = F::dropout(attn, F::DropoutFuncOptions().p(p).training(true));
  return torch::matmul(attn, v);  // (B, H, n, d)
}

std::pair<torch::Tensor, torch::Tensor> LayerCache::append(const torch::Tensor& k_new,
                                                           const torch::Tensor& v_new) {
  const int64_t len = size(), n = k_new.size(2);
  if (len == 0) {  // a one-shot forward pays for no buffer (and autograd sees no copy)
    k_buf = v_buf = torch::Tensor();
    start = 0;
    k = k_new;
    v = v_new;
    if (window > 0) keep_newest(window);
    return {k_new, v_new};
  }
  if (!k_buf.defined() || start + len + n > k_buf.size(2)) {
    // The kept keys move to the front of new buffers with room for as many again.
    const int64_t cap = std::max<int64_t>(2 * (len + n), 16);
    auto moved = [&](const torch::Tensor& kept) {
      auto sizes = kept.sizes().vec();
      sizes[2] = cap;
      auto buf = torch::empty(sizes, kept.options());
      buf.narrow(2, 0, len).copy_(kept);
      return buf;
    };
    k_buf = moved(k);
    v_buf = moved(v);
    start = 0;
  }
  k_buf.narrow(2, start + len, n).copy_(k_new);
  v_buf.narrow(2, start + len, n).copy_(v_new);
  auto k_all = k_buf.narrow(2, start, len + n);  // (B, H, len + n, d)
  auto v_all = v_buf.narrow(2, start, len + n);
  k = k_all;
  v = v_all;
  if (window > 0) keep_newest(window);
  return {k_all, v_all};
}

// ---------------------------------------------------------------------------------------------
// Attention block

AttentionImpl::AttentionImpl(AttentionOptions options_) : options(std::move(options_)) {
  reset();
}

void AttentionImpl::reset() {
  TORCH_CHECK(options.heads() > 0 && options.dim_head() > 0,
              "Attention: heads and dim_head must be positive, got heads=", options.heads(),
              " dim_head=", options.dim_head());
  const int64_t inner = options.heads() * options.dim_head();
  norm = make_norm(options.norm(), options.dim());
  register_module("norm", norm.ptr());
  auto linear = [&](int64_t out) {
    return Linear(torch::nn::LinearOptions(options.dim(), out).bias(false));
  };
  if (options.fused_qkv()) {
    to_qkv = register_module("to_qkv", linear(3 * inner));
  } else {
    to_q = register_module("to_q", linear(inner));
    to_kv = register_module("to_kv", linear(2 * inner));
  }
  to_out =
      register_module("to_out", Linear(torch::nn::LinearOptions(inner, options.dim()).bias(false)));
}

std::vector<torch::Tensor> AttentionImpl::project_qkv(const torch::Tensor& x_in) {
  const int64_t b = x_in.size(0), n = x_in.size(1), h = options.heads();
  auto x = norm.forward(x_in);                      // (B, n, D)
  auto split_heads = [&](const torch::Tensor& t) {  // (B, n, H*d) -> (B, H, n, d)
    return t.view({b, n, h, -1}).transpose(1, 2);
  };
  std::vector<torch::Tensor> qkv;  // 3 x (B, n, H*d)
  if (options.fused_qkv()) {
    qkv = to_qkv(x).chunk(3, -1);
  } else {
    qkv = to_kv(x).chunk(2, -1);
    qkv.insert(qkv.begin(), to_q(x));
  }
  for (auto& t : qkv) t = split_heads(t);
  return qkv;
}

AttendOptions AttentionImpl::attend_options() const {
  AttendOptions ao;
  ao.causal = true;
  ao.attention = options.attention();
  ao.dropout = options.dropout();
  ao.training = is_training();
  ao.window = options.window();
  ao.kernel = options.kernel();
  return ao;
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x_in, const torch::Tensor& rotary,
                                     LayerCache* cache) {
  if (x_in.dim() == 4) {
    TORCH_CHECK(!cache, "Attention: units (B, U, n, D) take no cache");
    return forward_units(x_in, rotary);
  }
  const int64_t b = x_in.size(0), n = x_in.size(1);
  auto qkv = project_qkv(x_in);
  auto q = qkv[0], k = qkv[1], v = qkv[2];  // (B, H, n, d)
  if (rotary.defined()) {
    q = apply_rotary(rotary, q);
    k = apply_rotary(rotary, k);
  }
  if (cache) std::tie(k, v) = cache->append(k, v);
  auto out = attend(q, k, v, attend_options());            // (B, H, n, d)
  return to_out(out.transpose(1, 2).reshape({b, n, -1}));  // (B, n, D)
}

// Units: every unit is its own causal sequence, with the last r keys and values of the unit
// before it in front of its own (masked for the first unit, which has none).
torch::Tensor AttentionImpl::forward_units(const torch::Tensor& x, const torch::Tensor& rotary) {
  const int64_t b = x.size(0), u = x.size(1), n = x.size(2), r = options.cross_unit_keys();
  TORCH_CHECK(r >= 0 && r <= n, "Attention: cross_unit_keys must lie in [0, ", n,
              "] (the unit length), got ", r);
  auto qkv = project_qkv(x.reshape({b * u, n, x.size(3)}));
  auto q = qkv[0], k = qkv[1], v = qkv[2];            // (B U, H, n, d)
  auto with_previous = [&](const torch::Tensor& t) {  // (B U, H, r + n, d)
    const int64_t h = t.size(1), d = t.size(3);
    auto last = t.view({b, u, h, n, d}).narrow(3, n - r, r);                 // (B, U, H, r, d)
    auto prev = torch::constant_pad_nd(last, {0, 0, 0, 0, 0, 0, 1, -1}, 0);  // unit u - 1's
    return torch::cat({prev.reshape({b * u, h, r, d}), t}, 2);
  };
  k = with_previous(k);
  v = with_previous(v);
  if (rotary.defined()) {
    q = apply_rotary(rotary.narrow(0, r, n), q);
    k = apply_rotary(rotary, k);
  }
  auto keep =
      torch::ones({u, r + n}, torch::TensorOptions().dtype(torch::kBool).device(x.device()));
  keep[0].narrow(0, 0, r).fill_(false);  // the first unit has no unit before it
  AttendOptions ao = attend_options();
  ao.keep_mask = keep.repeat({b, 1}).view({b * u, 1, 1, r + n});
  auto out = attend(q, k, v, ao);                             // (B U, H, n, d)
  return to_out(out.transpose(1, 2).reshape({b, u, n, -1}));  // (B, U, n, D)
}

void LayerCache::keep_newest(int64_t n) {
  const int64_t drop = size() - n;  // read before k changes: size() reads k
  if (drop <= 0) return;
  if (n == 0) {
    k = v = k_buf = v_buf = torch::Tensor();
    start = 0;
    return;
  }
  k = k.narrow(2, drop, n);  // a view: of the buffers, or of a one-shot forward's keys
  v = v.narrow(2, drop, n);
  if (k_buf.defined()) start += drop;
}

void KVCache::next_unit(int64_t r) {
  if (r == 0) {
    reset();
    return;
  }
  for (auto& lc : layers) {
    lc.keep_newest(r);
    lc.last_attn_in = lc.last_ff_in = torch::Tensor();  // token shift starts afresh
  }
}

// ---------------------------------------------------------------------------------------------
// Transformer

TransformerImpl::TransformerImpl(TransformerOptions options_) : options(std::move(options_)) {
  reset();
}

void TransformerImpl::reset() {
  TORCH_CHECK(options.depth() >= 0, "Transformer: depth must be >= 0, got ", options.depth());
  if (options.rel_pos()) {
    rotary_emb =
        register_module("rotary_emb", RotaryEmbedding(RotaryEmbeddingOptions(options.dim_head())));
  }
  layers = register_module("layers", torch::nn::ModuleList());
  attn_.clear();
  ff_.clear();
  for (int64_t i = 0; i < options.depth(); ++i) {
    auto attn = Attention(AttentionOptions(options.dim())
                              .dim_head(options.dim_head())
                              .heads(options.heads())
                              .dropout(options.attn_dropout())
                              .attention(options.attention())
                              .window(options.window())
                              .kernel(options.attn_kernel())
                              .cross_unit_keys(options.cross_unit_keys()));
    auto ff = make_feedforward(
        FeedForwardOptions(options.dim()).mult(options.ff_mult()).dropout(options.ff_dropout()));
    layers->push_back(torch::nn::ModuleList(attn, ff));
    attn_.push_back(attn);
    ff_.push_back(ff);
  }
  if (options.final_norm()) norm = register_module("norm", RMSNorm(RMSNormOptions(options.dim())));
}

torch::Tensor TransformerImpl::forward(const torch::Tensor& x_in) {
  torch::Tensor x = x_in;  // (B, n, D) or units (B, U, n, D)
  const int64_t kept = x.dim() == 4 ? options.cross_unit_keys() : 0;  // keys before each unit
  torch::Tensor rotary = rotary_emb ? rotary_emb(kept + x.size(-2)) : torch::Tensor();
  auto shift = [&](const torch::Tensor& t) { return options.token_shift() ? token_shift(t) : t; };
  for (size_t i = 0; i < attn_.size(); ++i) {
    {
      profile::Range r(options.attention_range().c_str());
      x = attn_[i](shift(x), rotary) + x;
    }
    profile::Range r("feedforward");
    x = ff_[i]->forward(shift(x)) + x;
  }
  return norm ? norm(x) : x;
}

torch::Tensor TransformerImpl::forward_cached(const torch::Tensor& x_in, KVCache& cache) {
  torch::Tensor x = x_in;  // (B, n, D): newest positions
  const int64_t n = x.size(-2);
  if (cache.layers.empty()) {
    cache.layers.resize(attn_.size());
    for (auto& lc : cache.layers) lc.window = options.window();
  }
  TORCH_INTERNAL_ASSERT(cache.layers.size() == attn_.size());
  torch::Tensor rotary = rotary_emb ? rotary_emb(n, cache.pos) : torch::Tensor();
  for (size_t i = 0; i < attn_.size(); ++i) {
    auto& lc = cache.layers[i];
    torch::Tensor a_in = x, f_in;
    if (options.token_shift()) {
      a_in = token_shift_step(x, lc.last_attn_in);
      lc.last_attn_in = x.narrow(-2, n - 1, 1);
    }
    {
      profile::Range r(options.attention_range().c_str());
      x = attn_[i](a_in, rotary, &lc) + x;
    }
    profile::Range r("feedforward");
    f_in = x;
    if (options.token_shift()) {
      f_in = token_shift_step(x, lc.last_ff_in);
      lc.last_ff_in = x.narrow(-2, n - 1, 1);
    }
    x = ff_[i]->forward(f_in) + x;
  }
  cache.pos += n;
  return norm ? norm(x) : x;
}

}  // namespace megabench

namespace megabench {

// ---------------------------------------------------------------------------------------------
// Causal convolutions

CausalConvStackImpl::CausalConvStackImpl(CausalConvStackOptions options_)
    : options(std::move(options_)) {
  reset();
}

void CausalConvStackImpl::reset() {
  TORCH_CHECK(options.dim() > 0, "CausalConvStack: dim must be positive, got ", options.dim());
  convs = register_module("convs", torch::nn::ModuleList());
  linears_.clear();
  for (auto k : options.kernels()) {
    TORCH_CHECK(k > 0, "CausalConvStack: filter sizes must be positive, got ", k);
    linears_.emplace_back(k * options.dim(), options.dim());
    convs->push_back(linears_.back());
  }
}

torch::Tensor CausalConvStackImpl::forward(const torch::Tensor& x_in) {
  torch::Tensor x = x_in;  // (B, L, D)
  const int64_t b = x.size(0), len = x.size(1), d = x.size(2);
  for (size_t i = 0; i < linears_.size(); ++i) {
    const int64_t k = options.kernels()[i];
    auto padded = torch::constant_pad_nd(x, {0, 0, k - 1, 0}, 0);  // (B, k - 1 + L, D)
    auto windows = padded.unfold(1, k, 1).transpose(-1, -2);       // (B, L, k, D), oldest first
    x = x + torch::gelu(linears_[i](windows.reshape({b, len, k * d})));  // (B, L, D)
  }
  return x;
}

int64_t CausalConvStackImpl::reach() const {
  int64_t r = 0;
  for (auto k : options.kernels()) r += k - 1;
  return r;
}

}  // namespace megabench
