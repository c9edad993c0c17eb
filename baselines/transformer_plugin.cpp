// Registers the byte Transformer baseline: JSON options, adapter, analytical FLOPs and params.
#include "baselines/transformer.h"
#include "harness/api/flops.h"
#include "harness/api/registry.h"

namespace megabench {
namespace {

const char* positions_name(PositionKind k) {
  return k == PositionKind::kLearned ? "learned" : k == PositionKind::kNone ? "none" : "rotary";
}

// The defaults: ByteTransformerOptions' own, and these for the arguments its constructor requires.
// The option table reads every default from here, so each lives in one place.
const ByteTransformerOptions kDefaults(/*dim=*/128, /*depth=*/4, /*seq_len=*/1024);

const std::vector<OptionSpec> kOptions = {
    {"num_tokens", "int", kDefaults.num_tokens(), "vocabulary size (256 for bytes)"},
    {"dim", "int", kDefaults.dim(), "model width"},
    {"depth", "int", kDefaults.depth(), "layers"},
    {"seq_len", "int", kDefaults.seq_len(), "context in bytes"},
    {"dim_head", "int", kDefaults.dim_head(), "width of an attention head"},
    {"heads", "int", kDefaults.heads(), "attention heads"},
    {"ff_mult", "float", kDefaults.ff_mult(), "feedforward hidden width / dim"},
    {"attn_dropout", "float", kDefaults.attn_dropout(), "dropout on attention probabilities"},
    {"ff_dropout", "float", kDefaults.ff_dropout(), "dropout inside the feedforward"},
    {"positions", "string", positions_name(kDefaults.positions()),
     "\"rotary\", \"learned\" (absolute) or \"none\""},
    {"window", "int", kDefaults.window(),
     "sliding-window attention over the last W positions; 0 = full"},
    {"attention", "string", attention_name(kDefaults.attention()),
     "\"explicit\" softmax(QK^T)V or \"sdpa\" (scaled_dot_product_attention)"},
    {"token_shift", "bool", kDefaults.token_shift(), "RWKV token shift, as in MEGABYTE's blocks"},
};

ByteTransformerOptions options_of(const json& c) {
  ByteTransformerOptions o(c["dim"], c["depth"], c["seq_len"]);
  o.num_tokens(c["num_tokens"]).dim_head(c["dim_head"]).heads(c["heads"]).ff_mult(c["ff_mult"]);
  o.attn_dropout(c["attn_dropout"]).ff_dropout(c["ff_dropout"]).window(c["window"]);
  o.attention(attention_path(c["attention"].get<std::string>())).token_shift(c["token_shift"]);
  const std::string pos = c["positions"];
  o.positions(pos == "learned" ? PositionKind::kLearned
              : pos == "none"  ? PositionKind::kNone
                               : PositionKind::kRotary);
  return o;
}

json resolve(const json& config) {
  json c = apply_option_defaults("transformer", kOptions, config);
  const std::string pos = c["positions"];
  if (pos != "rotary" && pos != "learned" && pos != "none") {
    throw std::invalid_argument(
        "transformer.positions: expected \"rotary\", \"learned\" or \"none\", got \"" + pos + "\"");
  }
  for (const char* key : {"num_tokens", "dim", "seq_len", "dim_head", "heads"}) {
    if (c[key].get<int64_t>() <= 0) {
      throw std::invalid_argument(std::string("transformer.") + key +
                                  ": expected a positive integer, got " + c[key].dump());
    }
  }
  attention_path(c["attention"].get<std::string>(), "transformer.attention");
  if (c["depth"].get<int64_t>() < 0)
    throw std::invalid_argument("transformer.depth: expected >= 0, got " + c["depth"].dump());
  if (c["window"].get<int64_t>() < 0)
    throw std::invalid_argument("transformer.window: expected >= 0, got " + c["window"].dump());
  if (pos == "rotary" && c["dim_head"].get<int64_t>() % 2 != 0) {
    throw std::invalid_argument(
        "transformer.dim_head: rotary positions need an even dim_head, got " +
        c["dim_head"].dump());
  }
  return c;
}

ParamCount count_params(const ByteTransformerOptions& o) {
  const int64_t D = o.dim(), V = o.num_tokens(), I = o.heads() * o.dim_head();
  const int64_t H = static_cast<int64_t>(static_cast<double>(D) * o.ff_mult());
  ParamCount pc;
  const int64_t layers =
      o.depth() * flops::layer_params(D, I, H, /*ff_bias=*/true, /*norms=*/2) + D;
  int64_t embeddings = V * D + D * V + V;
  if (o.positions() == PositionKind::kLearned) embeddings += o.seq_len() * D;
  pc.non_embedding = layers + D;  // the layers, the final norm and the start token
  pc.groups = {{"layers", layers + D}, {"embeddings", embeddings}};
  pc.total = pc.non_embedding + embeddings;
  return pc;
}

FlopBreakdown count_flops(const ByteTransformerOptions& o) {
  const int64_t D = o.dim(), V = o.num_tokens(), I = o.heads() * o.dim_head();
  const int64_t H = static_cast<int64_t>(static_cast<double>(D) * o.ff_mult());
  const int64_t positions = o.seq_len() + 1;  // the start token too
  const int64_t context = o.window() > 0 ? std::min(o.window(), positions) : positions;
  const double per_byte = static_cast<double>(positions) / static_cast<double>(o.seq_len());
  auto layer = flops::layer_per_token({D, I, H, context});
  FlopBreakdown f;
  f.attention = per_byte * o.depth() * layer.attention;
  f.dense = per_byte * o.depth() * layer.dense;
  f.embed_logits = per_byte * flops::linear_per_token(D, V);
  return f;
}

}  // namespace

MEGABENCH_REGISTER_MODEL(
    transformer,
    TypedModelSpec<ByteTransformerOptions>{
        .name = "transformer",
        .description = "decoder-only byte Transformer from MEGABYTE's blocks; full or "
                       "sliding-window attention",
        .options = kOptions,
        .resolve = resolve,
        .parse = options_of,
        .build = [](const ByteTransformerOptions& o) -> std::unique_ptr<ByteModel> {
          return std::make_unique<StartTokenByteModel<ByteTransformer, ByteTransformerOptions>>(
              o, count_params);
        },
        .flops = count_flops,
        .params = count_params,
        .tiny_config = json{
            {"dim", 32}, {"depth", 2}, {"seq_len", 32}, {"dim_head", 8}, {"heads", 2}}});

}  // namespace megabench
