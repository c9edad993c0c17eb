#include "baselines/transformer.h"

#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/profile_range.h"

namespace megabench {

namespace nn = torch::nn;

ByteTransformerImpl::ByteTransformerImpl(ByteTransformerOptions options_)
    : options(std::move(options_)) {
  reset();
}

void ByteTransformerImpl::reset() {
  const auto& o = options;
  TORCH_CHECK(o.num_tokens() > 0, "ByteTransformer: num_tokens must be positive, got ",
              o.num_tokens());
  TORCH_CHECK(o.dim() > 0, "ByteTransformer: dim must be positive, got ", o.dim());
  TORCH_CHECK(o.depth() >= 0, "ByteTransformer: depth must be >= 0, got ", o.depth());
  TORCH_CHECK(o.seq_len() > 0, "ByteTransformer: seq_len must be positive, got ", o.seq_len());
  TORCH_CHECK(o.window() >= 0, "ByteTransformer: window must be >= 0, got ", o.window());
  start_token = register_parameter("start_token", torch::randn({o.dim()}));
  token_emb = register_module("token_emb", nn::Embedding(o.num_tokens(), o.dim()));
  if (o.positions() == PositionKind::kLearned) {
    pos_emb = register_module("pos_emb", nn::Embedding(o.seq_len(), o.dim()));
  }
  transformer = register_module("transformer",
                                Transformer(TransformerOptions(o.dim(), o.depth())
                                                .dim_head(o.dim_head())
                                                .heads(o.heads())
                                                .attn_dropout(o.attn_dropout())
                                                .ff_dropout(o.ff_dropout())
                                                .ff_mult(o.ff_mult())
                                                .rel_pos(o.positions() == PositionKind::kRotary)
                                                .attention(o.attention())
                                                .token_shift(o.token_shift())
                                                .window(o.window())));
  to_logits = register_module("to_logits", Linear(o.dim(), o.num_tokens()));
}

torch::Tensor ByteTransformerImpl::check_ids(const torch::Tensor& ids_in) const {
  auto ids = check_byte_ids(ids_in, options.num_tokens(), "ByteTransformer: ids");
  TORCH_CHECK(ids.dim() == 2, "ByteTransformer: ids must have shape (batch, length), got ",
              ids.sizes());
  TORCH_CHECK(ids.size(0) > 0 && ids.size(1) > 0, "ByteTransformer: ids is empty (shape ",
              ids.sizes(), ")");
  TORCH_CHECK(ids.size(1) <= options.seq_len(), "ByteTransformer: input length ", ids.size(1),
              " exceeds seq_len ", options.seq_len());
  return ids;
}

torch::Tensor ByteTransformerImpl::run_hidden(const torch::Tensor& ids_in) {
  auto ids = check_ids(ids_in);
  const int64_t b = ids.size(0), L = ids.size(1), d = options.dim();
  torch::Tensor h;
  {
    profile::Range r("embedding");
    auto tokens = kernels::embedding(token_emb->weight, ids);  // (B, L, D)
    if (pos_emb)
      tokens = tokens + kernels::embedding(pos_emb->weight, torch::arange(L, ids.options()));
    auto start = start_token.view({1, 1, d}).expand({b, 1, d});
    h = torch::cat({start, tokens}, 1);  // (B, L + 1, D)
  }
  return transformer(h);  // (B, L + 1, D); pushes "global_attention" and "feedforward"
}

torch::Tensor ByteTransformerImpl::run(const torch::Tensor& ids) {
  auto x = run_hidden(ids);  // (B, L + 1, D)
  profile::Range r("logits");
  return to_logits(x);  // (B, L + 1, V)
}

torch::Tensor ByteTransformerImpl::forward(const torch::Tensor& ids) {
  auto out = run(ids);
  return out.narrow(1, 1, out.size(1) - 1);
}

torch::Tensor ByteTransformerImpl::next_byte_logits(const torch::Tensor& ids) {
  auto out = run(ids);
  return out.narrow(1, 0, out.size(1) - 1);
}

torch::Tensor ByteTransformerImpl::loss(const torch::Tensor& ids) {
  auto x = run_hidden(ids);  // (B, L + 1, D)
  profile::Range r("logits");
  return kernels::linear_cross_entropy(x.narrow(1, 0, x.size(1) - 1), to_logits->weight,
                                       to_logits->bias, ids.to(torch::kLong));  // (B, L, D), (B, L)
}

ByteTransformerDecodeState ByteTransformerImpl::begin(int64_t batch) {
  TORCH_CHECK(batch > 0, "ByteTransformer: batch must be positive, got ", batch);
  ByteTransformerDecodeState st;
  const int64_t d = options.dim();
  auto start = start_token.view({1, 1, d}).expand({batch, 1, d});
  st.empty_logits = to_logits(transformer->forward_cached(start, st.cache)).squeeze(1);
  return st;
}

torch::Tensor ByteTransformerImpl::append(ByteTransformerDecodeState& st,
                                          const torch::Tensor& byte) {
  TORCH_CHECK(st.len < options.seq_len(), "ByteTransformer: the context is full (",
              options.seq_len(), " bytes)");
  auto tok = token_emb(byte.to(torch::kLong).reshape({-1, 1}));  // (B, 1, D)
  if (pos_emb) tok = tok + pos_emb->weight[st.len].view({1, 1, -1});
  auto out = transformer->forward_cached(tok, st.cache);
  st.len += 1;
  if (st.len == options.seq_len()) return torch::Tensor();
  return to_logits(out).squeeze(1);
}

std::unique_ptr<Decoder> ByteTransformerImpl::decoder(bool use_cache) {
  return start_token_decoder<ByteTransformerImpl, ByteTransformerDecodeState>(*this, use_cache);
}

torch::Tensor ByteTransformerImpl::generate(const torch::Tensor& prime,
                                            std::optional<int64_t> length, double temperature,
                                            double filter_thres, bool use_cache) {
  return generate_until_full(*decoder(use_cache), prime, length, options.seq_len(),
                             options.num_tokens(), to_logits->weight.device(), "ByteTransformer",
                             {temperature, filter_thres, use_cache});
}

}  // namespace megabench
