// Registers MEGABYTE with the harness: its JSON options, the model adapter, and its analytical
// FLOPs and parameter counts (from the config alone, without allocating).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "harness/api/flops.h"
#include "harness/api/registry.h"
#include "kernels/cross_entropy.h"
#include "models/megabyte.h"
#include "models/megabyte_paper.h"

namespace megabench {
namespace {

// The defaults: MEGABYTEOptions' own, and these for the arguments its constructor requires. The
// option table reads every default from here, so each lives in one place.
const MEGABYTEOptions kDefaults(/*num_tokens=*/256, /*dim=*/{128, 64}, /*depth=*/{4, 2},
                                /*seq_len=*/1024,
                                /*patch=*/{8});

const std::vector<OptionSpec> kOptions = {
    {"num_tokens", "int", kDefaults.num_tokens(), "vocabulary size (256 for bytes)"},
    {"dim", "int|int[]", kDefaults.dim(),
     "width per stage, coarsest first; one value = all stages"},
    {"depth", "int[]", kDefaults.depth(), "layers per stage, coarsest first"},
    {"seq_len", "int", kDefaults.seq_len(), "context in bytes, a multiple of the global patch"},
    {"patch", "int|int[]|string", kDefaults.patch().front(),
     "patch length of each finer stage, e.g. 8 or [4, 4] ([] for one stage); \"cbrt\": the divisor "
     "of seq_len nearest seq_len^(1/3)"},
    {"dim_head", "int", kDefaults.dim_head(), "width of an attention head"},
    {"heads", "int", kDefaults.heads(), "attention heads"},
    {"attn_dropout", "float", kDefaults.attn_dropout(), "dropout on attention probabilities"},
    {"ff_mult", "float", kDefaults.ff_mult(), "feedforward hidden width / dim"},
    {"ff_dropout", "float", kDefaults.ff_dropout(), "dropout inside the feedforward"},
    {"pad_id", "int", kDefaults.pad_id(),
     "padding id of the reference's loss (the harness's bpb ignores nothing)"},
    {"rel_pos", "bool", kDefaults.rel_pos(), "rotary embeddings in every stage"},
    {"pos_emb", "bool", kDefaults.pos_emb(), "learned absolute position embedding per stage"},
    {"attention", "string", attention_name(kDefaults.attention()),
     "\"explicit\" softmax(QK^T)V or \"sdpa\" (scaled_dot_product_attention)"},
    {"context", "string",
     kDefaults.context() == ContextMode::kCorrected ? "corrected" : "reference",
     "multi-stage context wiring: \"corrected\" (every byte sees all earlier bytes) or "
     "\"reference\""},
    {"local_attn_kernel", "string",
     kDefaults.local_attn_kernel() == AttentionKernel::kGeneric ? "generic" : "cuda",
     "local stages' attention: \"generic\" (LibTorch) or \"cuda\" (the fused short-sequence "
     "kernel, CUDA only)"},
    {"global", "bool", nullptr,
     "false: MEGABYTE without its global model (Yu et al. 2023, section 6.3, Table 10): each patch "
     "is modelled by the local model alone, from its start token, with no context from earlier "
     "patches (two stages only); unset: with the global model"},
    {"local", "bool", nullptr,
     "false: MEGABYTE without its local model (Yu et al. 2023, section 6.3, Table 10): the finest "
     "stage has no layers (its depth is set to 0), so each byte is predicted from the stage above "
     "through the projection and the logits; unset: as depth says"},
    {"cross_patch_attention", "int", nullptr,
     "r: cross-patch attention (Yu et al. 2023, section 6.3, Table 10): in every local layer the "
     "keys and values also include the last r positions (bytes) of the previous patch, at relative "
     "rotary positions with rel_pos; 0 <= r <= the finest patch; unset: 0, as the reference"},
    {"patch_encoder", "string", nullptr,
     "\"conv\": the convolutional patch encoder (Yu et al. 2023, section 6.3, Table 10): causal "
     "convolutions with filter sizes 3, 5 and 7 over the byte embeddings of the stream before it "
     "is cut into patches; unset or \"linear\": the reference's patch embedder"},
    {"formulation", "string", nullptr,
     "\"paper\": MEGABYTE as the paper's Eq. 1-6 and Appendix B write it (Yu et al. 2023, section "
     "2.2): byte embeddings plus learned positions concatenated into patches, a trainable global "
     "pad patch with the global input shifted one whole patch, a trainable local pad, the global "
     "output cut into P slices of D_G = dim[0] / P, each projected by one shared w_GL into the "
     "local model, and the output tied to the local embedding; two stages, each stack with dim / "
     "dim_head heads and no token shift (heads, pos_emb, context, pad_id and local_attn_kernel do "
     "not apply). Its FLOPs are the SpaceByte Appendix A.1 formula's, term by term. unset or "
     "\"reference\": MEGABYTE-pytorch's architecture"},
};

// The options that formulation "paper" does not have: it sets heads per stack, always embeds
// positions, has two stages and its own pads, and none of the Table 10 variants but local: false.
const std::vector<std::string> kNotInPaper = {"heads",
                                              "pos_emb",
                                              "context",
                                              "pad_id",
                                              "local_attn_kernel",
                                              "global",
                                              "cross_patch_attention",
                                              "patch_encoder"};

// The convolutional patch encoder's filter sizes (CausalConvStackOptions' default, the paper's).
const std::vector<int64_t> kConvKernels = CausalConvStackOptions(1).kernels();

std::vector<int64_t> ints(const json& j) {
  return j.is_array() ? j.get<std::vector<int64_t>>() : std::vector<int64_t>{j.get<int64_t>()};
}

// The divisor of n closest to its cube root (the smaller on a tie). Divisors come in pairs
// (p, n / p) with p <= sqrt(n), so the search is O(sqrt(n)), not O(n): a sweep with a huge
// seq_len must not hang the parser (a fuzz finding).
int64_t cbrt_divisor(int64_t n) {
  const double target = std::cbrt(static_cast<double>(n));
  auto dist = [&](int64_t p) { return std::abs(static_cast<double>(p) - target); };
  int64_t best = 1;
  for (int64_t p = 1; p <= n / p; ++p) {
    if (n % p != 0) continue;
    for (int64_t d : {p, n / p})
      if (dist(d) < dist(best) || (dist(d) == dist(best) && d < best)) best = d;
  }
  return best;
}

MEGABYTEOptions options_of(const json& c) {
  MEGABYTEOptions o(c["num_tokens"].get<int64_t>(), ints(c["dim"]), ints(c["depth"]),
                    c["seq_len"].get<int64_t>(), ints(c["patch"]));
  // heads, pos_emb, pad_id, context and local_attn_kernel are not in a formulation "paper" config.
  o.dim_head(c["dim_head"]).heads(c.value("heads", kDefaults.heads()));
  o.attn_dropout(c["attn_dropout"]).ff_mult(c["ff_mult"]).ff_dropout(c["ff_dropout"]);
  o.pad_id(c.value("pad_id", kDefaults.pad_id()));
  o.rel_pos(c["rel_pos"])
      .pos_emb(c.value("pos_emb", kDefaults.pos_emb()))
      .attention(attention_path(c["attention"].get<std::string>()));
  o.context(c.value("context", "corrected") == "reference" ? ContextMode::kReference
                                                           : ContextMode::kCorrected);
  o.local_attn_kernel(c.value("local_attn_kernel", "generic") == "cuda"
                          ? AttentionKernel::kLocalCuda
                          : AttentionKernel::kGeneric);
  if (c.contains("cross_patch_attention")) {
    o.cross_patch_attention(c["cross_patch_attention"].get<int64_t>());
  }
  o.conv_patch_encoder(c.contains("patch_encoder") && c["patch_encoder"] == "conv");
  return o;
}

MEGABYTEPaperOptions paper_options_of(const json& c) {
  MEGABYTEPaperOptions o(ints(c["dim"]), ints(c["depth"]), c["seq_len"].get<int64_t>(),
                         ints(c["patch"]).at(0));
  o.num_tokens(c["num_tokens"]).dim_head(c["dim_head"]).ff_mult(c["ff_mult"]);
  o.attn_dropout(c["attn_dropout"]).ff_dropout(c["ff_dropout"]).rel_pos(c["rel_pos"]);
  o.attention(attention_path(c["attention"].get<std::string>()));
  return o;
}

bool is_paper(const json& c) {
  return c.contains("formulation") && c["formulation"] == "paper";
}

// What a config builds: the MEGABYTE model, or without the global model the one-stage local model
// over one patch, run on every patch of the context, or the paper's formulation.
struct MegabyteConfig {
  MEGABYTEOptions model;
  int64_t seq_len = 0;  // the context in bytes
  int64_t patch = 0;    // the global patch (0: one stage)
  bool global = true;
  std::optional<MEGABYTEPaperOptions> paper;  // formulation "paper"
};

MegabyteConfig config_of(const json& c) {
  MegabyteConfig out{options_of(c), c["seq_len"].get<int64_t>(), 0, true, std::nullopt};
  if (is_paper(c)) out.paper = paper_options_of(c);
  out.patch = out.model.patch().empty() ? 0 : out.model.patch_size();
  if (c.contains("global") && !c["global"].get<bool>()) {
    out.global = false;
    json local = c;
    local["dim"] = {ints(c["dim"]).back()};
    local["depth"] = {ints(c["depth"]).back()};
    local["seq_len"] = out.patch;
    local["patch"] = json::array();
    out.model = options_of(local);
  }
  return out;
}

// The patch lengths of a config: a list ([] is a one-stage model), one length, or "cbrt".
std::vector<int64_t> patch_of(const json& patch, int64_t seq_len) {
  if (patch.is_array()) return patch.get<std::vector<int64_t>>();
  if (!patch.is_string()) return {patch.get<int64_t>()};
  if (patch != "cbrt") {
    throw std::invalid_argument("megabyte.patch: expected an integer, a list, or \"cbrt\", got " +
                                patch.dump());
  }
  return {cbrt_divisor(seq_len)};
}

// "local": false is the paper's "w/o local model": the finest stage's depth becomes 0. A depth
// that gives the finest stage layers contradicts it and is an error, as is local true with none.
void apply_local(const json& given, json& c) {
  if (!c.contains("local")) return;
  const bool local = c["local"].get<bool>();
  auto depth = ints(c["depth"]);
  if (!local && given.contains("depth") && depth.back() != 0) {
    throw std::invalid_argument(
        "megabyte.local: false means no local layers, but depth gives the " +
        std::string("finest stage ") + std::to_string(depth.back()) +
        "; leave depth's last entry 0 or drop \"local\"");
  }
  if (local && depth.back() == 0) {
    throw std::invalid_argument(
        "megabyte.local: true, but depth gives the finest stage no layers (depth " +
        c["depth"].dump() + ")");
  }
  if (!local) depth.back() = 0;
  c["depth"] = depth;
}

// Formulation "paper": two stages and none of the options it does not have; those are left out of
// the resolved config, so that it holds only what the model reads.
void resolve_formulation(const json& given, json& c, const std::vector<int64_t>& patch) {
  if (!c.contains("formulation")) return;
  const json& f = c["formulation"];
  if (f != "paper" && f != "reference") {
    throw std::invalid_argument("megabyte.formulation: expected \"paper\" or \"reference\", got " +
                                f.dump());
  }
  if (f != "paper") return;
  if (patch.size() != 1) {
    throw std::invalid_argument(
        "megabyte.formulation: \"paper\" has two stages (one patch size), got " +
        std::to_string(patch.size() + 1) + " stages");
  }
  for (const auto& key : kNotInPaper) {
    if (given.contains(key)) {
      throw OptionError(key, key == "heads"
                                 ? "formulation \"paper\" gives each stack dim / dim_head "
                                   "heads; leave heads out"
                                 : "not an option of formulation \"paper\"; leave it out");
    }
    c.erase(key);
  }
}

// The ablations of Table 10 that exclude one another or need a shape.
void check_variants(const json& c, const std::vector<int64_t>& patch) {
  if (c.contains("patch_encoder") && c["patch_encoder"] != "conv" &&
      c["patch_encoder"] != "linear") {
    throw std::invalid_argument("megabyte.patch_encoder: expected \"linear\" or \"conv\", got " +
                                c["patch_encoder"].dump());
  }
  if (!c.contains("global") || c["global"].get<bool>()) return;
  if (patch.size() != 1) {
    throw std::invalid_argument("megabyte.global: false needs two stages (one patch size), got " +
                                std::to_string(patch.size() + 1) + " stages");
  }
  if (c.value("cross_patch_attention", 0) != 0) {
    throw std::invalid_argument(
        "megabyte.cross_patch_attention: needs the global model (\"global\": false models each "
        "patch on its own)");
  }
  if (c.value("patch_encoder", "linear") == "conv") {
    throw std::invalid_argument(
        "megabyte.patch_encoder: \"conv\" needs the global model, whose patch embedder it is");
  }
}

json resolve(const json& config) {
  // An empty patch list (one stage) is not an int[] to the option check: it is set after it.
  const bool one_stage = config.is_object() && config.contains("patch") &&
                         config["patch"].is_array() && config["patch"].empty();
  json given = config;
  if (one_stage) given.erase("patch");
  json c = apply_option_defaults("megabyte", kOptions, given);
  apply_local(given, c);
  const int64_t seq_len = c["seq_len"];
  if (seq_len <= 0)
    throw std::invalid_argument("megabyte.seq_len: expected a positive integer, got " +
                                std::to_string(seq_len));
  const auto patch = one_stage ? std::vector<int64_t>{} : patch_of(c["patch"], seq_len);
  int64_t span = 1;
  for (auto p : patch) {
    if (p <= 0)
      throw std::invalid_argument("megabyte.patch: expected positive sizes, got " +
                                  c["patch"].dump());
    span *= p;
  }
  if (seq_len % span != 0) {
    throw std::invalid_argument("megabyte.seq_len: " + std::to_string(seq_len) +
                                " is not divisible by the patch sizes' product " +
                                std::to_string(span));
  }
  c["patch"] = patch;
  if (c["context"] != "corrected" && c["context"] != "reference") {
    throw std::invalid_argument("megabyte.context: expected \"corrected\" or \"reference\", got " +
                                c["context"].dump());
  }
  if (c["local_attn_kernel"] != "generic" && c["local_attn_kernel"] != "cuda") {
    throw std::invalid_argument(
        "megabyte.local_attn_kernel: expected \"generic\" or \"cuda\", got " +
        c["local_attn_kernel"].dump());
  }
  attention_path(c["attention"].get<std::string>(), "megabyte.attention");
  if (!c["dim"].is_array())
    c["dim"] = std::vector<int64_t>(patch.size() + 1, c["dim"].get<int64_t>());
  check_variants(c, patch);
  resolve_formulation(given, c, patch);
  try {
    const auto config = config_of(c);
    if (config.paper) {
      config.paper->validate();
    } else {
      config.model.validate();
    }
  } catch (const c10::Error& e) {
    throw std::invalid_argument(e.what_without_backtrace());
  }
  return c;
}

// Parameter counts from the config; the test checks them against the allocated model.
ParamCount count_params(const MEGABYTEOptions& o) {
  const auto dims = o.stage_dims();
  const auto lens = o.stage_lens();
  const int64_t S = o.stages(), V = o.num_tokens(), F = dims.back(), I = o.heads() * o.dim_head();
  std::vector<int64_t> stage(S, 0);
  int64_t embeddings = V * F + F * V + V;  // byte embedding, to_logits (weight + bias)
  for (int64_t s = 0; s < S; ++s) {
    const int64_t D = dims[s];
    const int64_t H = static_cast<int64_t>(static_cast<double>(D) * o.ff_mult());
    stage[s] += D;  // start token
    stage[s] += o.depth()[s] * (flops::layer_params(D, I, H, /*ff_bias=*/true, /*norms=*/2)) + D;
    if (o.pos_emb()) embeddings += lens[s] * D;
    if (s + 1 < S) stage[s] += D * dims[s + 1] * lens[s + 1] + dims[s + 1] * lens[s + 1];
    if (s < S - 1) {  // the patch embedder feeding stage s: table, LayerNorm, Linear, LayerNorm
      const int64_t p = o.unit_bytes(s);
      embeddings += V * F;
      stage[s] += 2 * p * F + p * F * D + D + 2 * D;
      if (o.conv_patch_encoder()) {
        for (auto k : kConvKernels) stage[s] += k * F * F + F;
      }
    }
  }
  ParamCount pc;
  for (int64_t s = 0; s < S; ++s) pc.groups.emplace_back("stage" + std::to_string(s), stage[s]);
  pc.groups.emplace_back("embeddings", embeddings);
  pc.non_embedding = std::accumulate(stage.begin(), stage.end(), int64_t{0});
  pc.total = pc.non_embedding + embeddings;
  return pc;
}

// Forward FLOPs per byte at the full context: each stage's layers over its units (start token
// included), the projections between stages, the patch embedders, and the logits.
FlopBreakdown count_flops(const MEGABYTEOptions& o) {
  const auto dims = o.stage_dims();
  const auto lens = o.stage_lens();
  const int64_t S = o.stages(), V = o.num_tokens(), F = dims.back(), I = o.heads() * o.dim_head();
  const double T = static_cast<double>(o.seq_len());
  FlopBreakdown f;
  double units = 1;  // units at stage s: prod(lens[:s])
  for (int64_t s = 0; s < S; ++s) {
    const int64_t D = dims[s];
    const int64_t H = static_cast<int64_t>(static_cast<double>(D) * o.ff_mult());
    const double tokens = units * static_cast<double>(lens[s] + 1) / T;  // per byte
    const int64_t kept = s == S - 1 ? o.cross_patch_attention() : 0;     // keys of the unit before
    auto layer = flops::layer_per_token({D, I, H, lens[s] + 1 + kept});
    f.attention += tokens * o.depth()[s] * layer.attention;
    f.dense += tokens * o.depth()[s] * layer.dense;
    const double inner_tokens = units * static_cast<double>(lens[s]) / T;
    if (s + 1 < S) f.dense += inner_tokens * flops::linear_per_token(D, dims[s + 1] * lens[s + 1]);
    if (s < S - 1) {
      const int64_t p = o.unit_bytes(s);
      f.dense += inner_tokens * flops::linear_per_token(p * F, D);
      if (o.conv_patch_encoder()) {  // every byte of the stream, per filter
        for (auto k : kConvKernels) f.dense += flops::linear_per_token(k * F, F);
      }
    }
    if (s == S - 1) f.embed_logits += tokens * flops::linear_per_token(F, V);
    units *= static_cast<double>(lens[s]);
  }
  return f;
}

// --- formulation "paper"

// Forward FLOPs per byte of each part: the global stack runs once per patch over K = T / P
// positions, the local stack once per byte over P positions, w_GL and the tied logits once per
// byte. Embedding lookups and the pads cost no FLOPs.
struct PaperFlops {
  FlopBreakdown global_layers, local_layers;
  double w_gl = 0, logits = 0;
};

PaperFlops paper_flops(const MEGABYTEPaperOptions& o) {
  const int64_t P = o.patch(), K = o.seq_len() / P, DG = o.dim_global(), DL = o.dim_local();
  auto hidden = [&](int64_t d) {
    return static_cast<int64_t>(static_cast<double>(d) * o.ff_mult());
  };
  PaperFlops f;
  const auto g = flops::layer_per_token({DG, DG, hidden(DG), K});
  f.global_layers.attention =
      static_cast<double>(o.depth()[0]) * g.attention / static_cast<double>(P);
  f.global_layers.dense = static_cast<double>(o.depth()[0]) * g.dense / static_cast<double>(P);
  const auto l = flops::layer_per_token({DL, DL, hidden(DL), P});
  f.local_layers.attention = static_cast<double>(o.depth()[1]) * l.attention;
  f.local_layers.dense = static_cast<double>(o.depth()[1]) * l.dense;
  f.w_gl = flops::linear_per_token(o.dim_byte(), DL);
  f.logits = flops::linear_per_token(DL, o.num_tokens());
  return f;
}

FlopBreakdown count_paper_flops(const MEGABYTEPaperOptions& o) {
  const PaperFlops p = paper_flops(o);
  FlopBreakdown f;
  f.attention = p.global_layers.attention + p.local_layers.attention;
  f.dense = p.global_layers.dense + p.local_layers.dense + p.w_gl;
  f.embed_logits = p.logits;
  return f;
}

ParamCount count_paper_params(const MEGABYTEPaperOptions& o) {
  const int64_t V = o.num_tokens(), T = o.seq_len(), DB = o.dim_byte();
  auto stack = [&](int64_t d, int64_t depth) {  // the layers and the final norm
    const int64_t h = static_cast<int64_t>(static_cast<double>(d) * o.ff_mult());
    return depth * flops::layer_params(d, d, h, /*ff_bias=*/true, /*norms=*/2) + d;
  };
  const int64_t global = o.dim_global() + stack(o.dim_global(), o.depth()[0]);  // pad + stack
  const int64_t local = DB * o.dim_local() + o.dim_local() + stack(o.dim_local(), o.depth()[1]);
  const int64_t embeddings = V * DB + T * DB + V * o.dim_local();  // E_global, E_pos, E_local
  ParamCount pc;
  pc.groups = {{"stage0", global}, {"stage1", local}, {"embeddings", embeddings}};
  pc.non_embedding = global + local;
  pc.total = pc.non_embedding + embeddings;
  return pc;
}

// The count against SpaceByte's Appendix A.1 formula for MEGABYTE, on the config's shapes:
// 2 m_g / P + 2 L_g (2 (T/P) D) / P + 2 m_l + 2 L_l (2 P D_l), with m_g and m_l counted from the
// formula's own terms (D = the global width P * D_G).
std::optional<FormulaCheck> paper_formula(const MEGABYTEPaperOptions& o) {
  if (o.depth()[1] == 0) return std::nullopt;  // the formula has a local model
  flops::PaperMegabyte m;
  m.layers_global = o.depth()[0], m.dim_global = o.dim_global();
  m.layers_local = o.depth()[1], m.dim_local = o.dim_local();
  m.patch = o.patch(), m.context = o.seq_len(), m.vocab = o.num_tokens(), m.e_ff = o.ff_mult();
  const auto formula = flops::paper_megabyte_terms(m);
  const PaperFlops p = paper_flops(o);
  const double counted[] = {p.global_layers.dense, p.global_layers.attention,
                            p.local_layers.dense + p.w_gl + p.logits, p.local_layers.attention};
  FormulaCheck check;
  check.formula = "SpaceByte (Slagle 2024) Appendix A.1, MEGABYTE";
  for (size_t i = 0; i < formula.size(); ++i) {
    check.terms.push_back({formula[i].first, counted[i], formula[i].second});
  }
  check.note =
      "m_g and m_l from the formula's terms (global width D = dim[0] = P * D_G); with the "
      "paper's reported 758M + 262M the same formula gives 729M (megabench flops paper)";
  return check;
}

// Without the global model, the patches are independent: decoding starts the local model afresh
// (its start token) at every patch boundary.
class PatchwiseDecoder : public Decoder {
 public:
  PatchwiseDecoder(MEGABYTEImpl& model, int64_t patch) : model_(model), patch_(patch) {}
  torch::Tensor begin(const torch::Tensor& prime) override {
    state_ = model_.begin(prime.size(0));
    len_ = 0;
    torch::Tensor logits = state_.empty_logits;  // (B, V)
    for (int64_t t = 0; t < prime.size(1); ++t) logits = append(prime.select(1, t));
    return logits;
  }
  torch::Tensor append(const torch::Tensor& byte) override {
    auto logits = model_.append(state_, byte);  // (B, V)
    if (++len_ % patch_ != 0) return logits;
    state_ = model_.begin(byte.size(0));
    return state_.empty_logits;
  }

