// megabench: the command line. Library code throws; this is the one place that turns errors into
// exit codes (0 success, 1 runtime error, 2 bad experiment / arguments, 3 `compare
// --fail-if-slower` found a metric slower than allowed).
#include <c10/util/Exception.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness/api/plugin.h"
#include "harness/cli/commands.h"
#include "harness/cli/stop_signal.h"
#include "harness/cli/worker.h"
#include "harness/measure/allocator.h"
#include "harness/measure/denormals.h"
#include "harness/measure/profiler.h"
#include "harness/report/compare.h"

namespace {

// `megabench run` measures its points in a child started as `megabench __worker`.
int run_worker() {
  try {
    return megabench::worker_main();
  } catch (const c10::Error& e) {
    std::cerr << "megabench worker: " << e.what_without_backtrace() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "megabench worker: " << e.what() << "\n";
  }
  return 1;
}

// The commands, --debug and --plugin.
void add_everything(CLI::App& app, bool& debug) {
  app.require_subcommand(1);
  megabench::add_list_command(app);
  megabench::add_run_command(app);
  megabench::add_flops_command(app);
  megabench::add_report_command(app);
  megabench::add_compare_command(app);
  megabench::add_model_commands(app);
  megabench::add_eval_command(app);
  // LibTorch's errors carry a C++ backtrace: shown only with --debug or MEGABENCH_DEBUG=1.
  const char* debug_env = std::getenv("MEGABENCH_DEBUG");
  debug = debug_env && std::strcmp(debug_env, "") != 0 && std::strcmp(debug_env, "0") != 0;
  app.add_flag("--debug", debug,
               "Show the C++ backtrace of LibTorch errors (or MEGABENCH_DEBUG=1)");
  // Loaded as soon as the option is parsed, before any command runs (harness/api/plugin.h).
  app.add_option_function<std::vector<std::string>>(
         "--plugin",
         [](const std::vector<std::string>& paths) {
           for (const auto& p : paths) megabench::load_plugin(p);
         },
         "Load a model plugin library (repeatable); see examples/plugin/")
      ->expected(1)
      ->take_all();
}

// The command line, under this error handling; returns the exit code.
int run_cli(int argc, char** argv) {
  CLI::App app{
      "megabench: MEGABYTE and byte-level baselines, benchmarked from JSON experiment files"};
  bool debug = false;
  add_everything(app, debug);
  // Every command runs in its callback, inside parse(), under this error handling.
  try {
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
  } catch (const megabench::report::SlowerThanAllowed& e) {
    std::cerr << e.what() << "\n";
    return 3;
  } catch (const megabench::Interrupted& e) {
    return 128 + e.signal;  // the run printed what was recorded and how to resume
  } catch (const c10::Error& e) {
    std::cerr << "error: " << (debug ? e.what() : e.what_without_backtrace()) << "\n";
    return 1;
  } catch (const std::invalid_argument& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  megabench::allocator::tune_glibc();          // before any tensor: see harness/measure/allocator.h
  megabench::denormals::configure_from_env();  // before any thread: harness/measure/denormals.h
  const bool worker = argc > 1 && std::strcmp(argv[1], megabench::kWorkerArg) == 0;
  return megabench::end_process(worker ? run_worker() : run_cli(argc, argv));
}
