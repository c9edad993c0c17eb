#pragma once
// The shared blocks. Every model in megabench (MEGABYTE, the byte Transformer, Perceiver AR) is
// built from these, and each exists once: RMSNorm, the feedforward, rotary embeddings, token
// shift, attention (an SDPA path and an explicit path) and the KV cache.
//
// Parameter names follow lucidrains' references (MEGABYTE-pytorch 0.3.6, perceiver-ar-pytorch
// 0.0.10), so that named_parameters() matches their state_dict key for key.
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace megabench {

// ---------------------------------------------------------------------------------------------
// Linear

/// torch::nn::Linear (same parameters, same names), computed as PyTorch's nn.Linear computes it:
/// ATen's linear, which folds the batch dimensions of a contiguous input into one matrix product
/// with the bias inside it (addmm). LibTorch's own functional linear does that only for 2-D input
/// and otherwise adds the bias in a separate pass over the output (a mixed-dtype one under bf16
/// autocast, where the bias stays fp32). One more case: a single input row on the CPU with no
/// gradient to record (batch-1 decoding) is a matrix-vector product (kernels/gemv.h): with bf16
/// weights, kernels::gemv_bf16 on CPUs with AVX512-BF16 (there LibTorch's bf16 at::mv reads the
/// weights at about half the bytes/s of its fp32 GEMV), at::mv elsewhere (about 1.4x faster than
/// LibTorch's bf16 matrix-product path at M = 1); with float32 weights, kernels::gemv_f32 where
/// kernels::gemv_f32_fast() (a build with the clones on an x86-64-v3 CPU; about 1.3x the BLAS
/// sgemv from DRAM at one thread, 1.6-2.2x at two), else at::linear. Under CPU autocast only
/// what autocast would leave as it is takes a kernel (bf16 weights under bf16 autocast).
class LinearImpl : public torch::nn::LinearImpl {
 public:
  using torch::nn::LinearImpl::LinearImpl;
  torch::Tensor forward(const torch::Tensor& input);
};
TORCH_MODULE(Linear);

// ---------------------------------------------------------------------------------------------
// Norms

struct RMSNormOptions {
  RMSNormOptions(int64_t dim) : dim_(dim) {}
  TORCH_ARG(int64_t, dim);
  /// Floor of the RMS, as in the reference (it clamps the norm, it does not add eps). Default 1e-8.
  TORCH_ARG(double, eps) = 1e-8;
};

/// x / max(||x|| * dim^-1/2, eps) * g. Parameter: `g`.
class RMSNormImpl : public torch::nn::Cloneable<RMSNormImpl> {
 public:
  explicit RMSNormImpl(RMSNormOptions options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);
  RMSNormOptions options;
  torch::Tensor g;
};
TORCH_MODULE(RMSNorm);

enum class NormKind { kRMSNorm, kLayerNorm };

/// A norm of either kind, as a module that fits in a Sequential.
torch::nn::AnyModule make_norm(NormKind kind, int64_t dim);

// ---------------------------------------------------------------------------------------------
// Feedforward: Sequential(norm, Linear(dim, dim*mult), GELU, Dropout, Linear(dim*mult, dim)),
// indices 0..4 as in both references.

struct FeedForwardOptions {
  FeedForwardOptions(int64_t dim) : dim_(dim) {}
  TORCH_ARG(int64_t, dim);
  /// Hidden width multiplier. Default 4.
  TORCH_ARG(double, mult) = 4;
  /// Dropout after the GELU. Default 0.
  TORCH_ARG(double, dropout) = 0.0;
  /// MEGABYTE: RMSNorm, biased linears. Perceiver AR: LayerNorm, bias-free linears.
  TORCH_ARG(NormKind, norm) = NormKind::kRMSNorm;
  TORCH_ARG(bool, bias) = true;
};

torch::nn::Sequential make_feedforward(const FeedForwardOptions& options);

// ---------------------------------------------------------------------------------------------
// Rotary position embedding (Su et al.), rotating the first `dim` features of each head.

struct RotaryEmbeddingOptions {
  RotaryEmbeddingOptions(int64_t dim) : dim_(dim) {}
  /// How many features of a head are rotated (the rest pass through). Must be even.
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(double, theta) = 10000.0;
};

/// Buffer: `inv_freq` (dim/2), computed in float32 as the references do.
class RotaryEmbeddingImpl : public torch::nn::Cloneable<RotaryEmbeddingImpl> {
 public:
  explicit RotaryEmbeddingImpl(RotaryEmbeddingOptions options);
  void reset() override;
  /// Angles for positions [start, start + n): (n, dim), in inv_freq's dtype.
  torch::Tensor forward(int64_t n, int64_t start = 0);
  RotaryEmbeddingOptions options;
  torch::Tensor inv_freq;

 private:
  torch::Tensor exact_inv_freq_;  // float32, unregistered: what 16-bit inv_freq rounds
};
TORCH_MODULE(RotaryEmbedding);

/// t * cos + rotate_half(t) * sin on the first freqs.size(-1) features of t (..., n, d).
torch::Tensor apply_rotary(const torch::Tensor& freqs, const torch::Tensor& t);

// ---------------------------------------------------------------------------------------------
// Token shift (RWKV): the second half of the features comes from the previous position.

/// x (..., n, D): features [D/2:] of position i are those of position i-1 (zero at i = 0).
torch::Tensor token_shift(const torch::Tensor& x);
/// The same for n new positions whose predecessor is `prev` (..., 1, D), or zeros if undefined.
torch::Tensor token_shift_step(const torch::Tensor& x, const torch::Tensor& prev);

// ---------------------------------------------------------------------------------------------
// Attention core

/// How attend() computes softmax(QK^T / sqrt(d)) V. kExplicit: the references' masked softmax over
/// an explicit score matrix. kSdpa, the fused path (the same math up to rounding): on the CPU, key
/// ranges of at most kernels::kShortAttentionMaxKeys (MEGABYTE's local stages) take the fused
/// short-attention kernel (kernels/short_attention.h) unless attention dropout is on; a decoding
/// step (one query over the key cache, no gradient, no window inside the keys) takes the decode
/// kernel (kernels/decode_attention.h); otherwise at::scaled_dot_product_attention (LibTorch picks
/// flash / memory-efficient / math), except in bf16 / fp16 training on the CPU over at most 256
/// keys, where LibTorch's flash backward is slow and attend() takes the explicit path; 16-bit CPU
/// inputs may run SDPA widened to fp32 (cpu_sdpa_in_fp32 below). Every model's `attention` option,
/// and JSON "attention": "explicit" | "sdpa" (the references' flash_attn false | true).
enum class AttentionPath { kExplicit, kSdpa };

/// The JSON name: "explicit" -> kExplicit, "sdpa" -> kSdpa. Anything else throws
/// std::invalid_argument naming `where` (e.g. "megabyte.attention") and the accepted names.
AttentionPath attention_path(const std::string& name, const std::string& where = "attention");
/// The JSON name of a path: "explicit" or "sdpa".
const char* attention_name(AttentionPath path);

/// Which implementation attend() runs. kLocalCuda: the fused kernel of kernels/local_attention.h,
/// used when q is on CUDA and the call qualifies (causal self-attention, n <= 64, d in
/// {32, 64, 128}, no window/mask/dropout); otherwise attend() falls back to the generic path.
enum class AttentionKernel { kGeneric, kLocalCuda };

struct AttendOptions {
  /// Causal, aligned to the end: query i of n sees keys j <= (k_len - n) + i.
  bool causal = true;
  /// Explicit softmax or SDPA. Default kExplicit.
  AttentionPath attention = AttentionPath::kExplicit;
  double dropout = 0.0;
  bool training = false;
  /// Softmax scale; default dim_head^-1/2.
  std::optional<double> scale;
  /// Sliding window: query at position p sees keys in (p - window, p]. 0 = unlimited.
  int64_t window = 0;
  /// Keys to keep, broadcastable to (B, H, n, k_len), bool. Combined with causal/window.
  torch::Tensor keep_mask;
  /// Custom kernel to try before the generic path. Default kGeneric.
  AttentionKernel kernel = AttentionKernel::kGeneric;
};

/// q (B, H, n, d), k and v (B, H, k_len, d) -> (B, H, n, d).
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const AttendOptions& options);

