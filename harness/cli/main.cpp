// megabench: the command line. Library code throws; this is the one place that turns errors into
// exit codes (0 success, 1 runtime error, 2 bad experiment / arguments).
#include <CLI/CLI.hpp>

#include <iostream>
#include <sstream>

#include "harness/config/experiment.h"
#include "harness/api/flops.h"
#include "harness/cli/model_commands.h"
#include "harness/api/registry.h"
#include "harness/store/results.h"
#include "harness/measure/runner.h"

#include "harness/report/report.h"

namespace {

using megabench::json;
using megabench::Registry;

int cmd_list(bool as_json) {
  json out = json::array();
  for (const auto& name : Registry::instance().names()) {
    const auto& spec = Registry::instance().get(name);
    json options = json::array();
    for (const auto& o : spec.options) {
      options.push_back({{"name", o.name}, {"type", o.type}, {"default", o.default_value}, {"help", o.help}});
    }
    out.push_back({{"name", spec.name}, {"description", spec.description}, {"options", options},
                   {"tiny_config", spec.tiny_config}});
  }
  if (as_json) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (out.empty()) std::cout << "no models registered\n";
  for (const auto& m : out) {
    std::cout << m["name"].get<std::string>() << ": " << m["description"].get<std::string>() << "\n";
    for (const auto& o : m["options"]) {
      std::cout << "  " << o["name"].get<std::string>() << " (" << o["type"].get<std::string>()
                << ", default " << o["default"].dump() << "): " << o["help"].get<std::string>() << "\n";
    }
  }
  return 0;
}

// The papers' closed formulas (SpaceByte Appendix A.1) at the MEGABYTE paper's text configs, with
// the reported parameter counts and with m counted from the formulas' own terms.
int cmd_flops_paper(bool as_json) {
  namespace fl = megabench::flops;
  json out = json::array();
  auto add = [&](const std::string& name, const megabench::FlopBreakdown& f, const fl::NamedTerms& terms,
                 double paper) {
    json t = json::object();
    for (const auto& [k, v] : terms) t[k] = v;
    out.push_back({{"name", name}, {"flops_forward_per_byte", f.total()}, {"terms", t},
                   {"paper_flops_per_byte", paper}});
  };
  for (bool reported : {true, false}) {
    fl::PaperMegabyte m;
    m.layers_global = 14, m.dim_global = 2048, m.layers_local = 18, m.dim_local = 1024, m.patch = 8, m.context = 8192;
    if (reported) m.params_global = 758e6, m.params_local = 262e6;
    fl::PaperTransformer t;
    t.layers = 22, t.dim = 1024, t.context = 1024;
    if (reported) t.params = 320e6;
    const std::string how = reported ? " (reported params)" : " (params from the formula's terms)";
    add("megabyte 758M+262M P=8 T=8192" + how, fl::paper_megabyte(m), fl::paper_megabyte_terms(m), reported ? 729e6 : 645.5e6);
    add("transformer 320M T=1024" + how, fl::paper_transformer(t), fl::paper_transformer_terms(t), reported ? 732e6 : 646.4e6);
  }
  if (as_json) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << "| formula | FLOPs/byte | paper | terms |\n|---|---:|---:|---|\n";
  for (const auto& r : out) {
    std::string terms;
    for (const auto& [k, v] : r["terms"].items()) terms += (terms.empty() ? "" : ", ") + k + " " + megabench::format_value(v);
    std::cout << "| " << r["name"].get<std::string>() << " | " << megabench::format_value(r["flops_forward_per_byte"])
              << " | " << megabench::format_value(r["paper_flops_per_byte"]) << " | " << terms << " |\n";
  }
  return 0;
}

// FLOPs and parameters from the specs alone (no allocation): of a model at a config, or of every
// point of an experiment.
int cmd_flops(const std::string& target, const std::string& config_text, const std::vector<std::string>& sets,
              bool as_json) {
  if (target == "paper") return cmd_flops_paper(as_json);
  std::vector<std::pair<std::string, std::pair<std::string, json>>> rows;  // name, (model, resolved)
  bool is_file = target.size() > 5 && target.substr(target.size() - 5) == ".json";
  if (is_file) {
    json doc = megabench::load_json_file(target);
    for (const auto& s : sets) megabench::apply_set(doc, s);
    for (const auto& p : megabench::expand(megabench::parse_experiment(doc))) {
      rows.push_back({p.name, {p.model, p.model_config}});
    }
  } else {
    const auto& spec = Registry::instance().get(target);
    json config = config_text.empty() ? json::object() : json::parse(config_text);
    json wrapper = {{"config", config}};
    for (const auto& s : sets) megabench::apply_set(wrapper, "config." + s);
    rows.push_back({target, {target, spec.resolve(wrapper["config"])}});
  }
  json out = json::array();
  for (const auto& [name, mc] : rows) {
    const auto& spec = Registry::instance().get(mc.first);
    json row = {{"name", name}, {"model", mc.first}, {"config", mc.second}};
    if (spec.flops) {
      auto f = spec.flops(mc.second);
      row["flops_forward_per_byte"] = f.total();
      row["flops_attention_forward_per_byte"] = f.attention;
      row["flops_dense_forward_per_byte"] = f.dense;
      row["flops_embed_logits_forward_per_byte"] = f.embed_logits;
      row["flops_train_per_byte"] = 3 * f.total();
    }
    if (spec.params) {
      auto pc = spec.params(mc.second);
      row["params_total"] = pc.total;
      row["params_non_embedding"] = pc.non_embedding;
    }
    out.push_back(row);
  }
  if (as_json) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (!is_file) {  // one model: the full breakdown and the parameter groups
    const auto& r = out.front();
    megabench::FlopBreakdown f{r["flops_attention_forward_per_byte"], r["flops_dense_forward_per_byte"],
                               r["flops_embed_logits_forward_per_byte"]};
    std::cout << target << " " << r["config"].dump() << "\n\n" << megabench::flops::format_breakdown(f) << "\n";
    auto pc = Registry::instance().get(target).params(r["config"]);
    std::cout << "parameters: " << pc.total << " total, " << pc.non_embedding << " non-embedding";
    for (const auto& [g, n] : pc.groups) std::cout << ", " << g << " " << n;
    std::cout << "\n";
    return 0;
  }
  std::cout << "| point | params_total | flops_forward_per_byte | attention | dense | embed_logits |\n"
            << "|---|---:|---:|---:|---:|---:|\n";
  for (const auto& r : out) {
    auto v = [&](const char* k) { return r.contains(k) ? megabench::format_value(r[k]) : std::string(); };
    std::cout << "| " << r["name"].get<std::string>() << " | " << v("params_total") << " | " << v("flops_forward_per_byte")
              << " | " << v("flops_attention_forward_per_byte") << " | " << v("flops_dense_forward_per_byte") << " | "
              << v("flops_embed_logits_forward_per_byte") << " |\n";
  }
  return 0;
}

int cmd_report(const std::vector<std::string>& dirs, const std::string& out_dir, bool as_json) {
  if (as_json) {
    auto r = megabench::report::load(dirs);
    json pts = json::array();
    for (const auto& p : r.points) {
      pts.push_back(json{{"key", p.key}, {"name", p.name}, {"model", p.model}, {"status", p.status},
                         {"metrics", json::parse(p.metrics.dump())}});
    }
    std::cout << pts.dump(2) << "\n";
    return 0;
  }
  // Default: the report goes into the first folder (where `run` writes it too).
  megabench::report::write(dirs, out_dir.empty() ? dirs.front() : out_dir, std::cerr);
  std::cout << megabench::report::markdown_table(dirs);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"megabench: MEGABYTE and byte-level baselines, benchmarked from JSON experiment files"};
  app.require_subcommand(1);