 private:
  MEGABYTEImpl& model_;
  int64_t patch_;
  MEGABYTEDecodeState state_;
  int64_t len_ = 0;
};

// Formulation "paper": a start-token model with patches (the strided evaluation and the loss by
// position within a patch use them).
class PaperAdapter : public StartTokenByteModel<MEGABYTEPaper, MEGABYTEPaperOptions> {
 public:
  explicit PaperAdapter(const MEGABYTEPaperOptions& o)
      : StartTokenByteModel(o, &count_paper_params), patch_(o.patch()) {}
  int64_t patch_size() const override { return patch_; }

 private:
  int64_t patch_;
};

class MegabyteAdapter : public ByteModel {
 public:
  explicit MegabyteAdapter(const MegabyteConfig& c) : model_(c.model), config_(c) {}
  torch::nn::Module& module() override { return *model_; }
  int64_t seq_len() const override { return config_.seq_len; }
  int64_t seq_multiple() const override { return std::max<int64_t>(config_.patch, 1); }
  int64_t patch_size() const override { return config_.patch; }
  torch::Tensor byte_nll(const torch::Tensor& bytes) override {
    return nll_from_logits(next_byte_logits(bytes), bytes);  // (B, L)
  }
  torch::Tensor loss(const torch::Tensor& bytes) override {
    if (config_.global) return model_->next_byte_loss(bytes);
    return kernels::cross_entropy(next_byte_logits(bytes), bytes.to(torch::kLong));
  }
  torch::Tensor logits(const torch::Tensor& bytes) override {
    if (config_.global) return model_->forward(bytes);
    // Row t predicts byte t + 1: the next-byte logits of the bytes and one more, less row 0.
    check_len(bytes);
    auto more = torch::constant_pad_nd(bytes, {0, 1}, 0);
    return patchwise_logits(more).narrow(1, 1, bytes.size(1));  // (B, L, V)
  }
  torch::Tensor generate(const torch::Tensor& prime, int64_t n, const SamplingOptions& o) override {
    if (config_.global)
      return model_->generate(prime, n, o.temperature, o.filter_thres, prime.size(0), o.use_cache);
    TORCH_CHECK(prime.dim() == 2 && prime.size(1) + n <= config_.seq_len, "MEGABYTE: prime ",
                prime.sizes(), " + ", n, " bytes exceed the context of ", config_.seq_len);
    auto ids = prime.to(model_->to_logits->weight.device(), torch::kLong);
    if (o.use_cache) {
      PatchwiseDecoder d(*model_, config_.patch);
      return decode(d, ids, n, o);
    }
    RerunDecoder d([this](const torch::Tensor& seq) {  // the bytes of the current patch only
      const int64_t start = seq.size(1) / config_.patch * config_.patch;
      return model_->next_logits_uncached(seq.narrow(1, start, seq.size(1) - start));
    });
    return decode(d, ids, n, o);
  }
  ParamCount params() const override { return count_params(model_->options); }

