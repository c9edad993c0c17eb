// `megabench eval`: held-out bits per byte of a checkpoint (a bpb point's
// checkpoints/<key>.safetensors, or one saved from Python) on a data source, in any eval mode,
// with the same windows and scoring as the bpb metric (harness/measure/held_out.h).
//
//   megabench eval --checkpoint results/x/checkpoints/<key>.safetensors --data text
//                  [--mode basic --mode sliding] [--per-document] [--bytes 65536] [--json]
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "harness/api/format.h"
#include "harness/cli/commands.h"
#include "harness/cli/model_commands.h"
#include "harness/measure/held_out.h"
#include "harness/measure/precision.h"

namespace megabench {
namespace {

struct EvalArgs {
  std::string checkpoint, data, weights = "float32";
  std::vector<std::string> modes;
  bool per_document = false, as_json = false;
  int64_t bytes = 65536, batch = 4;
};

// "text" | "code" (the built-in corpora), "random", "file:PATH" or "dir:PATH" (a folder of
// documents).
data::DataSpec data_spec(const std::string& source) {
  data::DataSpec spec;
  if (source == "text" || source == "code") {
    spec.source = "builtin";
    spec.corpus = source;
  } else if (source == "random") {
    spec.source = "random";
  } else if (source.rfind("file:", 0) == 0 && source.size() > 5) {
    spec.source = "file";
    spec.path = source.substr(5);
  } else if (source.rfind("dir:", 0) == 0 && source.size() > 4) {
    spec.source = "dir";
    spec.path = source.substr(4);
  } else {
    throw std::invalid_argument(
        "--data: expected text, code, random, file:PATH or dir:PATH, got '" + source + "'");
  }
  return spec;
}

void run_eval(const EvalArgs& a) {
  EvalSettings ev;
  if (!a.modes.empty()) ev.modes = a.modes;
  for (const auto& m : ev.modes) eval::parse_mode(m, "--mode");
  ev.per_document = a.per_document;
  const auto spec = data_spec(a.data);
  const data::ByteData data = data::load(spec);
  LoadedModel m = load_checkpoint_model(a.checkpoint);
  cast_inference_weights(m.model->module(), a.weights);
  torch::NoGradGuard no_grad;
  const torch::Device cpu(torch::kCPU);
  const int64_t T = m.model->seq_len();
  if (static_cast<int64_t>(data.held_out.size()) < T && !ev.per_document)
    throw std::runtime_error("--data: the held-out split has fewer bytes than one window of " +
                             std::to_string(T));
  auto window = torch::from_blob(const_cast<uint8_t*>(data.held_out.data()), {1, T}, torch::kUInt8)
                    .to(torch::kLong);
  const int64_t predicted = m.model->byte_nll(window).size(1);
  const HeldOutScores s =
      score_held_out(*m.model, data, ev, a.bytes, a.batch, predicted, cpu, spec.source);
  json out = {
      {"checkpoint", a.checkpoint}, {"model", m.name}, {"data", data.info}, {"weights", a.weights}};
  for (size_t i = 0; i < s.modes.size(); ++i) {
    out["modes"].push_back({{"mode", s.modes[i]},
                            {"bpb", s.results[i].bpb()},
                            {"cost", s.results[i].cost()},
                            {"scored_bytes", s.results[i].scored}});
  }
  out["sample"] = greedy_sample(*m.model, data, cpu);
  if (a.as_json) {
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::cout << a.checkpoint << " (" << m.name << ") on " << a.data << ":\n";
  for (const auto& r : out["modes"])
    std::cout << "  " << r["mode"].get<std::string>() << ": " << format_value(r["bpb"])
              << " bits per byte over " << r["scored_bytes"] << " bytes ("
              << format_value(r["cost"]) << " forward passes per byte)\n";
  if (out["sample"].is_object())
    std::cout << "  greedy sample: " << out["sample"]["prime"].get<std::string>() << " -> "
              << out["sample"]["continuation"].get<std::string>() << "\n";
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand(
      "eval", "Held-out bits per byte of a checkpoint on a data source, in any eval mode");
  cmd->add_option("--checkpoint", a->checkpoint, "model checkpoint (.safetensors)")->required();
  cmd->add_option("--weights", a->weights,
                  "float32 (default) or bfloat16: the weights cast to bf16, no fp32 copy")
      ->check(CLI::IsMember({"float32", "bfloat16"}));
  cmd->add_option("--data", a->data,
                  "text | code (built-in corpora) | random | file:PATH | dir:PATH")
      ->required();
  cmd->add_option("--mode", a->modes,
                  "basic | sliding | strided | sliding+strided (repeatable; default basic)")
      ->expected(1)
      ->take_all();
  cmd->add_flag("--per-document", a->per_document,
                "score each document on its own (built-in corpora)");
  cmd->add_option("--bytes", a->bytes, "held-out bytes to score (default 65536)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--batch", a->batch, "windows per forward pass (default 4)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", a->as_json, "Machine-readable output");
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace megabench
