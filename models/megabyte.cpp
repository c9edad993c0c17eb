#include "models/megabyte.h"

#include <numeric>

#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/profile_range.h"

namespace megabench {

namespace nn = torch::nn;

// ---------------------------------------------------------------------------------------------
// Options

int64_t MEGABYTEOptions::stages() const {
  return static_cast<int64_t>(depth_.size());
}

std::vector<int64_t> MEGABYTEOptions::stage_dims() const {
  if (dim_.size() == 1) return std::vector<int64_t>(depth_.size(), dim_[0]);
  return dim_;
}

int64_t MEGABYTEOptions::unit_bytes(int64_t stage) const {
  return std::accumulate(patch_.begin() + stage, patch_.end(), int64_t{1}, std::multiplies<>());
}

std::vector<int64_t> MEGABYTEOptions::stage_lens() const {
  std::vector<int64_t> lens{seq_len_ / patch_size()};
  lens.insert(lens.end(), patch_.begin(), patch_.end());
  return lens;
}

void MEGABYTEOptions::validate() const {
  TORCH_CHECK(num_tokens_ > 0, "MEGABYTE: num_tokens must be positive, got ", num_tokens_);
  TORCH_CHECK(!depth_.empty(), "MEGABYTE: depth needs one entry per stage, got none");
  TORCH_CHECK(depth_.size() == patch_.size() + 1, "MEGABYTE: depth needs one entry per stage, ",
              "one more than patch has (", patch_.size(), "), got ", depth_.size());
  TORCH_CHECK(dim_.size() == 1 || dim_.size() == depth_.size(),
              "MEGABYTE: dim needs 1 entry or one per stage (", depth_.size(), "), got ",
              dim_.size());
  for (size_t i = 0; i < depth_.size(); ++i) {
    TORCH_CHECK(depth_[i] >= 0, "MEGABYTE: depth[", i, "] must be >= 0, got ", depth_[i]);
  }
  for (size_t i = 0; i < patch_.size(); ++i) {
    TORCH_CHECK(patch_[i] > 0, "MEGABYTE: patch[", i, "] must be positive, got ", patch_[i]);
  }
  TORCH_CHECK(seq_len_ > 0 && seq_len_ % patch_size() == 0, "MEGABYTE: seq_len must be a ",
              "positive multiple of the global patch ", patch_size(), ", got ", seq_len_);
  for (size_t i = 0; i < dim_.size(); ++i) {
    TORCH_CHECK(dim_[i] > 0, "MEGABYTE: dim[", i, "] must be positive, got ", dim_[i]);
  }
  TORCH_CHECK(heads_ > 0 && dim_head_ > 0, "MEGABYTE: heads and dim_head must be positive, got ",
              heads_, " and ", dim_head_);
  TORCH_CHECK(!rel_pos_ || dim_head_ % 2 == 0, "MEGABYTE: rel_pos needs an even dim_head, got ",
              dim_head_);
  TORCH_CHECK(pad_id_ >= 0 && pad_id_ < num_tokens_, "MEGABYTE: pad_id must be in [0, ",
              num_tokens_, "), got ", pad_id_);
  const int64_t r = cross_patch_attention_, finest = patch_.empty() ? 0 : patch_.back();
  TORCH_CHECK(r == 0 || (r > 0 && r <= finest),
              "MEGABYTE: cross_patch_attention must lie in [0, patch.back() = ", finest,
              "] (it needs two stages or more), got ", r);
  TORCH_CHECK(!conv_patch_encoder_ || !patch_.empty(),
              "MEGABYTE: conv_patch_encoder needs a patch embedder (two stages or more)");
}

// ---------------------------------------------------------------------------------------------
// Construction: the same modules, in the same order and under the same names, as the reference.

MEGABYTEImpl::MEGABYTEImpl(MEGABYTEOptions options_) : options(std::move(options_)) {
  reset();
}

// one piece: modules are created in the reference's order, which fixes the order of their random
// initialization (and so the weights at a seed); split, that order would be spread over files.
void MEGABYTEImpl::reset() {
  options.validate();
  S_ = options.stages();
  dims_ = options.stage_dims();
  lens_ = options.stage_lens();
  const auto& lens = lens_;
  const int64_t fine_dim = dims_.back();

  start_tokens = register_module("start_tokens", nn::ParameterList());
  // ParameterList::append keeps the tensor's requires_grad, which randn leaves false.
  for (int64_t s = 0; s < S_; ++s) start_tokens->append(torch::randn({dims_[s]}).requires_grad_());

  pos_table_.clear();
  if (options.pos_emb()) {
    pos_embs = register_module("pos_embs", nn::ModuleList());
    for (int64_t s = 0; s < S_; ++s) {
      pos_table_.emplace_back(nn::EmbeddingOptions(lens[s], dims_[s]));
      pos_embs->push_back(pos_table_.back());
    }
  }

  // token_embs in the reference's order, finest stage first (the order also fixes the random
  // initialization); token_emb(stage) reads them by stage.
  token_embs = register_module("token_embs", nn::ModuleList());
  for (int64_t stage = S_ - 1; stage >= 0; --stage) token_embs->push_back(make_token_emb(stage));
  byte_emb_ = nn::Embedding(std::dynamic_pointer_cast<nn::EmbeddingImpl>(token_emb(S_ - 1)));
  patch_embs_.clear();
  for (int64_t s = 0; s + 1 < S_; ++s) {
    patch_embs_.emplace_back(std::dynamic_pointer_cast<nn::SequentialImpl>(token_emb(s)));
  }

  transformers = register_module("transformers", nn::ModuleList());
  to_next_transformer_projections =
      register_module("to_next_transformer_projections", nn::ModuleList());
  stage_transformers_.clear();
  projections_.clear();
  for (int64_t s = 0; s < S_; ++s) {
    Transformer t(stage_options(s));
    transformers->push_back(t);
    stage_transformers_.push_back(t);
    if (s + 1 < S_) {
      // Sequential(Rearrange, Linear, Rearrange) in the reference: the Linear sits at index 1.
      Linear proj(dims_[s], dims_[s + 1] * lens[s + 1]);
      to_next_transformer_projections->push_back(
          nn::Sequential(nn::Identity(), proj, nn::Identity()));
      projections_.push_back(proj);
    } else {
      to_next_transformer_projections->push_back(nn::Identity());
    }
  }
  to_logits = register_module("to_logits", Linear(fine_dim, options.num_tokens()));
  convs_.clear();
  if (options.conv_patch_encoder()) {
    patch_convs = register_module("patch_convs", nn::ModuleList());
    for (int64_t s = 0; s + 1 < S_; ++s) {
      convs_.emplace_back(CausalConvStackOptions(fine_dim));
      patch_convs->push_back(convs_.back());
    }
  }
}

TransformerOptions MEGABYTEImpl::stage_options(int64_t s) const {
  return TransformerOptions(dims_[s], options.depth()[s])
      .dim_head(options.dim_head())
      .heads(options.heads())
      .attn_dropout(options.attn_dropout())
      .ff_dropout(options.ff_dropout())
      .ff_mult(options.ff_mult())
      .rel_pos(options.rel_pos())
      .attention(options.attention())
      .attention_range(s == 0 ? "global_attention" : "local_attention")
      .attn_kernel(s == 0 ? AttentionKernel::kGeneric : options.local_attn_kernel())
      .cross_unit_keys(s == S_ - 1 ? options.cross_patch_attention() : 0);
}

std::shared_ptr<nn::Module> MEGABYTEImpl::make_token_emb(int64_t stage) const {
  const int64_t fine_dim = dims_.back();
  if (stage == S_ - 1)
    return nn::Embedding(nn::EmbeddingOptions(options.num_tokens(), fine_dim)).ptr();
  const int64_t unit = options.unit_bytes(stage), dim_out = dims_[stage];
  return nn::Sequential(
             nn::Embedding(nn::EmbeddingOptions(options.num_tokens(), fine_dim)),
             nn::Flatten(nn::FlattenOptions().start_dim(-2).end_dim(-1)),  // '... r d -> ... (r d)'
             nn::LayerNorm(nn::LayerNormOptions({unit * fine_dim})),
             Linear(unit * fine_dim, dim_out), nn::LayerNorm(nn::LayerNormOptions({dim_out})))
      .ptr();
}

std::shared_ptr<nn::Module> MEGABYTEImpl::token_emb(int64_t stage) const {
  TORCH_CHECK(stage >= 0 && stage < S_, "MEGABYTE: stage must lie in [0, ", S_, "), got ", stage);
  return token_embs->ptr(S_ - 1 - stage);  // the one place the reference's order is translated
}

// ---------------------------------------------------------------------------------------------
// Building blocks of the forward pass

torch::Tensor MEGABYTEImpl::check_ids(const torch::Tensor& ids_in) const {
  auto ids = check_byte_ids(ids_in, options.num_tokens(), "MEGABYTE: ids");
  TORCH_CHECK(ids.dim() == 2 || ids.dim() == S_ + 1,
              "MEGABYTE: ids must have rank 2 (batch, "
              "length) or ",
              S_ + 1, " (batch, m, patch...), got shape ", ids.sizes());
  TORCH_CHECK(ids.numel() > 0, "MEGABYTE: ids is empty (shape ", ids.sizes(),
              "); use forward_empty(batch) for the distribution of the first byte");
  return ids;
}

torch::Tensor MEGABYTEImpl::embed(int64_t stage, const torch::Tensor& units,
                                  const torch::Tensor& context) {
  if (stage == S_ - 1) return kernels::embedding(byte_emb_->weight, units);
  if (!options.conv_patch_encoder()) {  // the Sequential, its Embedding through the kernel
    auto it = patch_embs_[stage]->begin();
    auto x = kernels::embedding(it->get<nn::Embedding>()->weight, units);  // (B, ..., unit, F)
    for (++it; it != patch_embs_[stage]->end(); ++it) x = it->forward<torch::Tensor>(x);
    return x;
  }
  // The convolutions run over the stream, before it is cut into patches.
  const int64_t b = units.size(0), c = context.defined() ? context.size(1) : 0;
  auto stream = units.reshape({b, -1});                  // (B, L)
  if (c > 0) stream = torch::cat({context, stream}, 1);  // (B, c + L)
  auto it = patch_embs_[stage]->begin();
  auto bytes = it->forward<torch::Tensor>(stream);                // (B, c + L, F): the byte table
  bytes = convs_[stage](bytes).narrow(1, c, stream.size(1) - c);  // (B, L, F)
  auto shape = units.sizes().vec();
  shape.push_back(bytes.size(-1));
  auto x = bytes.reshape(shape);  // (B, ..., n, unit, F)
  for (++it; it != patch_embs_[stage]->end(); ++it) x = it->forward<torch::Tensor>(x);
  return x;  // (B, ..., n, D_s): flattened, LayerNorm, Linear, LayerNorm
}

torch::Tensor MEGABYTEImpl::project(int64_t stage, const torch::Tensor& x) {
  const int64_t d = options.patch()[stage];
  return projections_[stage](x).reshape({-1, d, dims_[stage + 1]});  // '(b m) n d'
}

bool MEGABYTEImpl::corrected_at(int64_t stage) const {
  return options.context() == ContextMode::kCorrected && stage > 0 && stage < S_ - 1;
}

torch::Tensor MEGABYTEImpl::pad_context(int64_t stage, const torch::Tensor& chunks) const {
  // Reference: [0, c_0, ..., c_{d-1}]. Corrected middle stage: [c_0, ..., c_{d-1}, 0].
  return corrected_at(stage) ? torch::constant_pad_nd(chunks, {0, 0, 0, 1}, 0)
                             : torch::constant_pad_nd(chunks, {0, 0, 1, 0}, 0);
}

torch::Tensor MEGABYTEImpl::context_at(int64_t stage, int64_t p, const torch::Tensor& ctx) const {
  const int64_t d = lens_[stage];
  const int64_t chunk = corrected_at(stage) ? p : p - 1;
  if (chunk < 0 || chunk >= d) return torch::Tensor();
  return ctx.narrow(1, chunk, 1);  // (B, 1, D_s)
}

// ---------------------------------------------------------------------------------------------
// Forward

torch::Tensor MEGABYTEImpl::shape_ids(const torch::Tensor& ids_in, int64_t& seq_len) const {
  auto ids = check_ids(ids_in);
  const auto& lens = lens_;
  seq_len = -1;
  if (ids.dim() == 2) {  // (B, L) -> right-pad to whole patches -> (B, m, patch...)
    seq_len = ids.size(1);
    const int64_t multiple = options.patch_size();
    ids = torch::constant_pad_nd(ids, {0, (multiple - seq_len % multiple) % multiple},
                                 options.pad_id());
    std::vector<int64_t> shape{ids.size(0), -1};
    shape.insert(shape.end(), lens.begin() + 1, lens.end());
    ids = ids.reshape(shape);
  }
  TORCH_CHECK(ids.size(1) <= lens[0], "MEGABYTE: input spans ", ids.size(1),
              " patches, more than seq_len / patch = ", lens[0], " (at most ", options.seq_len(),
              " bytes)");
  for (int64_t s = 1; s < S_; ++s) {
    TORCH_CHECK(ids.size(s + 1) == lens[s], "MEGABYTE: pre-shaped ids must have dimension ", s + 1,
                " equal to patch[", s - 1, "] = ", lens[s], ", got shape ", ids.sizes());
  }
  return ids;  // (B, m, patch[0], ..., patch[S-2])
}

std::vector<torch::Tensor> MEGABYTEImpl::embed_stages(const torch::Tensor& ids) {
  profile::Range r("embedding");
  std::vector<torch::Tensor> tokens(S_);
  for (int64_t s = 0; s < S_; ++s) {
    auto shape = ids.sizes().vec();
    shape.resize(s + 2);                       // (B, d_0, ..., d_s): the units of stage s
    if (s + 1 < S_) shape.push_back(-1);       // each unit's unit_bytes(s) bytes
    tokens[s] = embed(s, ids.reshape(shape));  // (B, d_0, ..., d_s, D_s)
    if (options.pos_emb()) {
      tokens[s] = tokens[s] + kernels::embedding(pos_table_[s]->weight,
                                                 torch::arange(tokens[s].size(-2), ids.options()));
    }
  }
  return tokens;
}

// Two stages, T patches of P bytes: the global model runs over (B, T + 1, D_0) (start token
// first), its outputs at 0..T-1 project to (B*T, P, D_1) context chunks, and the local model runs
// over (B*T, P + 1, D_1) = start token + bytes, each position plus the chunk of the patch above.
MEGABYTEImpl::Forward MEGABYTEImpl::forward_all(const torch::Tensor& ids_in, bool logits) {
  Forward out;
  auto ids = shape_ids(ids_in, out.seq_len);  // (B, d_0, ..., d_{S-1})
  const int64_t batch = ids.size(0);
  const auto stage_tokens = embed_stages(ids);
  torch::Tensor context, attended;  // context: chunks from the stage above, (B', d_s, D_s)
  for (int64_t s = 0; s < S_; ++s) {
    const auto& tokens = stage_tokens[s];  // (B, d_0, ..., d_s, D)
    const int64_t n = tokens.size(-2), d = tokens.size(-1);
    auto x = tokens.reshape({-1, n, d});  // (B', n, D)
    auto start = start_tokens[s].view({1, 1, d}).expand({x.size(0), 1, d});
    x = torch::cat({start, x}, -2);  // (B', n + 1, D)
    if (context.defined()) x = x + pad_context(s, context);
    auto shape = tokens.sizes().vec();
    shape[shape.size() - 2] = n + 1;
    if (s == S_ - 1 && options.cross_patch_attention() > 0) {
      x = x.reshape({batch, -1, n + 1, d});  // (B, units, n + 1, D): consecutive in the stream
    }
    attended = stage_transformers_[s](x).reshape(shape);              // (B, ..., n + 1, D)
    if (s + 1 < S_) context = project(s, attended.narrow(-2, 0, n));  // (B'', d_{s+1}, D_{s+1})
  }

  out.hidden = attended;                  // (B, ..., n + 1, D)
  out.labels = ids.reshape({batch, -1});  // (B, N)
  if (logits) {
    profile::Range logits_range("logits");
    out.all_logits = to_logits(attended);  // (B, ..., n + 1, V)
  }
  return out;
}

// Row t of the flat logits predicts byte t: row 0 is unit 0's start position, row t > 0 position
// (t - 1) % n + 1 of unit (t - 1) / n (each unit's last position predicts nothing: dropped).
torch::Tensor MEGABYTEImpl::flat_logits(const Forward& f) const {
  const auto& logits = f.all_logits;  // (B, ..., n + 1, V)
  const int64_t batch = logits.size(0), V = logits.size(-1), n = logits.size(-2) - 1;
  auto units = logits.reshape({batch, -1, n + 1, V});                  // (B, U, n + 1, V)
  auto start = units.select(1, 0).narrow(1, 0, 1);                     // (B, 1, V)
  auto rest = units.narrow(2, 1, n).reshape({batch, -1, V});           // (B, U n, V)
  return torch::cat({start, rest.narrow(1, 0, rest.size(1) - 1)}, 1);  // (B, N, V)
}

// The loss of the flat logits, without building them: each position of hidden gets the label its
// flat row would have (`ignore` where it has none), so the loss reads hidden in place instead of
// through copies and their backward.
torch::Tensor MEGABYTEImpl::loss(const Forward& f, const torch::Tensor& labels,
                                 int64_t ignore) const {
  const auto& hidden = f.hidden;  // (B, ..., n + 1, D)
  const int64_t batch = hidden.size(0), n = hidden.size(-2) - 1;
  auto next = torch::constant_pad_nd(labels.narrow(1, 1, labels.size(1) - 1), {0, 1}, ignore)
                  .reshape({batch, -1, n});  // (B, U, n): position k >= 1 predicts byte u n + k
  auto first = torch::full({batch, next.size(1), 1}, ignore, labels.options());
  first.select(1, 0).copy_(labels.narrow(1, 0, 1));  // unit 0's start position predicts byte 0
  auto targets = torch::cat({first, next}, -1);      // (B, U, n + 1)
  profile::Range r("logits");
  return kernels::linear_cross_entropy(hidden.reshape({-1, hidden.size(-1)}), to_logits->weight,
                                       to_logits->bias, targets.reshape({-1}), ignore);
}

torch::Tensor MEGABYTEImpl::forward(const torch::Tensor& ids, bool return_loss) {
  auto f = forward_all(ids, /*logits=*/!return_loss);
  if (return_loss) return loss(f, f.labels, options.pad_id());
  const auto shaped = f.all_logits.narrow(-2, 1, f.all_logits.size(-2) - 1);  // (B, ..., n, V)
  if (f.seq_len < 0) return shaped;
  return shaped.reshape({ids.size(0), -1, shaped.size(-1)}).narrow(1, 0, f.seq_len);
}

torch::Tensor MEGABYTEImpl::next_byte_logits(const torch::Tensor& ids) {
  TORCH_CHECK(ids.dim() == 2,
              "MEGABYTE: next_byte_logits needs flat ids (batch, length), got shape ", ids.sizes());
  auto f = forward_all(ids);
  return flat_logits(f).narrow(1, 0, f.seq_len);
}

torch::Tensor MEGABYTEImpl::next_byte_loss(const torch::Tensor& ids) {
  TORCH_CHECK(ids.dim() == 2, "MEGABYTE: next_byte_loss needs flat ids (batch, length), got shape ",
              ids.sizes());
  auto f = forward_all(ids, /*logits=*/false);
  constexpr int64_t kNone = -100;  // not a byte: the right-padding is not scored
  auto labels = f.labels.clone();
  labels.narrow(1, f.seq_len, labels.size(1) - f.seq_len).fill_(kNone);
  return loss(f, labels, kNone);
}

torch::Tensor MEGABYTEImpl::forward_empty(int64_t batch) {
  TORCH_CHECK(batch > 0, "MEGABYTE: batch must be positive, got ", batch);
  torch::Tensor prev, tokens;
  for (int64_t s = 0; s < S_; ++s) {
    const int64_t d = dims_[s];
    tokens = start_tokens[s].view({1, 1, d}).expand({batch, 1, d});
    if (prev.defined()) tokens = tokens + prev.narrow(-2, 0, 1);
    tokens = stage_transformers_[s](tokens);
    if (s + 1 < S_) prev = project(s, tokens);
  }
  return to_logits(tokens);  // (B, 1, V)
}

// ---------------------------------------------------------------------------------------------
// Cached decoding. The global model runs once per patch, each finer stage once per unit of the
// stage below it, and the finest stage once per byte.

torch::Tensor MEGABYTEImpl::feed(MEGABYTEDecodeState& st, int64_t stage, const torch::Tensor& x) {
  return stage_transformers_[stage]->forward_cached(x, st.stages[stage].cache);  // (B, 1, D_s)
}

void MEGABYTEImpl::open_units(MEGABYTEDecodeState& st, int64_t stage, torch::Tensor ctx) {
  const int64_t batch = st.bytes.size(0);
  for (int64_t r = stage; r < S_; ++r) {
    auto& sr = st.stages[r];
    // The finest stage keeps the last keys of the unit before (cross-patch attention).
    sr.cache.next_unit(r == S_ - 1 ? options.cross_patch_attention() : 0);
    sr.ctx = ctx;
    auto x = start_tokens[r].view({1, 1, dims_[r]}).expand({batch, 1, dims_[r]});
    auto c = r > 0 ? context_at(r, 0, ctx) : torch::Tensor();
    if (c.defined()) x = x + c;
    auto out = feed(st, r, x);
    if (r + 1 < S_) {
      ctx = project(r, out);
    } else {
      st.empty_logits = to_logits(out).squeeze(1);
    }
  }
}

MEGABYTEDecodeState MEGABYTEImpl::begin(int64_t batch) {
  TORCH_CHECK(batch > 0, "MEGABYTE: batch must be positive, got ", batch);
  MEGABYTEDecodeState st;
  st.stages.resize(S_);
  st.bytes =
      torch::zeros({batch, options.seq_len()},
                   torch::TensorOptions().dtype(torch::kLong).device(to_logits->weight.device()));
  open_units(st, 0, torch::Tensor());
  if (options.context() == ContextMode::kReference && S_ > 1) {
    st.empty_logits = forward_empty(batch).squeeze(1);  // the reference adds chunk 0 at the start
  }
  return st;
}

torch::Tensor MEGABYTEImpl::append(MEGABYTEDecodeState& st, const torch::Tensor& byte_in) {
  const auto& lens = lens_;
  const int64_t batch = st.bytes.size(0);
  TORCH_CHECK(st.len < options.seq_len(), "MEGABYTE: the context is full (", options.seq_len(),
              " bytes)");
  auto byte = byte_in.to(torch::kLong).reshape({batch});
  st.bytes.select(1, st.len).copy_(byte);

  // Multi-index of the new byte, coarsest first: idx[0] is its patch, idx[s] its unit's position
  // within stage s (idx[S-1] the byte's position in its finest unit).
  std::vector<int64_t> idx(S_);
  int64_t rem = st.len;
  for (int64_t s = S_ - 1; s >= 0; --s) {
    idx[s] = rem % lens[s];
    rem /= lens[s];
  }
  st.len += 1;

  auto token_at = [&](int64_t stage) {  // (B, 1, D_s): the unit just completed at `stage`
    torch::Tensor tok;
    if (stage == S_ - 1) {
      tok = embed(stage, byte.view({batch, 1}));
    } else {
      const int64_t span = options.unit_bytes(stage);
      const int64_t c = convs_.empty() ? 0 : std::min(convs_[stage]->reach(), st.len - span);
      tok = embed(stage, st.bytes.narrow(1, st.len - span, span).unsqueeze(1),
                  st.bytes.narrow(1, st.len - span - c, c));
    }
    if (options.pos_emb()) tok = tok + pos_table_[stage]->weight[idx[stage]].view({1, 1, -1});
    if (stage > 0) {
      auto c = context_at(stage, idx[stage] + 1, st.stages[stage].ctx);
      if (c.defined()) tok = tok + c;
    }
    return tok;
  };

  // The finest stage takes the byte; its output predicts the next byte.
  auto out = feed(st, S_ - 1, token_at(S_ - 1));
  auto logits = to_logits(out).squeeze(1);  // (B, V)
  if (S_ == 1) return st.len < options.seq_len() ? logits : torch::Tensor();

  // Units completed by this byte pass up. A middle stage's last position is never fed: the
  // reference drops its output. The first stage whose unit goes on feeds the finished unit and
  // opens new units below it.
  int64_t s = S_ - 1;
  while (s > 0 && idx[s] == lens[s] - 1) {
    s -= 1;
    const bool last_in_unit = idx[s] == lens[s] - 1;
    if (last_in_unit && s > 0) continue;
    if (last_in_unit && s == 0) return torch::Tensor();  // the context is full
    auto above = feed(st, s, token_at(s));
    open_units(st, s + 1, project(s, above));
    break;
  }
  return logits;
}

torch::Tensor MEGABYTEImpl::next_logits_uncached(const torch::Tensor& seq) {
  if (seq.size(1) == 0) {
    if (options.context() == ContextMode::kReference || S_ == 1) {
      return forward_empty(seq.size(0)).squeeze(1);
    }
    // Corrected mode: byte 0's distribution is the one the loss trains, from the start tokens.
    auto dummy = torch::zeros({seq.size(0), 1}, seq.options().dtype(torch::kLong));
    return flat_logits(forward_all(dummy)).select(1, 0);
  }
  return forward(seq).select(1, seq.size(1) - 1);
}

std::unique_ptr<Decoder> MEGABYTEImpl::decoder(bool use_cache) {
  if (use_cache)
    return std::make_unique<CachedStepDecoder<MEGABYTEImpl, MEGABYTEDecodeState>>(*this);
  return std::make_unique<RerunDecoder>(
      [this](const torch::Tensor& seq) { return next_logits_uncached(seq); });
}

torch::Tensor MEGABYTEImpl::generate(const torch::Tensor& prime_in, std::optional<int64_t> length,
                                     double temperature, double filter_thres, int64_t batch,
                                     bool use_cache) {
  torch::Tensor prime = prime_in.defined()
                            ? prime_in
                            : torch::empty({batch, 0}, torch::TensorOptions().dtype(torch::kLong));
  TORCH_CHECK(prime.dim() == 2, "MEGABYTE: prime must have shape (batch, length), got ",
              prime.sizes());
  TORCH_CHECK(prime.size(0) > 0, "MEGABYTE: prime must have a positive batch size");
  prime =
      check_byte_ids(prime, options.num_tokens(), "MEGABYTE: prime").to(to_logits->weight.device());
  const int64_t L = prime.size(1), total = options.seq_len();
  const int64_t n = length.value_or(total - L);
  TORCH_CHECK(n >= 0 && L + n <= total, "MEGABYTE: prime length ", L, " + length ", n,
              " exceeds the model's maximum of ", total, " bytes");
  return decode(*decoder(use_cache), prime, n, {temperature, filter_thres, use_cache});
}

}  // namespace megabench