/// Whether attend()'s SDPA calls on the CPU with bf16 / fp16 inputs run in float32 (inputs widened,
/// the output rounded back; autocast does not narrow them again). LibTorch's CPU flash kernel runs
/// its block products in the input dtype, so where this CPU's bf16 matrix product is slower than
/// its fp32 one (AVX512-BF16 without AMX, or no bf16 instructions at all) bf16 flash attention is
/// slower than fp32 flash attention on the same inputs: causal (1, 16, 2048, 64) forward and
/// backward, 1 thread, on a Xeon with AVX512-BF16 and no AMX: 581 ms in bf16, 349 ms widened.
/// Decided once per process by timing a 256^3 product in each dtype (16-bit slower by more than
/// 20%: widen); set_cpu_sdpa_in_fp32() overrides the decision (nullopt: measure again).
bool cpu_sdpa_in_fp32();
void set_cpu_sdpa_in_fp32(std::optional<bool> value);

// ---------------------------------------------------------------------------------------------
// KV cache: keys and values of one attention layer, plus the last inputs that token shift needs.

struct LayerCache {
  torch::Tensor k, v;  // (B, H, len, d): the kept keys/values (rotated), views of the buffers
  torch::Tensor k_buf, v_buf;  // (B, H, capacity, d); k = k_buf[:, :, start : start + len]
  int64_t start = 0;           // where the kept keys begin in the buffers
  torch::Tensor last_attn_in;  // (B, 1, D) input of the attention block at the last position
  torch::Tensor last_ff_in;    // (B, 1, D) input of the feedforward block at the last position
  int64_t window = 0;          // > 0: keep only the last `window` keys

