#pragma once
// The subcommands of `megabench`, one file each. Each adds itself to the CLI11 app and does its
// work in a callback that throws on error; main.cpp is the one place that turns errors into exit
// codes (0 success, 1 runtime error, 2 bad experiment / arguments, 3 `compare --fail-if-slower`
// found a slowdown).
//
// To add a command: write harness/cli/<name>_command.cpp with add_<name>_command(CLI::App&),
// declare it here and call it from main.cpp.
namespace CLI {
class App;
}

namespace megabench {

void add_list_command(CLI::App& app);     // models and their options; --metrics: the metric table
void add_run_command(CLI::App& app);      // run an experiment (cli/run.h)
void add_flops_command(CLI::App& app);    // analytical FLOPs and parameters, without allocating
void add_report_command(CLI::App& app);   // tables, plots and fits from result folders
void add_compare_command(CLI::App& app);  // two result sets side by side, with verdicts
void add_model_commands(CLI::App& app);  // logits and generate from a checkpoint (model_commands.h)
void add_eval_command(CLI::App& app);    // held-out bpb of a checkpoint in any eval mode

}  // namespace megabench
