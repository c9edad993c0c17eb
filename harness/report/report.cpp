// `megabench report`: reads the result folders once and writes every file of the report.
#include "harness/report/report.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "harness/report/internal.h"

namespace megabench::report {

namespace {

using detail::ojson;
using detail::str_or;

std::string experiment_name(const ojson& ctx) {
  const bool has = ctx.is_object() && ctx.contains("experiment") && ctx["experiment"].is_object();
  return has ? str_or(ctx["experiment"], "name") : "";
}

std::string table_md(const ResultSet& r, const Trust& trust, const Options& options) {
  const auto& ctx = r.context;
  const std::string name = experiment_name(ctx);
  std::ostringstream md;
  md << "# " << (name.empty() ? std::string("Results") : name) << "\n\n";
  for (const auto& w : trust.warnings) md << "> **Warning:** " << w << "\n";
  if (!trust.warnings.empty()) md << "\n";
  if (ctx.is_object())
    md << "Device: " << str_or(ctx, "device", "?") << " · date: " << str_or(ctx, "date", "?")
       << " · LibTorch " << str_or(ctx, "libtorch_version", "?") << " · commit "
       << str_or(ctx, "git_commit", "?") << "\n\n";
  md << detail::render_markdown(r, options, trust.contended);
  if (const std::string samples = detail::render_samples_md(r); !samples.empty())
    md << "\n" << samples;
  return md.str();
}

// summary.json's "points": each point with the table's metric columns only.
ojson summary_points(const ResultSet& r, const std::vector<std::string>& columns) {
  ojson pts = ojson::array();
  for (const auto& p : r.points) {
    ojson m = ojson::object();
    for (const auto& c : columns)
      if (p.metrics.contains(c)) m[c] = p.metrics[c];
    pts.push_back({{"key", p.key},
                   {"name", p.name},
                   {"model", p.model},
                   {"axes", p.axes},
                   {"status", p.status},
                   {"error", p.error.empty() ? ojson() : ojson(p.error)},
                   {"metrics", m}});
  }
  return pts;
}

ojson summary_paper(const std::vector<PaperRow>& rows) {
  ojson paper = ojson::array();
  for (const auto& row : rows)
    paper.push_back({{"label", row.label},
                     {"metric", row.metric},
                     {"point", row.point},
                     {"paper", row.paper},
                     {"ours", row.ours ? ojson(*row.ours) : ojson()},
                     {"ratio", row.ratio ? ojson(*row.ratio) : ojson()},
                     {"source", row.source},
                     {"note", row.note}});
  return paper;
}

// summary.json up to its "paper" entry; write() adds plots, warnings and files_written.
ojson summary_head(const ResultSet& r, const std::vector<std::string>& result_dirs,
                   const Options& options) {
  ojson summary = ojson::object();
  summary["experiment"] = experiment_name(r.context);
  summary["result_dirs"] = result_dirs;
  summary["files_read"] = r.files;
  ojson context = ojson::object();
  if (r.context.is_object())
    for (const char* k : {"date", "host", "cpu", "threads", "device", "libtorch_version",
                          "cuda_version", "git_commit", "calibration"})
      if (r.context.contains(k)) context[k] = r.context[k];
  summary["context"] = context;
  size_t n_ok = 0;
  for (const auto& p : r.points) n_ok += p.ok();
  summary["points_total"] = r.points.size();
  summary["points_ok"] = n_ok;
  summary["points_failed"] = r.points.size() - n_ok;
  const auto columns = detail::table_layout(r, options).metrics;
  summary["columns"] = columns;
  summary["points"] = summary_points(r, columns);
  return summary;
}

}  // namespace

namespace detail {

// The folders' results with Options::spec_file's "report" section and name in place of the
// experiment's (the name goes into the in-memory context, where the title is read from).
ResultSet load_with_spec(const std::vector<std::string>& result_dirs, const Options& options) {
  ResultSet r = load_result_set(result_dirs);
  add_derived_metrics(r);
  if (options.spec_file.empty()) return r;
  std::ifstream in(options.spec_file);
  if (!in) throw std::runtime_error("report --spec: cannot open '" + options.spec_file + "'");
  const ojson spec = ojson::parse(in, nullptr, false);
  if (spec.is_discarded() || !spec.is_object())
    throw std::invalid_argument("report --spec: '" + options.spec_file + "' is not a JSON object");
  if (!spec.contains("report") || !spec["report"].is_object())
    throw std::invalid_argument(
        "report --spec: '" + options.spec_file +
        "': field \"report\" must be an object (columns, plots, fits, paper)");
  r.report_section = spec["report"];
  if (spec.contains("name") && spec["name"].is_string()) {
    if (!r.context.is_object()) r.context = ojson::object();
    r.context["experiment"] = {{"name", spec["name"]}};
  }
  return r;
}

}  // namespace detail

void write(const std::vector<std::string>& result_dirs, const std::string& out_dir,
           std::ostream& log, const Options& options) {
  const ResultSet r = detail::load_with_spec(result_dirs, options);
  const Trust trust = check_trust(r);
  if (options.strict && !trust.clean()) {
    std::string why;
    for (const auto& w : trust.warnings) why += "\n  " + w;
    throw std::runtime_error("report --strict: the results are not from one clean commit:" + why);
  }
  const detail::fs::path out(out_dir);
  detail::fs::create_directories(out);
  std::vector<std::string> written;
  std::vector<std::string> warnings = r.warnings;
  for (const auto& f : r.files) log << "report: read " << f << "\n";

  detail::write_file(out / "table.md", table_md(r, trust, options), log, written);
  detail::write_file(out / "table.csv", detail::render_csv(r, options), log, written);
  const ojson fits = detail::run_fits(r);
  detail::write_file(out / "fits.md", detail::render_fits_md(fits), log, written);
  detail::write_file(out / "fits.json", fits.dump(2) + "\n", log, written);
  const auto paper_rows = compare_paper(r);
  detail::write_file(out / "paper.md", detail::render_paper_md(paper_rows), log, written);
  ojson plots = ojson::array();
  if (options.plots) plots = detail::make_plots(r, result_dirs, out, log, written, warnings);

  ojson summary = summary_head(r, result_dirs, options);
  summary["fits"] = fits;
  summary["paper"] = summary_paper(paper_rows);
  summary["plots"] = plots;
  summary["trust"] = {{"commits", trust.commits},
                      {"dirty", trust.dirty},
                      {"machines", trust.machines},
                      {"contended", trust.contended},
                      {"clean", trust.clean()}};
  for (const auto& w : trust.warnings) warnings.insert(warnings.begin(), w);
  summary["warnings"] = warnings;
  detail::HtmlParts html{experiment_name(r.context),
                         warnings,
                         detail::render_html_table(r, options, trust.contended),
                         plots,
                         detail::render_samples_md(r),
                         detail::render_fits_md(fits),
                         detail::render_paper_md(paper_rows),
                         r.context.is_object() ? r.context : ojson::object()};
  detail::write_file(out / "index.html", detail::render_html(html), log, written);
  written.push_back((out / "summary.json").string());
  summary["files_written"] = written;
  detail::write_file(out / "summary.json", summary.dump(2) + "\n", log, written);
  for (const auto& w : warnings) log << "report: warning: " << w << "\n";
}

}  // namespace megabench::report