  /// Appends n new keys/values and returns the keys/values to attend over: the kept ones and the
  /// new ones, in order. New keys are written after the kept ones; dropping the oldest (the
  /// window, keep_newest) moves `start`; the kept keys are copied only when the buffers' end is
  /// reached, into buffers of twice their size. So an append costs O(n) amortised, with or
  /// without a window, and the keys stay in order (the window mask relies on it).
  std::pair<torch::Tensor, torch::Tensor> append(const torch::Tensor& k_new,
                                                 const torch::Tensor& v_new);
  /// Keeps only the newest n keys/values (no copy); unchanged when there are at most n.
  void keep_newest(int64_t n);
  int64_t size() const { return k.defined() ? k.size(2) : 0; }
};

/// The cache of one Transformer: a LayerCache per layer and the number of positions seen.
struct KVCache {
  std::vector<LayerCache> layers;
  int64_t pos = 0;  // absolute position of the next token
  void reset() {
    layers.clear();
    pos = 0;
  }
  /// Opens the next unit of a cross-unit stack (TransformerOptions::cross_unit_keys): each layer
  /// keeps its last r keys and values, token shift starts afresh, and positions go on (rotary is
  /// relative, so the kept keys sit r positions before the new unit as in the full forward).
  /// r = 0 is reset().
  void next_unit(int64_t r);
};

// ---------------------------------------------------------------------------------------------
// Attention block: norm -> to_q / to_kv (or to_qkv) -> rotary -> attend -> to_out, bias-free.
// MEGABYTE's layout by default; Perceiver AR's self-attention layers are the same block with a
// LayerNorm and one fused to_qkv projection.

struct AttentionOptions {
  AttentionOptions(int64_t dim) : dim_(dim) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, dim_head) = 64;
  TORCH_ARG(int64_t, heads) = 8;
  TORCH_ARG(double, dropout) = 0.0;
  /// Pre-norm kind. Default kRMSNorm (MEGABYTE); Perceiver AR uses kLayerNorm.
  TORCH_ARG(NormKind, norm) = NormKind::kRMSNorm;
  /// One to_qkv projection (Perceiver AR's parameter layout) instead of to_q and to_kv. Default
  /// false.
  TORCH_ARG(bool, fused_qkv) = false;
  /// Explicit softmax(QK^T)V or SDPA (the reference's flash_attn). Default kExplicit.
  TORCH_ARG(AttentionPath, attention) = AttentionPath::kExplicit;
  /// Sliding-window attention: 0 = full causal attention.
  TORCH_ARG(int64_t, window) = 0;
  /// Custom attention kernel (see AttendOptions::kernel). Default kGeneric.
  TORCH_ARG(AttentionKernel, kernel) = AttentionKernel::kGeneric;
  /// Cross-unit keys r: for input (B, U, n, D), unit u's queries also see the last r positions of
  /// unit u - 1 (none for u = 0), as MEGABYTE's cross-patch attention. Default 0.
  TORCH_ARG(int64_t, cross_unit_keys) = 0;
};

class AttentionImpl : public torch::nn::Cloneable<AttentionImpl> {
 public:
  explicit AttentionImpl(AttentionOptions options);
  void reset() override;
  /// x (B, n, D) -> (B, n, D). rotary: (n_total, d_rot) angles for the n positions, or undefined.
  /// With a cache, x holds the n newest positions and the keys/values are appended to it.
  /// Units x (B, U, n, D) -> (B, U, n, D): each unit is a sequence of its own that also sees the
  /// last cross_unit_keys() positions of the unit before it; rotary then covers r + n positions
  /// (the kept keys first).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& rotary = {},
                        LayerCache* cache = nullptr);
  AttentionOptions options;
  torch::nn::AnyModule norm;  // RMSNorm or LayerNorm
  /// to_q and to_kv, or to_qkv alone (fused_qkv).
  Linear to_q{nullptr}, to_kv{nullptr}, to_qkv{nullptr}, to_out{nullptr};

 private:
  /// x (B, n, D) -> q, k, v, each (B, H, n, d), before rotary.
  std::vector<torch::Tensor> project_qkv(const torch::Tensor& x);
  AttendOptions attend_options() const;
  torch::Tensor forward_units(const torch::Tensor& x, const torch::Tensor& rotary);
};
TORCH_MODULE(Attention);

