// `megabench run`: an experiment's sweep into OUTDIR/results.jsonl (cli/run.h does the work).
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <memory>

#include "harness/cli/commands.h"
#include "harness/cli/run.h"
#include "harness/cli/stop_signal.h"
#include "harness/store/result_set.h"

namespace megabench {
namespace {

struct RunArgs {
  RunOptions options;
  std::string shard;
  bool no_progress = false, as_json = false;
};

void run(RunArgs& a) {
  if (!a.shard.empty()) a.options.shard = parse_shard(a.shard);
  if (a.no_progress) a.options.progress = 0;
  if (!a.as_json) {
    const auto summary = run_experiment(a.options, std::cout);  // failed points are records
    if (summary.stopped_by) throw Interrupted(summary.stopped_by);
    return;
  }
  // --json: the log goes to stderr, and stdout gets the summary and every point of the folder.
  const auto summary = run_experiment(a.options, std::cerr);
  if (summary.stopped_by) throw Interrupted(summary.stopped_by);
  nlohmann::ordered_json records = nlohmann::ordered_json::array();
  for (const auto& p :
       load_result_set({std::filesystem::path(summary.results_file).parent_path().string()})
           .points) {
    records.push_back(p.to_json());
  }
  nlohmann::ordered_json out = {{"results_file", summary.results_file},
                                {"points", summary.points},
                                {"in_shard", summary.in_shard},
                                {"ok", summary.ok},
                                {"failed", summary.failed},
                                {"skipped", summary.skipped}};
  out["records"] = records;
  std::cout << out.dump(2) << "\n";
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  auto* cmd =
      app.add_subcommand("run", "Run an experiment's sweep; results go to OUTDIR/results.jsonl");
  cmd->add_option("experiment", a->options.experiment_path,
                  "Experiment JSON file (see experiments/README.md)")
      ->required();
  cmd->add_option("-o,--out", a->options.outdir,
                  "Output folder (default: results/<experiment name>)");
  cmd->add_option("--set", a->options.sets,
                  "Override a field: PATH=VALUE (value parsed as JSON, else a string); repeatable")
      ->take_all();
  cmd->add_option("--shard", a->shard, "Run every N-th point: I/N with 0 <= I < N");
  cmd->add_flag("--dry-run", a->options.dry_run,
                "Validate and list the points without running them");
  cmd->add_flag("--no-progress", a->no_progress, "Plain log lines even on a terminal");
  cmd->add_option("--calibrate-every", a->options.calibrate_every_s,
                  "Seconds between machine calibrations during the run (default 300)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", a->as_json, "Machine-readable output on stdout (the log goes to stderr)");
  cmd->callback([a] { run(*a); });
}

}  // namespace megabench
