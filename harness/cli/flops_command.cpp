// `megabench flops`: analytical FLOPs per byte and parameters from the specs alone (no
// allocation): of a model at a config, of every point of an experiment, or the papers' formulas.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <memory>

#include "harness/api/flops.h"
#include "harness/api/format.h"
#include "harness/api/registry.h"
#include "harness/cli/commands.h"
#include "harness/config/expand.h"

namespace megabench {
namespace {

// The papers' closed formulas (SpaceByte Appendix A.1) at the MEGABYTE paper's text configs, with
// the reported parameter counts and with m counted from the formulas' own terms.
void flops_paper(bool as_json) {
  namespace fl = flops;
  json out = json::array();
  auto add = [&](const std::string& name, const FlopBreakdown& f, const fl::NamedTerms& terms,
                 double paper) {
    json t = json::object();
    for (const auto& [k, v] : terms) t[k] = v;
    out.push_back({{"name", name},
                   {"flops_forward_per_byte", f.total()},
                   {"terms", t},
                   {"paper_flops_per_byte", paper}});
  };
  for (bool reported : {true, false}) {
    fl::PaperMegabyte m;
    m.layers_global = 14, m.dim_global = 2048, m.layers_local = 18, m.dim_local = 1024, m.patch = 8,
    m.context = 8192;
    if (reported) m.params_global = 758e6, m.params_local = 262e6;
    fl::PaperTransformer t;
    t.layers = 22, t.dim = 1024, t.context = 1024;
    if (reported) t.params = 320e6;
    const std::string how = reported ? " (reported params)" : " (params from the formula's terms)";
    add("megabyte 758M+262M P=8 T=8192" + how, fl::paper_megabyte(m), fl::paper_megabyte_terms(m),
        reported ? 729e6 : 645.5e6);
    add("transformer 320M T=1024" + how, fl::paper_transformer(t), fl::paper_transformer_terms(t),
        reported ? 732e6 : 646.4e6);
  }
  if (as_json) {
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::cout << "| formula | FLOPs/byte | paper | terms |\n|---|---:|---:|---|\n";
  for (const auto& r : out) {
    std::string terms;
    for (const auto& [k, v] : r["terms"].items())
      terms += (terms.empty() ? "" : ", ") + k + " " + format_value(v);
    std::cout << "| " << r["name"].get<std::string>() << " | "
              << format_value(r["flops_forward_per_byte"]) << " | "
              << format_value(r["paper_flops_per_byte"]) << " | " << terms << " |\n";
  }
}

struct FlopsRow {
  std::string name, model;
  json config;  // resolved
  std::shared_ptr<const ModelOptions> options;
};

std::vector<FlopsRow> flops_rows(const std::string& target, const std::string& config_text,
                                 const std::vector<std::string>& sets, bool is_file) {
  std::vector<FlopsRow> rows;
  if (is_file) {
    json doc = load_json_file(target);
    for (const auto& s : sets) apply_set(doc, s);
    for (const auto& p : expand(parse_experiment(doc)))
      rows.push_back({p.name, p.model, p.model_config, p.options});
    return rows;
  }
  const auto& spec = Registry::instance().get(target);
  json wrapper = {{"config", config_text.empty() ? json::object() : json::parse(config_text)}};
  for (const auto& s : sets) apply_set(wrapper, "config." + s);
  const json resolved = spec.resolve(wrapper["config"]);
  rows.push_back({target, target, resolved, spec.parse(resolved)});
  return rows;
}

json flops_row_json(const FlopsRow& r) {
  const auto& spec = Registry::instance().get(r.model);
  json row = {{"name", r.name}, {"model", r.model}, {"config", r.config}};
  if (spec.flops) {
    const auto names =
        flops::flop_metrics(spec.flops(*r.options));  // kept alive: items() refers to it
    for (const auto& [k, v] : names.items()) row[k] = v;
  }
  if (spec.params) {
    const ParamCount pc = spec.params(*r.options);
    row["params_total"] = pc.total;
    row["params_non_embedding"] = pc.non_embedding;
  }
  if (spec.formula) {
    if (const auto check = spec.formula(*r.options)) {
      json terms = json::array();
      for (const auto& t : check->terms) {
        terms.push_back({{"term", t.name}, {"counted", t.counted}, {"formula", t.formula}});
      }
      row["formula"] = {{"source", check->formula}, {"terms", terms}, {"note", check->note}};
    }
  }
  return row;
}

// The count beside a published formula, term by term, and the totals.
void print_formula(const FormulaCheck& check) {
  std::cout << "\nagainst " << check.formula << ", on the same shapes:\n\n"
            << "| term | counted | formula | counted / formula - 1 |\n|---|---:|---:|---:|\n";
  double counted = 0, formula = 0;
  auto row = [](const std::string& name, double c, double f) {
    char diff[32];
    std::snprintf(diff, sizeof(diff), "%+.3f%%", f != 0 ? 100.0 * (c / f - 1.0) : 0.0);
    std::cout << "| " << name << " | " << format_si(c, 4, " ") << " | " << format_si(f, 4, " ")
              << " | " << diff << " |\n";
  };
  for (const auto& t : check.terms) {
    row(t.name, t.counted, t.formula);
    counted += t.counted;
    formula += t.formula;
  }
  row("total", counted, formula);
  if (!check.note.empty()) std::cout << "\n" << check.note << "\n";
}

// One model: the full breakdown and the parameter groups.
void print_one(const FlopsRow& r) {
  const auto& spec = Registry::instance().get(r.model);
  std::cout << r.name << " " << r.config.dump() << "\n\n"
            << flops::format_breakdown(spec.flops(*r.options)) << "\n";
  const ParamCount pc = spec.params(*r.options);
  std::cout << "parameters: " << pc.total << " total, " << pc.non_embedding << " non-embedding";
  for (const auto& [g, n] : pc.groups) std::cout << ", " << g << " " << n;
  std::cout << "\n";
  if (spec.formula) {
    if (const auto check = spec.formula(*r.options)) print_formula(*check);
  }
}

void print_table(const json& rows) {
  std::cout
      << "| point | params_total | flops_forward_per_byte | attention | dense | embed_logits |\n"
      << "|---|---:|---:|---:|---:|---:|\n";
  for (const auto& r : rows) {
    auto v = [&](const char* k) { return r.contains(k) ? format_value(r[k]) : std::string(); };
    std::cout << "| " << r["name"].get<std::string>() << " | " << v("params_total") << " | "
              << v("flops_forward_per_byte") << " | " << v("flops_attention_forward_per_byte")
              << " | " << v("flops_dense_forward_per_byte") << " | "
              << v("flops_embed_logits_forward_per_byte") << " |\n";
  }
}

struct FlopsArgs {
  std::string target, config;
  std::vector<std::string> sets;
  bool as_json = false;
};

void run_flops(const FlopsArgs& a) {
  if (a.target == "paper") return flops_paper(a.as_json);
  const bool is_file = a.target.size() > 5 && a.target.substr(a.target.size() - 5) == ".json";
  const auto rows = flops_rows(a.target, a.config, a.sets, is_file);
  json out = json::array();
  for (const auto& r : rows) out.push_back(flops_row_json(r));
  if (a.as_json) {
    std::cout << out.dump(2) << "\n";
  } else if (!is_file) {
    print_one(rows.front());
  } else {
    print_table(out);
  }
}

}  // namespace

void add_flops_command(CLI::App& app) {
  auto a = std::make_shared<FlopsArgs>();
  auto* cmd =
      app.add_subcommand("flops", "Analytical FLOPs per byte and parameters, without allocating");
  cmd->add_option(
         "target", a->target,
         "A registered model name, an experiment JSON file, or \"paper\" (the papers' formulas at "
         "their text configs)")
      ->required();
  cmd->add_option("--config", a->config, "The model's config as JSON (with a model name)");
  cmd->add_option("--set", a->sets, "Override: PATH=VALUE (of the config, or of the experiment)")
      ->take_all();
  cmd->add_flag("--json", a->as_json, "Machine-readable output");
  cmd->callback([a] { run_flops(*a); });
}

}  // namespace megabench
