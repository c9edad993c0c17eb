// Registers SpaceByte with the harness: its JSON options, the adapter, and its analytical FLOPs
// (the paper's Appendix A accounting, term by term) and parameter counts.
#include "harness/api/flops.h"
#include "harness/api/registry.h"
#include "models/spacebyte.h"

namespace megabench {
namespace {

// The defaults: SpaceByteOptions' own, and these for the arguments its constructor requires.
const SpaceByteOptions kDefaults(/*dim=*/128, /*dim_local=*/64, /*depth=*/2, /*depth_local=*/4,
                                 /*seq_len=*/1024);

const char* patching_name(Patching p) {
  return p == Patching::kPeriodic ? "periodic" : "spacelike";
}

const std::vector<OptionSpec> kOptions = {
    {"num_tokens", "int", kDefaults.num_tokens(), "vocabulary size (256 for bytes)"},
    {"dim", "int", kDefaults.dim(), "global width D (the global blocks)"},
    {"dim_local", "int", kDefaults.dim_local(), "local width D_local <= dim (the byte blocks)"},
    {"depth", "int", kDefaults.depth(), "global layers L_global"},
    {"depth_local", "int", kDefaults.depth_local(),
     "local layers L_local, before and after the global blocks together"},
    {"depth_initial", "int", kDefaults.depth_initial(),
     "local layers before the global blocks; -1 = depth_local / 2"},
    {"seq_len", "int", kDefaults.seq_len(), "context T in bytes"},
    {"patch", "int", kDefaults.patch(),
     "expected patch length P: the period of \"periodic\" patching and the divisor of the default "
     "cap (paper: 6 for text, 8 for code)"},
    {"global_len", "int", kDefaults.global_len(),
     "cap T_G on global positions per sequence; 0 = ceil((seq_len + 1) / patch)"},
    {"window", "int", kDefaults.window(),
     "local attention window W_local in keys; -1 = dim_local (the paper's), 0 = full"},
    {"patching", "string", patching_name(kDefaults.patching()),
     "\"spacelike\" (SpaceByte: after a spacelike byte that follows a non-spacelike one) or "
     "\"periodic\" (SpaceByte-P: every patch-th position)"},
    {"dim_head", "int", kDefaults.dim_head(),
     "width of an attention head; heads = width / dim_head in each stack"},
    {"ff_mult", "float", kDefaults.ff_mult(), "feedforward hidden width / width"},
    {"attn_dropout", "float", kDefaults.attn_dropout(), "dropout on attention probabilities"},
    {"ff_dropout", "float", kDefaults.ff_dropout(), "dropout inside the feedforward"},
    {"attention", "string", attention_name(kDefaults.attention()),
     "\"explicit\" softmax(QK^T)V or \"sdpa\" (scaled_dot_product_attention)"},
    {"token_shift", "bool", kDefaults.token_shift(),
     "RWKV token shift in every block (MEGABYTE's; the SpaceByte reference has none)"},
};

SpaceByteOptions options_of(const json& c) {
  SpaceByteOptions o(c["dim"], c["dim_local"], c["depth"], c["depth_local"], c["seq_len"]);
  o.num_tokens(c["num_tokens"]).depth_initial(c["depth_initial"]).patch(c["patch"]);
  o.global_len(c["global_len"]).window(c["window"]).dim_head(c["dim_head"]);
  o.ff_mult(c["ff_mult"]).attn_dropout(c["attn_dropout"]).ff_dropout(c["ff_dropout"]);
  o.attention(attention_path(c["attention"].get<std::string>())).token_shift(c["token_shift"]);
  o.patching(c["patching"] == "periodic" ? Patching::kPeriodic : Patching::kSpacelike);
  return o;
}

void require(bool ok, const json& c, const char* key, const std::string& expected) {
  if (!ok) {
    throw std::invalid_argument(std::string("spacebyte.") + key + ": expected " + expected +
                                ", got " + c[key].dump());
  }
}

json resolve(const json& config) {
  json c = apply_option_defaults("spacebyte", kOptions, config);
  auto i = [&](const char* key) { return c[key].get<int64_t>(); };
  for (const char* key : {"num_tokens", "dim", "dim_local", "seq_len", "patch", "dim_head"})
    require(i(key) > 0, c, key, "a positive integer");
  for (const char* key : {"depth", "depth_local", "global_len"})
    require(i(key) >= 0, c, key, "an integer >= 0");
  require(i("dim_local") <= i("dim"), c, "dim_local", "at most dim (" + c["dim"].dump() + ")");
  require(i("depth_initial") >= -1 && i("depth_initial") <= i("depth_local"), c, "depth_initial",
          "-1 or an integer in [0, depth_local]");
  require(i("window") >= -1, c, "window", "-1, 0 or a positive integer");
  require(i("dim_head") % 2 == 0 && i("dim") % i("dim_head") == 0 &&
              i("dim_local") % i("dim_head") == 0,
          c, "dim_head", "an even divisor of dim and dim_local (rotary heads)");
  require(c["patching"] == "spacelike" || c["patching"] == "periodic", c, "patching",
          "\"spacelike\" or \"periodic\"");
  attention_path(c["attention"].get<std::string>(), "spacebyte.attention");
  return c;
}

int64_t ff_hidden(const SpaceByteOptions& o, int64_t dim) {
  return static_cast<int64_t>(static_cast<double>(dim) * o.ff_mult());
}

ParamCount count_params(const SpaceByteOptions& o) {
  const int64_t D = o.dim(), d = o.dim_local(), V = o.num_tokens();
  const int64_t local = o.depth_local() * flops::layer_params(d, d, ff_hidden(o, d), true, 2);
  const int64_t global = o.depth() * flops::layer_params(D, D, ff_hidden(o, D), true, 2);
  const int64_t embeddings = V * d + d * V + V;  // token embedding, logits weight and bias
  ParamCount pc;
  pc.non_embedding = local + global + d + d;  // the final norm and the start token
  pc.groups = {{"local", local + d + d}, {"global", global}, {"embeddings", embeddings}};
  pc.total = pc.non_embedding + embeddings;
  return pc;
}

// Paper Appendix A.1: per byte, every local block and the logits run once per position (the T
// bytes and the start token), with W_local keys; the global blocks run at T_G positions of the
// T bytes (the cap, always filled: T_G / T = 1 / P at the expected patch length), with T_G keys.
FlopBreakdown count_flops(const SpaceByteOptions& o) {
  const int64_t D = o.dim(), d = o.dim_local();
  const int64_t positions = o.seq_len() + 1;
  const int64_t window = o.local_window();
  const int64_t local_context = window > 0 ? std::min(window, positions) : positions;
  const int64_t global_positions = std::min(o.global_cap(), positions);
  const double per_byte = static_cast<double>(positions) / static_cast<double>(o.seq_len());
  const double global_per_byte =
      static_cast<double>(global_positions) / static_cast<double>(o.seq_len());
  const auto local = flops::layer_per_token({d, d, ff_hidden(o, d), local_context});
  const auto global = flops::layer_per_token({D, D, ff_hidden(o, D), global_positions});
  FlopBreakdown f;
  f.attention =
      per_byte * o.depth_local() * local.attention + global_per_byte * o.depth() * global.attention;
  f.dense = per_byte * o.depth_local() * local.dense + global_per_byte * o.depth() * global.dense;
  f.embed_logits = per_byte * flops::linear_per_token(d, o.num_tokens());
  return f;
}

}  // namespace

MEGABENCH_REGISTER_MODEL(
    spacebyte,
    TypedModelSpec<SpaceByteOptions>{
        .name = "spacebyte",
        .description =
            "SpaceByte (Slagle 2024): byte blocks with windowed attention and wider global blocks "
            "after spacelike bytes (or every P bytes: patching \"periodic\", SpaceByte-P). The "
            "paper's 1e19-FLOP grid (reproduce/jobs.py), e.g. PG-19/arXiv: dim 1024, dim_local "
            "768, depth 16, depth_local 16, seq_len 6144, global_len 1024 (T = 6 T_G), window "
            "768; code: patch 8, seq_len 8192",
        .options = kOptions,
        .resolve = resolve,
        .parse = options_of,
        .build = [](const SpaceByteOptions& o) -> std::unique_ptr<ByteModel> {
          return std::make_unique<StartTokenByteModel<SpaceByte, SpaceByteOptions>>(o,
                                                                                    count_params);
        },
        .flops = count_flops,
        .params = count_params,
        .tiny_config = json{{"dim", 32},
                            {"dim_local", 16},
                            {"depth", 1},
                            {"depth_local", 2},
                            {"seq_len", 32},
                            {"dim_head", 8},
                            {"patch", 4}}});

}  // namespace megabench
