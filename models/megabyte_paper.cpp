#include "models/megabyte_paper.h"

#include <algorithm>

#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/profile_range.h"

namespace megabench {

namespace nn = torch::nn;

void MEGABYTEPaperOptions::validate() const {
  TORCH_CHECK(dim_.size() == 2, "MEGABYTE (paper): dim needs 2 entries {global, local}, got ",
              dim_.size());
  TORCH_CHECK(depth_.size() == 2, "MEGABYTE (paper): depth needs 2 entries {global, local}, got ",
              depth_.size());
  TORCH_CHECK(patch_ > 0, "MEGABYTE (paper): patch must be positive, got ", patch_);
  TORCH_CHECK(seq_len_ > 0 && seq_len_ % patch_ == 0,
              "MEGABYTE (paper): seq_len must be a positive multiple of the patch ", patch_,
              ", got ", seq_len_);
  TORCH_CHECK(num_tokens_ > 0, "MEGABYTE (paper): num_tokens must be positive, got ", num_tokens_);
  TORCH_CHECK(dim_head_ > 0, "MEGABYTE (paper): dim_head must be positive, got ", dim_head_);
  for (size_t s = 0; s < 2; ++s) {
    TORCH_CHECK(dim_[s] > 0 && dim_[s] % dim_head_ == 0, "MEGABYTE (paper): dim[", s,
                "] must be a positive multiple of dim_head ", dim_head_,
                " (heads = dim / dim_head), got ", dim_[s]);
    TORCH_CHECK(depth_[s] >= 0, "MEGABYTE (paper): depth[", s, "] must be >= 0, got ", depth_[s]);
  }
  TORCH_CHECK(depth_[0] > 0, "MEGABYTE (paper): the global model needs a layer, got depth[0] 0");
  TORCH_CHECK(dim_[0] % patch_ == 0, "MEGABYTE (paper): dim[0] (the global width P * D_G) must ",
              "be a multiple of the patch ", patch_, ", got ", dim_[0]);
  TORCH_CHECK(!rel_pos_ || dim_head_ % 2 == 0, "MEGABYTE (paper): rel_pos needs an even dim_head, ",
              "got ", dim_head_);
  TORCH_CHECK(init_std_ > 0, "MEGABYTE (paper): init_std must be positive, got ", init_std_);
}

// ---------------------------------------------------------------------------------------------
// Construction

MEGABYTEPaperImpl::MEGABYTEPaperImpl(MEGABYTEPaperOptions options_) : options(std::move(options_)) {
  reset();
}

void MEGABYTEPaperImpl::reset() {
  options.validate();
  const auto& o = options;
  const int64_t V = o.num_tokens(), DG = o.dim_byte(), DL = o.dim_local();
  auto stack = [&](int64_t dim, int64_t depth, const char* range) {
    return Transformer(TransformerOptions(dim, depth)
                           .dim_head(o.dim_head())
                           .heads(dim / o.dim_head())
                           .attn_dropout(o.attn_dropout())
                           .ff_dropout(o.ff_dropout())
                           .ff_mult(o.ff_mult())
                           .rel_pos(o.rel_pos())
                           .attention(o.attention())
                           .token_shift(false)
                           .attention_range(range));
  };
  global_emb = register_module("global_emb", nn::Embedding(V, DG));
  global_pos = register_module("global_pos", nn::Embedding(o.seq_len(), DG));
  global_pad = register_parameter("global_pad", torch::empty({o.dim_global()}));
  global_model =
      register_module("global_model", stack(o.dim_global(), o.depth()[0], "global_attention"));
  w_gl = register_module("w_gl", Linear(nn::LinearOptions(DG, DL).bias(false)));
  local_emb = register_module("local_emb", nn::Embedding(V, DL));
  local_pad = register_parameter("local_pad", torch::empty({DL}));
  local_model = register_module("local_model", stack(DL, o.depth()[1], "local_attention"));
  torch::NoGradGuard no_grad;
  for (auto* t :
       {&global_emb->weight, &global_pos->weight, &global_pad, &local_emb->weight, &local_pad}) {
    t->normal_(0.0, o.init_std());
  }
}

// ---------------------------------------------------------------------------------------------
// Forward, Eq. 1-6

torch::Tensor MEGABYTEPaperImpl::check_ids(const torch::Tensor& ids_in) const {
  auto ids = check_byte_ids(ids_in, options.num_tokens(), "MEGABYTE (paper): ids");
  TORCH_CHECK(ids.dim() == 2, "MEGABYTE (paper): ids must have shape (batch, length), got ",
              ids.sizes());
  TORCH_CHECK(ids.size(1) <= options.seq_len(), "MEGABYTE (paper): ", ids.size(1),
              " bytes exceed seq_len ", options.seq_len());
  return ids;
}

torch::Tensor MEGABYTEPaperImpl::global_input(const torch::Tensor& patch_bytes, int64_t start) {
  const int64_t n = patch_bytes.size(1);
  auto pos = torch::arange(start, start + n, patch_bytes.options());
  auto h = kernels::embedding(global_emb->weight, patch_bytes) +
           kernels::embedding(global_pos->weight, pos);     // (B, n, D_G): Eq. 1
  return h.reshape({h.size(0), -1, options.dim_global()});  // (B, n / P, P * D_G)
}

torch::Tensor MEGABYTEPaperImpl::global_to_local(const torch::Tensor& global_out) {
  return w_gl(global_out.reshape({-1, options.patch(), options.dim_byte()}));  // (B', P, D_L)
}

torch::Tensor MEGABYTEPaperImpl::to_logits(const torch::Tensor& local_out) {
  profile::Range r("logits");
  return torch::matmul(local_out, local_emb->weight.t());  // Eq. 6, tied: (..., V)
}

torch::Tensor MEGABYTEPaperImpl::run_hidden(const torch::Tensor& ids, int64_t rows) {
  const int64_t B = ids.size(0), L = ids.size(1), P = options.patch();
  const int64_t K = std::max<int64_t>((rows + P - 1) / P, 1);  // patches whose bytes are predicted
  // The bytes of every patch, right-padded (the padding is only ever read by later rows).
  auto bytes = torch::constant_pad_nd(ids, {0, K * P - L}, 0);  // (B, K P)

  // Eq. 1-2: the pad patch, then the embeddings of patches 0..K-2 (bytes < (K-1) P <= L).
  torch::Tensor global_in;
  {
    profile::Range r("embedding");
    auto pad = global_pad.view({1, 1, -1}).expand({B, 1, options.dim_global()});
    global_in = K > 1 ? torch::cat({pad, global_input(bytes.narrow(1, 0, (K - 1) * P), 0)}, 1)
                      : pad;  // (B, K, P D_G)
  }
  auto global_out = global_model(global_in);  // Eq. 3: (B, K, P D_G)

  // Eq. 4: each slice of D_G through w_GL, plus the local pad or the previous byte's embedding.
  auto prev = kernels::embedding(local_emb->weight,
                                 bytes.view({B * K, P}).narrow(1, 0, P - 1));  // (B K, P - 1, D_L)
  auto pad = local_pad.view({1, 1, -1}).expand({B * K, 1, options.dim_local()});
  auto local_in = global_to_local(global_out) + torch::cat({pad, prev}, 1);  // (B K, P, D_L)
  return local_model(local_in).reshape({B, K * P, -1});                      // Eq. 5: (B, K P, D_L)
}

torch::Tensor MEGABYTEPaperImpl::run(const torch::Tensor& ids, int64_t rows) {
  return to_logits(run_hidden(ids, rows));  // Eq. 6: (B, K P, V)
}

torch::Tensor MEGABYTEPaperImpl::forward(const torch::Tensor& ids_in) {
  auto ids = check_ids(ids_in);
  const int64_t L = ids.size(1);
  return run(ids, L + 1).narrow(1, 1, L);
}

torch::Tensor MEGABYTEPaperImpl::next_byte_logits(const torch::Tensor& ids_in) {
  auto ids = check_ids(ids_in);
  const int64_t L = ids.size(1);
  return run(ids, L).narrow(1, 0, L);
}

// Eq. 6 fused with the loss: the tied projection never writes the logits.
torch::Tensor MEGABYTEPaperImpl::loss(const torch::Tensor& ids_in) {
  auto ids = check_ids(ids_in);
  const int64_t L = ids.size(1);
  auto local_out = run_hidden(ids, L).narrow(1, 0, L);  // (B, L, D_L)
  profile::Range r("logits");
  return kernels::linear_cross_entropy(local_out, local_emb->weight, torch::Tensor(),
                                       ids.to(torch::kLong));
}

// ---------------------------------------------------------------------------------------------
// Cached decoding: the global model runs once per patch, when the patch before it is complete;
// the local model once per byte, from a fresh cache at every patch.

MEGABYTEPaperDecodeState MEGABYTEPaperImpl::begin(int64_t batch) {
  TORCH_CHECK(batch > 0, "MEGABYTE (paper): batch must be positive, got ", batch);
  MEGABYTEPaperDecodeState st;
  st.bytes = torch::zeros({batch, options.seq_len()},
                          torch::TensorOptions().dtype(torch::kLong).device(local_pad.device()));
  auto pad = global_pad.view({1, 1, -1}).expand({batch, 1, options.dim_global()});
  st.ctx = global_to_local(global_model->forward_cached(pad, st.global));  // (B, P, D_L)
  auto x = st.ctx.narrow(1, 0, 1) + local_pad.view({1, 1, -1});
  st.empty_logits = to_logits(local_model->forward_cached(x, st.local)).squeeze(1);
  return st;
}

torch::Tensor MEGABYTEPaperImpl::append(MEGABYTEPaperDecodeState& st, const torch::Tensor& b_in) {
  const int64_t B = st.bytes.size(0), P = options.patch();
  TORCH_CHECK(st.len < options.seq_len(), "MEGABYTE (paper): the context is full (",
              options.seq_len(), " bytes)");
  auto byte = b_in.to(torch::kLong).reshape({B});
  const int64_t t = st.len++;
  st.bytes.select(1, t).copy_(byte);
  torch::Tensor x;  // (B, 1, D_L): the local input of byte t + 1
  if (t % P < P - 1) {
    x = st.ctx.narrow(1, t % P + 1, 1) + local_emb(byte.view({B, 1}));
  } else {
    if (st.len == options.seq_len()) return torch::Tensor();  // the context is full
    const int64_t start = t + 1 - P;                          // the patch just completed
    auto in = global_input(st.bytes.narrow(1, start, P), start);
    st.ctx = global_to_local(global_model->forward_cached(in, st.global));
    st.local.reset();
    x = st.ctx.narrow(1, 0, 1) + local_pad.view({1, 1, -1});
  }
  return to_logits(local_model->forward_cached(x, st.local)).squeeze(1);  // (B, V)
}

std::unique_ptr<Decoder> MEGABYTEPaperImpl::decoder(bool use_cache) {
  return start_token_decoder<MEGABYTEPaperImpl, MEGABYTEPaperDecodeState>(*this, use_cache);
}

torch::Tensor MEGABYTEPaperImpl::generate(const torch::Tensor& prime, std::optional<int64_t> length,
                                          double temperature, double filter_thres, bool use_cache) {
  return generate_until_full(*decoder(use_cache), prime, length, options.seq_len(),
                             options.num_tokens(), local_pad.device(), "MEGABYTE (paper)",
                             {temperature, filter_thres, use_cache});
}

}  // namespace megabench
