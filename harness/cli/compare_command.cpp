// `megabench compare OLD NEW`: the timed metrics of two result folders (or .jsonl files) side by
// side, with the ratio's CI, a Mann-Whitney p-value and a verdict per metric (report/compare.h).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <optional>

#include "harness/api/format.h"
#include "harness/cli/commands.h"
#include "harness/report/compare.h"

namespace megabench {

void add_compare_command(CLI::App& app) {
  struct Args {
    std::string old_path, new_path, format = "text";
    report::CompareOptions options;
    std::optional<double> fail_if_slower;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "compare", "Compare the timed metrics of two result sets, point by point, with a verdict");
  cmd->add_option("old", args->old_path, "The baseline: a result folder or a results .jsonl")
      ->required();
  cmd->add_option("new", args->new_path, "The candidate: a result folder or a results .jsonl")
      ->required();
  cmd->add_option("--threshold", args->options.threshold_pct,
                  "Smallest change called faster/slower, in percent of new/old (default: 5)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--format", args->format, "text (default), md, csv or json")
      ->check(CLI::IsMember({"text", "md", "csv", "json"}));
  cmd->add_option("--fail-if-slower", args->fail_if_slower,
                  "Exit with code 3 when a metric is slower by more than PCT percent with p < 0.05")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([args] {
    const auto c = report::compare_paths(args->old_path, args->new_path, args->options);
    std::cout << report::render_comparison(c, args->format,
                                           args->format == "text" && ::isatty(STDOUT_FILENO));
    if (!args->fail_if_slower) return;
    const auto slower = report::slower_than(c, *args->fail_if_slower);
    if (slower.empty()) return;
    std::string what;
    for (const auto& m : slower)
      what += "\n  " + m.point + " " + m.metric + ": new/old " + format_double("%.3f", m.ratio) +
              ", p " + format_double("%.2g", *m.p);
    throw report::SlowerThanAllowed("compare: " + std::to_string(slower.size()) +
                                    " metric(s) slower by more than " +
                                    format_double("%g", *args->fail_if_slower) + "% (p < " +
                                    format_double("%g", c.options.alpha) + "):" + what);
  });
}

}  // namespace megabench
