// megabench: the command line. Library code throws; this is the one place that turns errors into
// exit codes (0 success, 1 runtime error, 2 bad experiment / arguments, 3 `compare
// --fail-if-slower` found a metric slower than allowed).
#include <CLI/CLI.hpp>
#include <iostream>
#include <stdexcept>

#include "harness/cli/commands.h"
#include "harness/report/compare.h"

int main(int argc, char** argv) {
  CLI::App app{
      "megabench: MEGABYTE and byte-level baselines, benchmarked from JSON experiment files"};
  app.require_subcommand(1);
  megabench::add_list_command(app);
  megabench::add_run_command(app);
  megabench::add_flops_command(app);
  megabench::add_report_command(app);
  megabench::add_compare_command(app);
  megabench::add_model_commands(app);
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
  } catch (const std::invalid_argument& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