  auto* list = app.add_subcommand("list", "List the registered models and their config options");
  bool list_json = false;
  list->add_flag("--json", list_json, "Machine-readable output");

  auto* run = app.add_subcommand("run", "Run an experiment's sweep; results go to OUTDIR/results.jsonl");
  megabench::RunOptions ro;
  std::string shard_text;
  bool no_progress = false;
  run->add_option("experiment", ro.experiment_path, "Experiment JSON file (see experiments/README.md)")->required();
  run->add_option("-o,--out", ro.outdir, "Output folder (default: results/<experiment name>)");
  run->add_option("--set", ro.sets, "Override a field: PATH=VALUE (value parsed as JSON, else a string); repeatable")
      ->take_all();
  run->add_option("--shard", shard_text, "Run every N-th point: I/N with 0 <= I < N");
  run->add_flag("--dry-run", ro.dry_run, "Validate and list the points without running them");
  run->add_flag("--no-progress", no_progress, "Plain log lines even on a terminal");
  bool run_json = false;
  run->add_flag("--json", run_json, "Machine-readable output on stdout (the log goes to stderr)");

  auto* flops = app.add_subcommand("flops", "Analytical FLOPs per byte and parameters, without allocating");
  std::string flops_target, flops_config;
  std::vector<std::string> flops_sets;
  bool flops_json = false;
  flops->add_option("target", flops_target, "A registered model name, an experiment JSON file, or \"paper\" (the papers' formulas at their text configs)")->required();
  flops->add_option("--config", flops_config, "The model's config as JSON (with a model name)");
  flops->add_option("--set", flops_sets, "Override: PATH=VALUE (of the config, or of the experiment)")->take_all();
  flops->add_flag("--json", flops_json, "Machine-readable output");

  auto* report = app.add_subcommand("report", "Tables, plots and fits from result folders (shards merged)");
  std::vector<std::string> report_dirs;
  std::string report_out;
  bool report_json = false;
  report->add_option("dirs", report_dirs, "Result folders")->required();
  report->add_option("-o,--out", report_out, "Folder for the report files (default: the first result folder)");
  report->add_flag("--json", report_json, "Machine-readable output (the merged points)");

  // logits and generate run in their callbacks, inside parse(), under the same error handling.
  megabench::add_model_commands(app);

  try {
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    if (*list) return cmd_list(list_json);
    if (*run) {
      if (!shard_text.empty()) ro.shard = megabench::parse_shard(shard_text);
      if (no_progress) ro.progress = 0;
      if (!run_json) {
        megabench::run_experiment(ro, std::cout);
        return 0;  // failed points are records, not a failed run
      }
      // --json: the log goes to stderr, and stdout gets the summary and every point of the folder.
      auto summary = megabench::run_experiment(ro, std::cerr);
      json points = json::array();
      for (const auto& r : megabench::load_results(summary.results_file).records) {
        if (r.value("type", "") == "point") points.push_back(r);
      }
      std::cout << json{{"results_file", summary.results_file}, {"points", summary.points},
                        {"in_shard", summary.in_shard}, {"ok", summary.ok}, {"failed", summary.failed},
                        {"skipped", summary.skipped}, {"records", points}}
                       .dump(2)
                << "\n";
      return 0;
    }
    if (*flops) return cmd_flops(flops_target, flops_config, flops_sets, flops_json);
    if (*report) return cmd_report(report_dirs, report_out, report_json);
  } catch (const std::invalid_argument& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
