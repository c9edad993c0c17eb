// Analytical FLOP counts; conventions in harness/api/FLOPS.md.
#include "harness/api/flops.h"

#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>

#include "harness/api/format.h"

namespace megabench::flops {
namespace {

void require_positive(int64_t v, const char* field) {
  if (v <= 0) {
    throw std::invalid_argument(std::string("flops: ") + field + " must be positive, got " +
                                std::to_string(v));
  }
}

void require_non_negative(int64_t v, const char* field) {
  if (v < 0) {
    throw std::invalid_argument(std::string("flops: ") + field + " must be >= 0, got " +
                                std::to_string(v));
  }
}

void require_finite_non_negative(double v, const char* field) {
  if (!std::isfinite(v) || v < 0) {
    throw std::invalid_argument(std::string("flops: ") + field +
                                " must be a finite number >= 0, got " + std::to_string(v));
  }
}

// Parameter counts are built in double (products of paper-scale widths overflow nothing there)
// and must come back as an exact int64.
int64_t to_param_count(double v, const char* what) {
  if (!(v >= 0) || v > 9.0e15) {  // beyond 2^53 a double no longer holds every integer
    throw std::invalid_argument(std::string("flops: ") + what +
                                " out of range: " + std::to_string(v));
  }
  return static_cast<int64_t>(std::llround(v));
}

void require_positive_finite(double v, const char* what) {
  if (!(v > 0) || !std::isfinite(v)) {
    throw std::invalid_argument(std::string("flops: ") + what + " must be positive, got " +
                                std::to_string(v));
  }
}

void check(const PaperTransformer& t) {
  require_finite_non_negative(t.params, "PaperTransformer.params");
  require_positive(t.layers, "PaperTransformer.layers");
  require_positive(t.dim, "PaperTransformer.dim");
  require_positive(t.context, "PaperTransformer.context");
  require_positive(t.vocab, "PaperTransformer.vocab");
  require_positive_finite(t.e_ff, "PaperTransformer.e_ff");
}

void check(const PaperMegabyte& m) {
  require_finite_non_negative(m.params_global, "PaperMegabyte.params_global");
  require_finite_non_negative(m.params_local, "PaperMegabyte.params_local");
  require_positive(m.layers_global, "PaperMegabyte.layers_global");
  require_positive(m.dim_global, "PaperMegabyte.dim_global");
  require_positive(m.layers_local, "PaperMegabyte.layers_local");
  require_positive(m.dim_local, "PaperMegabyte.dim_local");
  require_positive(m.patch, "PaperMegabyte.patch");
  require_positive(m.context, "PaperMegabyte.context");
  require_positive(m.vocab, "PaperMegabyte.vocab");
  require_positive_finite(m.e_ff, "PaperMegabyte.e_ff");
}

}  // namespace

FlopBreakdown layer_per_token(const LayerShape& s) {
  require_positive(s.dim, "LayerShape.dim");
  require_positive(s.inner, "LayerShape.inner");
  require_non_negative(s.ff_hidden, "LayerShape.ff_hidden");
  require_positive(s.context, "LayerShape.context");
  const double dim = static_cast<double>(s.dim), inner = static_cast<double>(s.inner);
  const double hidden = static_cast<double>(s.ff_hidden), w = static_cast<double>(s.context);
  FlopBreakdown b;
  b.attention = 2.0 * (2.0 * w * inner);                             // QK^T and AV
  b.dense = 2.0 * (4.0 * dim * inner) + 2.0 * (2.0 * dim * hidden);  // q,k,v,out; ff in/out
  return b;
}

int64_t layer_params(int64_t dim, int64_t inner, int64_t ff_hidden, bool ff_bias, int64_t norms) {
  require_positive(dim, "dim");
  require_positive(inner, "inner");
  require_non_negative(ff_hidden, "ff_hidden");
  require_non_negative(norms, "norms");
  const double d = static_cast<double>(dim), h = static_cast<double>(ff_hidden);
  double p = 4.0 * d * static_cast<double>(inner) + 2.0 * d * h + static_cast<double>(norms) * d;
  if (ff_bias) p += h + d;
  return to_param_count(p, "layer_params");
}

double linear_per_token(int64_t in, int64_t out) {
  require_positive(in, "in");
  require_positive(out, "out");
  return 2.0 * static_cast<double>(in) * static_cast<double>(out);
}

int64_t paper_transformer_params(const PaperTransformer& t) {
  check(t);
  const double d = static_cast<double>(t.dim), l = static_cast<double>(t.layers);
  return to_param_count(
      l * 4.0 * d * d + l * 2.0 * t.e_ff * d * d + d * static_cast<double>(t.vocab),
      "paper_transformer_params");
}

int64_t paper_megabyte_global_params(const PaperMegabyte& m) {
  check(m);
  const double d = static_cast<double>(m.dim_global), l = static_cast<double>(m.layers_global);
  return to_param_count(l * 4.0 * d * d + l * 2.0 * m.e_ff * d * d, "paper_megabyte_global_params");
}

int64_t paper_megabyte_local_params(const PaperMegabyte& m) {
  check(m);
  const double d = static_cast<double>(m.dim_global), dl = static_cast<double>(m.dim_local);
  const double l = static_cast<double>(m.layers_local), p = static_cast<double>(m.patch);
  return to_param_count(dl * d / p + l * 4.0 * dl * dl + l * 2.0 * m.e_ff * dl * dl +
                            dl * static_cast<double>(m.vocab),
                        "paper_megabyte_local_params");
}

NamedTerms paper_transformer_terms(const PaperTransformer& t) {
  check(t);
  const double params = t.params > 0 ? t.params : static_cast<double>(paper_transformer_params(t));
  const double d = static_cast<double>(t.dim), l = static_cast<double>(t.layers);
  const double w = static_cast<double>(t.context);
  return {{"2m", 2.0 * params}, {"2L(2WD)", 2.0 * l * (2.0 * w * d)}};
}

NamedTerms paper_megabyte_terms(const PaperMegabyte& m) {
  check(m);
  const double mg =
      m.params_global > 0 ? m.params_global : static_cast<double>(paper_megabyte_global_params(m));
  const double ml =
      m.params_local > 0 ? m.params_local : static_cast<double>(paper_megabyte_local_params(m));
  const double p = static_cast<double>(m.patch), t = static_cast<double>(m.context);
  const double d = static_cast<double>(m.dim_global), dl = static_cast<double>(m.dim_local);
  const double lg = static_cast<double>(m.layers_global), ll = static_cast<double>(m.layers_local);
  return {{"2m_g/P", 2.0 * mg / p},
          {"2L_g(2(T/P)D)/P", 2.0 * lg * (2.0 * (t / p) * d) / p},
          {"2m_l", 2.0 * ml},
          {"2L_l(2PD_l)", 2.0 * ll * (2.0 * p * dl)}};
}

FlopBreakdown paper_transformer(const PaperTransformer& t) {
  const NamedTerms terms = paper_transformer_terms(t);
  FlopBreakdown b;
  b.embed_logits = 2.0 * static_cast<double>(t.dim) * static_cast<double>(t.vocab);
  b.dense = terms[0].second - b.embed_logits;
  b.attention = terms[1].second;
  return b;
}

FlopBreakdown paper_megabyte(const PaperMegabyte& m) {
  const NamedTerms terms = paper_megabyte_terms(m);
  FlopBreakdown b;
  b.embed_logits = 2.0 * static_cast<double>(m.dim_local) * static_cast<double>(m.vocab);
  b.dense = terms[0].second + terms[2].second - b.embed_logits;
  b.attention = terms[1].second + terms[3].second;
  return b;
}

std::string format_breakdown(const FlopBreakdown& b, const std::string& title) {
  const double total = b.total();
  std::ostringstream os;
  if (!title.empty()) os << title << '\n';
  char line[128];
  std::snprintf(line, sizeof(line), "  %-14s %14s %8s\n", "part", "FLOPs/byte", "share");
  os << line;
  auto row = [&](const char* name, double v) {
    const double share = total > 0 ? 100.0 * v / total : 0.0;
    std::snprintf(line, sizeof(line), "  %-14s %14s %7.1f%%\n", name, format_si(v, 3, " ").c_str(),
                  share);
    os << line;
  };
  row("attention", b.attention);
  row("dense", b.dense);
  row("embed_logits", b.embed_logits);
  row("total", total);
  std::snprintf(line, sizeof(line), "  %-14s %14s\n", "train (3x)",
                format_si(3.0 * total, 3, " ").c_str());
  os << line;
  return os.str();
}

namespace {

// The metric names of a breakdown, in the order records list them; the total and the training
// figure follow from the three parts.
constexpr const char* kForward = "flops_forward_per_byte";
constexpr const char* kAttention = "flops_attention_forward_per_byte";
constexpr const char* kDense = "flops_dense_forward_per_byte";
constexpr const char* kEmbedLogits = "flops_embed_logits_forward_per_byte";
constexpr const char* kTrain = "flops_train_per_byte";

double metric_number(const nlohmann::ordered_json& metrics, const char* name) {
  auto it = metrics.find(name);
  if (it == metrics.end() || !it->is_number()) {
    throw std::invalid_argument(std::string("flops: metric ") + name + " must be a number, got " +
                                (it == metrics.end() ? std::string("nothing") : it->dump()));
  }
  return it->get<double>();
}

}  // namespace

nlohmann::ordered_json flop_metrics(const FlopBreakdown& b) {
  nlohmann::ordered_json m = nlohmann::ordered_json::object();
  m[kForward] = b.total();
  m[kAttention] = b.attention;
  m[kDense] = b.dense;
  m[kEmbedLogits] = b.embed_logits;
  m[kTrain] = 3 * b.total();
  return m;
}

FlopBreakdown flop_breakdown(const nlohmann::ordered_json& metrics) {
  if (!metrics.is_object()) {
    throw std::invalid_argument("flops: metrics must be an object, got " + metrics.dump());
  }
  FlopBreakdown b;
  b.attention = metric_number(metrics, kAttention);
  b.dense = metric_number(metrics, kDense);
  b.embed_logits = metric_number(metrics, kEmbedLogits);
  return b;
}

}  // namespace megabench::flops
