// `megabench report`: tables, plots and fits from result folders (shards merged).
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "harness/cli/commands.h"
#include "harness/report/report.h"
#include "harness/store/result_set.h"

namespace megabench {

void add_report_command(CLI::App& app) {
  struct Args {
    std::vector<std::string> dirs;
    std::string out;
    bool as_json = false, strict = false;
  };
  auto args = std::make_shared<Args>();
  auto* report =
      app.add_subcommand("report", "Tables, plots and fits from result folders (shards merged)");
  report->add_option("dirs", args->dirs, "Result folders")->required();
  report->add_option("-o,--out", args->out,
                     "Folder for the report files (default: the first result folder)");
  report->add_flag("--json", args->as_json, "Machine-readable output (the merged points)");
  report->add_flag("--strict", args->strict,
                   "Fail when the results mix commits, carry none, or come from a dirty tree");
  report->callback([args] {
    if (args->as_json) {
      nlohmann::ordered_json pts = nlohmann::ordered_json::array();
      for (const auto& p : load_result_set(args->dirs).points) {
        pts.push_back({{"key", p.key},
                       {"name", p.name},
                       {"model", p.model},
                       {"status", p.status},
                       {"metrics", p.metrics}});
      }
      std::cout << pts.dump(2) << "\n";
      return;
    }
    // Default: the report goes into the first folder (where `run` writes it too).
    report::Options options;
    options.strict = args->strict;
    report::write(args->dirs, args->out.empty() ? args->dirs.front() : args->out, std::cerr, options);
    std::cout << report::markdown_table(args->dirs);
  });
}

}  // namespace megabench