// ---------------------------------------------------------------------------------------------
// Transformer: the stack that MEGABYTE runs at every stage and that the byte Transformer
// baseline is. Per layer: x = attn(shift(x)) + x; x = ff(shift(x)) + x; then a final RMSNorm.

struct TransformerOptions {
  TransformerOptions(int64_t dim, int64_t depth) : dim_(dim), depth_(depth) {}
  TORCH_ARG(int64_t, dim);
  /// Number of layers (attention + feedforward).
  TORCH_ARG(int64_t, depth);
  TORCH_ARG(int64_t, dim_head) = 64;
  TORCH_ARG(int64_t, heads) = 8;
  TORCH_ARG(double, attn_dropout) = 0.0;
  TORCH_ARG(double, ff_dropout) = 0.0;
  TORCH_ARG(double, ff_mult) = 4;
  /// Rotary embeddings over dim_head (the reference's rel_pos).
  TORCH_ARG(bool, rel_pos) = true;
  /// Explicit or SDPA attention in every layer. Default kExplicit.
  TORCH_ARG(AttentionPath, attention) = AttentionPath::kExplicit;
  /// RWKV token shift before attention and feedforward (the reference always shifts).
  TORCH_ARG(bool, token_shift) = true;
  /// Sliding-window attention: 0 = full.
  TORCH_ARG(int64_t, window) = 0;
  /// Custom attention kernel for every layer (see AttendOptions::kernel). Default kGeneric.
  TORCH_ARG(AttentionKernel, attn_kernel) = AttentionKernel::kGeneric;
  /// Profiling range name of the attention blocks ("global_attention" or "local_attention").
  TORCH_ARG(std::string, attention_range) = "global_attention";
  /// The final RMSNorm (`norm`). false: the stack returns its residual stream unnormalized, for a
  /// stack whose output feeds another stack (SpaceByte's initial and global blocks). Default true.
  TORCH_ARG(bool, final_norm) = true;
  /// Cross-unit keys r (AttentionOptions::cross_unit_keys) in every layer: forward then also takes
  /// units (B, U, n, D), and KVCache::next_unit(r) opens a unit in cached decoding. Default 0.
  TORCH_ARG(int64_t, cross_unit_keys) = 0;
};

class TransformerImpl : public torch::nn::Cloneable<TransformerImpl> {
 public:
  explicit TransformerImpl(TransformerOptions options);
  void reset() override;
  /// x (B, n, D) -> (B, n, D), or units (B, U, n, D) -> (B, U, n, D) (see cross_unit_keys).
  torch::Tensor forward(const torch::Tensor& x);
  /// Incremental: x holds the n newest positions; cache holds everything before them.
  torch::Tensor forward_cached(const torch::Tensor& x, KVCache& cache);
  TransformerOptions options;
  RotaryEmbedding rotary_emb{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};  // null without final_norm

 private:
  std::vector<Attention> attn_;
  std::vector<torch::nn::Sequential> ff_;
};
TORCH_MODULE(Transformer);

// ---------------------------------------------------------------------------------------------
// Causal convolutions over a sequence (MEGABYTE's convolutional patch encoder): per filter size k,
// x = x + GELU(W_k [x_{i-k+1}; ...; x_i] + b_k), zeros before the first position. Each filter is
// a Linear over the k-position window (`convs.i`), so it runs (and is profiled) as a matmul.

struct CausalConvStackOptions {
  CausalConvStackOptions(int64_t dim) : dim_(dim) {}
  TORCH_ARG(int64_t, dim);
  /// Filter sizes, applied in order. Default {3, 5, 7}, the paper's.
  TORCH_ARG(std::vector<int64_t>, kernels) = std::vector<int64_t>{3, 5, 7};
};

class CausalConvStackImpl : public torch::nn::Cloneable<CausalConvStackImpl> {
 public:
  explicit CausalConvStackImpl(CausalConvStackOptions options);
  void reset() override;
  /// x (B, L, D) -> (B, L, D); output i depends on inputs i - reach() .. i only.
  torch::Tensor forward(const torch::Tensor& x);
  /// How many earlier positions an output sees: sum(k - 1).
  int64_t reach() const;
  CausalConvStackOptions options;
  torch::nn::ModuleList convs{nullptr};

 private:
  std::vector<Linear> linears_;
};
TORCH_MODULE(CausalConvStack);

}  // namespace megabench
