#include "models/spacebyte.h"

#include <algorithm>

#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/profile_range.h"

namespace megabench {

namespace nn = torch::nn;

// ---------------------------------------------------------------------------------------------
// The patching rule (paper Section 2; reference spacebyte.py, patch_method 'utf8')

bool is_spacelike(int64_t b) {
  const bool digit = b >= '0' && b <= '9';
  const bool letter = (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z');
  const bool continuation = b >= 0x80 && b < 0xC0;  // 10xxxxxx
  return !(digit || letter || continuation);
}

torch::Tensor spacelike(const torch::Tensor& bytes) {
  auto in = [&](int64_t lo, int64_t hi) { return bytes.ge(lo).logical_and(bytes.le(hi)); };
  auto word = in('0', '9') | in('A', 'Z') | in('a', 'z') | in(0x80, 0xBF);
  return word.logical_not();
}

torch::Tensor boundary_mask(const torch::Tensor& bytes, Patching patching, int64_t patch) {
  TORCH_CHECK(bytes.dim() == 2, "SpaceByte: bytes must have shape (batch, length), got ",
              bytes.sizes());
  TORCH_CHECK(patch > 0, "SpaceByte: patch must be positive, got ", patch);
  const int64_t b = bytes.size(0), L = bytes.size(1);
  auto opts = torch::TensorOptions().dtype(torch::kBool).device(bytes.device());
  if (patching == Patching::kPeriodic) {
    auto pos = torch::arange(L + 1, bytes.options().dtype(torch::kLong));  // (L + 1)
    return pos.remainder(patch).eq(0).unsqueeze(0).expand({b, L + 1}).contiguous();
  }
  auto start = torch::ones({b, 1}, opts);                                 // the start token
  auto s = spacelike(bytes);                                              // (B, L)
  auto prev = torch::cat({start, s.narrow(1, 0, L > 0 ? L - 1 : 0)}, 1);  // (B, L)
  return torch::cat({start, s.logical_and(prev.logical_not())}, 1);       // (B, L + 1)
}

// ---------------------------------------------------------------------------------------------
// The model

SpaceByteImpl::SpaceByteImpl(SpaceByteOptions options_) : options(std::move(options_)) {
  reset();
}

void SpaceByteImpl::reset() {
  const auto& o = options;
  TORCH_CHECK(o.num_tokens() > 0, "SpaceByte: num_tokens must be positive, got ", o.num_tokens());
  TORCH_CHECK(o.dim_local() > 0 && o.dim_local() <= o.dim(),
              "SpaceByte: dim_local must lie in [1, dim], got dim_local=", o.dim_local(),
              " dim=", o.dim());
  TORCH_CHECK(o.depth() >= 0 && o.depth_local() >= 0, "SpaceByte: depth and depth_local must be ",
              ">= 0, got ", o.depth(), " and ", o.depth_local());
  TORCH_CHECK(o.initial_layers() <= o.depth_local(), "SpaceByte: depth_initial ", o.depth_initial(),
              " exceeds depth_local ", o.depth_local());
  TORCH_CHECK(o.seq_len() > 0 && o.patch() > 0, "SpaceByte: seq_len and patch must be positive");
  TORCH_CHECK(o.global_len() >= 0 && o.window() >= -1,
              "SpaceByte: global_len must be >= 0 and window >= -1");
  TORCH_CHECK(
      o.dim_head() > 0 && o.dim_head() % 2 == 0 && o.dim() % o.dim_head() == 0 &&
          o.dim_local() % o.dim_head() == 0,
      "SpaceByte: dim_head must be even and divide dim and dim_local, got dim_head=", o.dim_head());
  auto stack = [&](int64_t dim, int64_t depth, int64_t window, bool final_norm, const char* range) {
    return Transformer(TransformerOptions(dim, depth)
                           .dim_head(o.dim_head())
                           .heads(dim / o.dim_head())
                           .attn_dropout(o.attn_dropout())
                           .ff_dropout(o.ff_dropout())
                           .ff_mult(o.ff_mult())
                           .attention(o.attention())
                           .token_shift(o.token_shift())
                           .window(window)
                           .attention_range(range)
                           .final_norm(final_norm));
  };
  const int64_t d = o.dim_local(), w = o.local_window(), initial = o.initial_layers();
  start_token = register_parameter("start_token", torch::randn({d}));
  token_emb = register_module("token_emb", nn::Embedding(o.num_tokens(), d));
  initial_blocks =
      register_module("initial_blocks", stack(d, initial, w, false, "local_attention"));
  global_blocks =
      register_module("global_blocks", stack(o.dim(), o.depth(), 0, false, "global_attention"));
  final_blocks = register_module("final_blocks",
                                 stack(d, o.depth_local() - initial, w, true, "local_attention"));
  to_logits = register_module("to_logits", Linear(d, o.num_tokens()));
}

torch::Tensor SpaceByteImpl::check_ids(const torch::Tensor& ids_in) const {
  auto ids = check_byte_ids(ids_in, options.num_tokens(), "SpaceByte: ids");
  TORCH_CHECK(ids.dim() == 2 && ids.size(0) > 0 && ids.size(1) > 0,
              "SpaceByte: ids must have shape (batch, length), both positive, got ", ids.sizes());
  TORCH_CHECK(ids.size(1) <= options.seq_len(), "SpaceByte: input length ", ids.size(1),
              " exceeds seq_len ", options.seq_len());
  return ids;
}

torch::Tensor SpaceByteImpl::add_global(const torch::Tensor& x, const torch::Tensor& positions) {
  const int64_t b = x.size(0), n = x.size(1), d = options.dim_local(), D = options.dim();
  const int64_t cap = std::min(options.global_cap(), n);
  // The first `cap` boundaries of each row, in order, padded with the last position (as the
  // reference pads); padding sits after every real entry, so causal attention hides it.
  auto keep = positions.logical_and(positions.cumsum(1).le(cap));  // (B, n)
  auto idx = torch::arange(n, x.options().dtype(torch::kLong)).expand({b, n});
  auto order = std::get<0>(torch::where(keep, idx, idx + n).sort(1));      // (B, n) kept first
  auto gidx = order.narrow(1, 0, cap);                                     // (B, G)
  auto valid = gidx.lt(n);                                                 // (B, G)
  gidx = torch::where(valid, gidx, torch::full_like(gidx, n - 1));         // (B, G)
  auto gidx_d = gidx.unsqueeze(-1).expand({b, cap, d});                    // (B, G, D_local)
  auto y = x.gather(1, gidx_d);                                            // (B, G, D_local)
  y = torch::cat({torch::zeros({b, cap, D - d}, x.options()), y}, -1);     // (B, G, D)
  y = global_blocks(y);                                                    // (B, G, D)
  auto back = y.narrow(-1, D - d, d) * valid.unsqueeze(-1).to(y.dtype());  // (B, G, D_local)
  return x.scatter_add(1, gidx_d, back);                                   // (B, n, D_local)
}

torch::Tensor SpaceByteImpl::run_hidden(const torch::Tensor& ids_in) {
  auto ids = check_ids(ids_in);
  const int64_t b = ids.size(0), d = options.dim_local();
  torch::Tensor h;
  {
    profile::Range r("embedding");
    auto start = start_token.view({1, 1, d}).expand({b, 1, d});              // (B, 1, D_local)
    h = torch::cat({start, kernels::embedding(token_emb->weight, ids)}, 1);  // (B, L + 1, D_local)
  }
  auto x = initial_blocks(h);  // (B, L + 1, D_local)
  x = add_global(x,
                 boundary_mask(ids, options.patching(), options.patch()));  // (B, L + 1, D_local)
  return final_blocks(x);                                                   // (B, L + 1, D_local)
}

torch::Tensor SpaceByteImpl::run(const torch::Tensor& ids) {
  auto x = run_hidden(ids);  // (B, L + 1, D_local)
  profile::Range r("logits");
  return to_logits(x);  // (B, L + 1, V)
}

torch::Tensor SpaceByteImpl::forward(const torch::Tensor& ids) {
  auto out = run(ids);
  return out.narrow(1, 1, out.size(1) - 1);
}

torch::Tensor SpaceByteImpl::next_byte_logits(const torch::Tensor& ids) {
  auto out = run(ids);
  return out.narrow(1, 0, out.size(1) - 1);
}

torch::Tensor SpaceByteImpl::loss(const torch::Tensor& ids) {
  auto x = run_hidden(ids);  // (B, L + 1, D_local)
  profile::Range r("logits");
  return kernels::linear_cross_entropy(x.narrow(1, 0, x.size(1) - 1), to_logits->weight,
                                       to_logits->bias, ids.to(torch::kLong));  // (B, L, D), (B, L)
}

// ---------------------------------------------------------------------------------------------
// Cached decoding: each row keeps its own caches, since rows reach boundaries at different bytes.

torch::Tensor SpaceByteImpl::step(SpaceByteRowState& row, const torch::Tensor& e, bool boundary) {
  const int64_t d = options.dim_local(), D = options.dim();
  auto x = initial_blocks->forward_cached(e, row.initial);  // (1, 1, D_local)
  if (boundary && row.global_count < options.global_cap()) {
    auto y = torch::cat({torch::zeros({1, 1, D - d}, x.options()), x}, -1);  // (1, 1, D)
    y = global_blocks->forward_cached(y, row.global);                        // (1, 1, D)
    x = x + y.narrow(-1, D - d, d);                                          // (1, 1, D_local)
    row.global_count += 1;
  }
  x = final_blocks->forward_cached(x, row.final);  // (1, 1, D_local)
  row.pos += 1;
  return to_logits(x).squeeze(1);  // (1, V)
}

SpaceByteDecodeState SpaceByteImpl::begin(int64_t batch) {
  TORCH_CHECK(batch > 0, "SpaceByte: batch must be positive, got ", batch);
  SpaceByteDecodeState st;
  st.rows.resize(batch);
  auto start = start_token.view({1, 1, -1});  // (1, 1, D_local)
  std::vector<torch::Tensor> logits;
  for (auto& row : st.rows) logits.push_back(step(row, start, /*boundary=*/true));
  st.empty_logits = torch::cat(logits, 0);  // (B, V)
  return st;
}

torch::Tensor SpaceByteImpl::append(SpaceByteDecodeState& st, const torch::Tensor& byte_in) {
  auto byte = byte_in.to(torch::kLong).reshape({-1});  // (B)
  TORCH_CHECK(byte.size(0) == static_cast<int64_t>(st.rows.size()), "SpaceByte: append got ",
              byte.size(0), " bytes for ", st.rows.size(), " sequences");
  TORCH_CHECK(st.rows.front().pos - 1 < options.seq_len(), "SpaceByte: the context is full (",
              options.seq_len(), " bytes)");
  std::vector<torch::Tensor> logits;
  for (size_t i = 0; i < st.rows.size(); ++i) {
    auto& row = st.rows[i];
    const int64_t v = byte[static_cast<int64_t>(i)].item<int64_t>();
    const bool s = is_spacelike(v);
    const bool boundary = options.patching() == Patching::kPeriodic ? row.pos % options.patch() == 0
                                                                    : s && !row.prev_spacelike;
    row.prev_spacelike = s;
    auto e = token_emb(byte.narrow(0, static_cast<int64_t>(i), 1).view({1, 1}));  // (1, 1, D_l)
    logits.push_back(step(row, e, boundary));
  }
  if (st.rows.front().pos - 1 == options.seq_len()) return torch::Tensor();
  return torch::cat(logits, 0);  // (B, V)
}

std::unique_ptr<Decoder> SpaceByteImpl::decoder(bool use_cache) {
  return start_token_decoder<SpaceByteImpl, SpaceByteDecodeState>(*this, use_cache);
}

torch::Tensor SpaceByteImpl::generate(const torch::Tensor& prime, std::optional<int64_t> length,
                                      double temperature, double filter_thres, bool use_cache) {
  return generate_until_full(*decoder(use_cache), prime, length, options.seq_len(),
                             options.num_tokens(), to_logits->weight.device(), "SpaceByte",
                             {temperature, filter_thres, use_cache});
}

}  // namespace megabench