 private:
  // (B, L, V): row t is the distribution of byte t; without the global model every patch is a
  // sequence of its own, (B * L / P, P).
  torch::Tensor next_byte_logits(const torch::Tensor& bytes) {
    if (config_.global) return model_->next_byte_logits(bytes);
    check_len(bytes);
    return patchwise_logits(bytes);
  }
  void check_len(const torch::Tensor& bytes) const {
    TORCH_CHECK(bytes.dim() == 2 && bytes.size(1) <= config_.seq_len, "MEGABYTE: bytes ",
                bytes.sizes(), " exceed the context of ", config_.seq_len);
  }
  torch::Tensor patchwise_logits(const torch::Tensor& bytes) {
    const int64_t B = bytes.size(0), L = bytes.size(1), P = config_.patch;
    auto padded = torch::constant_pad_nd(bytes, {0, (P - L % P) % P}, 0);  // (B, m P)
    auto logits = model_->next_byte_logits(padded.reshape({-1, P}));       // (B m, P, V)
    return logits.reshape({B, -1, logits.size(-1)}).narrow(1, 0, L);       // (B, L, V)
  }

  MEGABYTE model_;
  MegabyteConfig config_;
};

}  // namespace

MEGABENCH_REGISTER_MODEL(
    megabyte,
    TypedModelSpec<MegabyteConfig>{
        .name = "megabyte",
        .description =
            "MEGABYTE (Yu et al. 2023): global model over patches, local models inside them; "
            "lucidrains' MEGABYTE-pytorch 0.3.6 with KV-cached generation",
        .options = kOptions,
        .resolve = resolve,
        .parse = config_of,
        .build = [](const MegabyteConfig& c) -> std::unique_ptr<ByteModel> {
          if (c.paper) return std::make_unique<PaperAdapter>(*c.paper);
          return std::make_unique<MegabyteAdapter>(c);
        },
        // Without the global model, the per-byte FLOPs are the local model's over one patch.
        .flops =
            [](const MegabyteConfig& c) {
              return c.paper ? count_paper_flops(*c.paper) : count_flops(c.model);
            },
        .params =
            [](const MegabyteConfig& c) {
              return c.paper ? count_paper_params(*c.paper) : count_params(c.model);
            },
        .tiny_config = json{{"dim", {32, 16}},
                            {"depth", {1, 1}},
                            {"seq_len", 32},
                            {"patch", 4},
                            {"dim_head", 8},
                            {"heads", 2}},
        .formula = [](const MegabyteConfig& c) -> std::optional<FormulaCheck> {
          if (!c.paper) return std::nullopt;
          return paper_formula(*c.paper);
        }});

}  // namespace megabench
