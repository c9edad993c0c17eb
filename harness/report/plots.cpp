// Plots: plots/<name>.dat (the series), plots/<name>.gp (the gnuplot script that draws them) and
// plots/<name>.png when gnuplot is found.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "harness/api/format.h"
#include "harness/api/stats.h"
#include "harness/report/internal.h"

namespace megabench::report::detail {

namespace {

// One report.plots entry, read and checked.
struct PlotSpec {
  std::string x, y, series, title, name;
  ojson log = "auto";
  ojson where = ojson::object();  // only the ok points with these field values
  bool mean = false;  // "aggregate": "mean": per series and x, the mean of y with its std as a bar
  ojson hline_where =
      nullptr;  // "hlines".where: these points are horizontal lines at their y, not series
  std::string hline_title = "";  // "hlines".title: the field whose value titles each line
};

std::string slug(const std::string& s) {
  std::string out;
  for (char c : s)
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  return out.empty() ? "plot" : out;
}

std::string gp_quote(const std::string& s) {  // a gnuplot double-quoted string
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string sh_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Names are unique within the report: a second plot of the same y against x gets "_2", ...
PlotSpec read_spec(const ojson& spec, std::set<std::string>& used) {
  PlotSpec s;
  s.x = spec_string(spec, "x", "report.plots[]", true);
  s.y = spec_string(spec, "y", "report.plots[]", true);
  s.series = spec_string(spec, "series", "report.plots[]", false);
  s.title = spec_string(spec, "title", "report.plots[]", false);
  if (s.title.empty()) s.title = s.y + " vs " + s.x;
  s.name = slug(spec.contains("name") ? spec_string(spec, "name", "report.plots[]", false)
                                      : s.y + "_vs_" + s.x);
  for (int k = 2; used.count(s.name); ++k)
    s.name = slug(s.y + "_vs_" + s.x) + "_" + std::to_string(k);
  used.insert(s.name);
  if (spec.contains("log")) s.log = spec["log"];
  if (spec.contains("where")) {
    if (!spec["where"].is_object())
      throw std::invalid_argument("report: report.plots[].where must be an object of field values");
    s.where = spec["where"];
  }
  if (spec.contains("aggregate")) {
    if (spec["aggregate"] != "mean")
      throw std::invalid_argument("report: report.plots[].aggregate must be \"mean\", got " +
                                  spec["aggregate"].dump());
    s.mean = true;
  }
  if (spec.contains("hlines")) {
    const ojson& h = spec["hlines"];
    if (!h.is_object() || !h.contains("where") || !h["where"].is_object())
      throw std::invalid_argument(
          "report: report.plots[].hlines must be {\"where\": {field: value}, \"title\": field}");
    s.hline_where = h["where"];
    s.hline_title = spec_string(h, "title", "report.plots[].hlines", false);
  }
  if (!(s.log.is_boolean() || s.log == "auto"))
    throw std::invalid_argument("report: report.plots[].log must be \"auto\", true or false, got " +
                                s.log.dump());
  return s;
}

// "auto": log when every value is positive and they span >= 10x; true/false force it (true falls
// back to linear, with a warning, when a value is not positive).
bool use_log(const ojson& spec_log, const std::vector<double>& v, const std::string& axis,
             const std::string& plot, std::vector<std::string>& warnings) {
  if (v.empty()) return false;
  const double lo = *std::min_element(v.begin(), v.end()),
               hi = *std::max_element(v.begin(), v.end());
  if (spec_log.is_boolean() && !spec_log.get<bool>()) return false;
  if (lo <= 0) {
    if (spec_log.is_boolean())
      warnings.push_back("plot " + plot + ": " + axis + " has values <= 0, drawn on a linear axis");
    return false;
  }
  if (spec_log.is_boolean()) return true;
  return hi / lo >= 10.0;
}

// gnuplot on PATH, or $MEGABENCH_GNUPLOT (a path or command name). Empty when not found.
std::string find_gnuplot() {
  const char* env = std::getenv("MEGABENCH_GNUPLOT");
  const std::string name = (env && *env) ? env : "gnuplot";
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    const std::string cand = dir + "/" + name;
    if (::access(cand.c_str(), X_OK) == 0 && fs::is_regular_file(cand)) return cand;
  }
  return "";
}

using HLines = std::vector<std::pair<std::string, double>>;  // (title, y)

// Per x of one series (its pairs sorted by x): the mean of y, the sample std (0 for one value), n.
std::vector<std::tuple<double, double, double, int>> mean_by_x(
    const std::vector<std::pair<double, double>>& pts) {
  std::vector<std::tuple<double, double, double, int>> out;
  for (size_t i = 0; i < pts.size();) {
    std::vector<double> ys;
    size_t j = i;
    for (; j < pts.size() && pts[j].first == pts[i].first; ++j) ys.push_back(pts[j].second);
    const stats::Summary sum = stats::summarize(ys);
    out.emplace_back(pts[i].first, sum.mean, ys.size() > 1 ? sum.std : 0.0,
                     static_cast<int>(ys.size()));
    i = j;
  }
  return out;
}

// The .dat text: one gnuplot "index" (block) per series, in order of first appearance; with
// "aggregate": "mean" the columns are x, mean, std, n. Horizontal lines are listed as comments.
std::string dat_text(const PlotSpec& s, const XY& xy, const HLines& lines, std::vector<double>& xs,
                     std::vector<double>& ys) {
  std::ostringstream dat;
  dat << std::setprecision(17) << "# " << s.title << "\n# columns: " << s.x << " " << s.y
      << (s.mean ? " std n (mean over the points at each x)" : "") << "\n";
  for (const auto& [title, y] : lines) {
    dat << "# hline: " << title << " " << y << "\n";
    ys.push_back(y);
  }
  for (const auto& name : xy.order) {
    dat << "# series: " << name << "\n";
    if (s.mean) {
      for (auto [x, mean, std, n] : mean_by_x(xy.series.at(name))) {
        dat << x << " " << mean << " " << std << " " << n << "\n";
        xs.push_back(x);
        ys.push_back(mean);
      }
    } else {
      for (auto [a, b] : xy.series.at(name)) {
        dat << a << " " << b << "\n";
        xs.push_back(a);
        ys.push_back(b);
      }
    }
    dat << "\n\n";  // two blank lines: the next gnuplot "index"
  }
  return dat.str();
}

// The lines every plot's script starts with: what renders it, the terminal (pngcairo when gnuplot
// has it) at `size` pixels, the output, the title and the axis labels.
std::string gp_header(const PlotSpec& s, const std::string& size) {
  std::ostringstream gp;
  gp << "# Renders " << s.name << ".png from " << s.name << ".dat; run from this folder: gnuplot "
     << s.name << ".gp\n"
     << "if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) {\n"
     << "  set terminal pngcairo size " << size << " noenhanced font \"sans,10\"\n"
     << "} else {\n  set terminal png size " << size << " noenhanced\n}\n"
     << "set output " << gp_quote(s.name + ".png") << "\n"
     << "set title " << gp_quote(s.title) << "\n"
     << "set xlabel " << gp_quote(s.x) << "\nset ylabel " << gp_quote(s.y) << "\n";
  return gp.str();
}

std::string gp_script(const PlotSpec& s, const XY& xy, const HLines& lines, bool logx, bool logy) {
  std::ostringstream gp;
  gp << gp_header(s, "900,600") << "set key left top\nset grid\n"
     << (logx ? "set logscale x\n" : "") << (logy ? "set logscale y\n" : "");
  if (xy.order.empty()) {
    gp << "set label 1 \"no data\" at graph 0.5,0.5 center\nplot [0:1] [0:1] NaN notitle\n";
    return gp.str();
  }
  gp << "plot ";
  for (size_t i = 0; i < xy.order.size(); ++i)
    gp << (i ? ", \\\n     " : "") << gp_quote(s.name + ".dat") << " index " << i
       << (s.mean ? " using 1:2:3 with yerrorlines" : " using 1:2 with linespoints")
       << " pointtype 7 title " << gp_quote(xy.order[i]);
  for (const auto& [title, y] : lines)
    gp << ", \\\n     " << std::setprecision(17) << y << " with lines dashtype 2 title "
       << gp_quote(title);
  gp << "\n";
  return gp.str();
}

// Runs gnuplot in `dir`; the PNG's path, or "" with a warning (gnuplot's output kept in
// <name>.log).
std::string render_png(const std::string& gnuplot, const fs::path& dir, const std::string& name,
                       std::ostream& log, std::vector<std::string>& warnings) {
  const fs::path png = dir / (name + ".png");
  fs::remove(png);
  const std::string cmd = "cd " + sh_quote(dir.string()) + " && " + sh_quote(gnuplot) + " " +
                          sh_quote(name + ".gp") + " > " + sh_quote(name + ".log") + " 2>&1";
  const int rc = std::system(cmd.c_str());
  if (rc == 0 && fs::exists(png) && fs::file_size(png) > 0) {
    fs::remove(dir / (name + ".log"));
    log << "report: wrote " << png.string() << "\n";
    return png.string();
  }
  const std::string msg = "plot " + name + ": gnuplot failed (exit " + std::to_string(rc) +
                          "), see " + (dir / (name + ".log")).string();
  log << "report: " << msg << "\n";
  warnings.push_back(msg);
  return "";
}

// Writes one plot's .dat and .gp, renders it when gnuplot is there; its summary entry.
ojson write_plot(const PlotSpec& s, const XY& xy, const fs::path& dir, const std::string& gnuplot,
                 bool first, std::ostream& log, std::vector<std::string>& written,
                 std::vector<std::string>& warnings, const HLines& lines = {}) {
  std::vector<double> xs, ys;
  const std::string dat = dat_text(s, xy, lines, xs, ys);
  const bool logx = use_log(s.log, xs, "x", s.name, warnings);
  const bool logy = use_log(s.log, ys, "y", s.name, warnings);
  write_file(dir / (s.name + ".dat"), dat, log, written);
  write_file(dir / (s.name + ".gp"), gp_script(s, xy, lines, logx, logy), log, written);
  ojson entry = {{"name", s.name},   {"x", s.x},      {"y", s.y},      {"series_field", s.series},
                 {"title", s.title}, {"log_x", logx}, {"log_y", logy}, {"series", xy.order},
                 {"png", nullptr}};
  if (s.mean) entry["aggregate"] = "mean";
  if (!lines.empty()) {
    entry["hlines"] = ojson::array();
    for (const auto& [title, y] : lines) entry["hlines"].push_back({{"title", title}, {"y", y}});
  }
  if (gnuplot.empty()) {
    if (first)  // said once per report
      log << "report: gnuplot not found (install the Debian package gnuplot-nox, or set "
             "MEGABENCH_GNUPLOT); wrote the .dat/.gp files only, render later with: cd "
          << dir.string() << " && gnuplot <name>.gp\n";
  } else if (const std::string png = render_png(gnuplot, dir, s.name, log, warnings);
             !png.empty()) {
    written.push_back(png);
    entry["png"] = png;
  }
  return entry;
}

// The points a plot draws: those matching its "where"; of them, the ones matching "hlines".where
// become horizontal lines (titled "<title field>=<value>", or by name) instead of series points.
ResultSet select_points(const ResultSet& r, const PlotSpec& s, HLines& lines) {
  ResultSet out = r;
  out.points.clear();
  for (const auto& p : r.points) {
    if (!p.ok() || !matches_where(p, s.where)) continue;
    if (!s.hline_where.is_null() && matches_where(p, s.hline_where)) {
      const auto y = as_number(lookup(p, s.y));
      if (!y) continue;
      lines.emplace_back(s.hline_title.empty()
                             ? p.name
                             : s.hline_title + "=" + plain_value(lookup(p, s.hline_title)),
                         *y);
      continue;
    }
    out.points.push_back(p);
  }
  return out;
}

// The ok points' loss_by_position arrays (bpb with eval.loss_by_position), one series per point:
// "context" against the bucket starts + 1 (a log axis), or "patch" against the patch position.
XY loss_by_position_xy(const ResultSet& r, const std::string& field) {
  XY xy;
  for (const auto& p : r.points) {
    auto it = p.extra.find("loss_by_position");
    if (!p.ok() || it == p.extra.end() || !it->contains(field)) continue;
    const ojson& ys = (*it)[field];
    for (size_t i = 0; i < ys.size(); ++i) {
      if (!ys[i].is_number()) continue;
      const double x = field == "context" ? (*it)["context_start"][i].get<double>() + 1 : double(i);
      if (!xy.series.count(p.name)) xy.order.push_back(p.name);
      xy.series[p.name].emplace_back(x, ys[i].get<double>());
    }
  }
  return xy;
}

// The training curves of the points that trained (their curve_file, curves/<key>.jsonl, looked up
// in the result folders): the training loss per point, and its held-out bpb as a second series,
// against `x` ("step" or "train_flops").
XY training_curve_xy(const ResultSet& r, const std::vector<std::string>& dirs,
                     const std::string& x) {
  XY xy;
  for (const auto& p : r.points) {
    auto it = p.extra.find("curve_file");
    if (!p.ok() || it == p.extra.end() || !it->is_string()) continue;
    for (const auto& d : dirs) {
      const fs::path file = fs::path(d) / it->get<std::string>();
      if (!fs::exists(file)) continue;
      std::ifstream in(file);
      std::string line;
      while (std::getline(in, line)) {
        const ojson row = ojson::parse(line, nullptr, false);
        if (row.is_discarded() || !row.contains(x) || !row[x].is_number()) continue;
        for (const auto& [field, label] :
             {std::pair{"train_loss_bpb", ""}, std::pair{"held_out_bpb", " (held-out)"}}) {
          if (!row.contains(field) || !row[field].is_number()) continue;
          const std::string series = p.name + label;
          if (!xy.series.count(series)) xy.order.push_back(series);
          xy.series[series].emplace_back(row[x].get<double>(), row[field].get<double>());
        }
      }
      break;
    }
  }
  return xy;
}

// Loss against training FLOPs and against steps, whenever points recorded their curves.
void add_curve_plots(const ResultSet& r, const std::vector<std::string>& dirs, const fs::path& dir,
                     const std::string& gnuplot, ojson& plots, std::ostream& log,
                     std::vector<std::string>& written, std::vector<std::string>& warnings) {
  for (const auto& [x, title, name] :
       {std::tuple{"train_flops", "training loss against training FLOPs", "train_loss_vs_flops"},
        std::tuple{"step", "training loss against steps", "train_loss_vs_steps"}}) {
    const XY xy = training_curve_xy(r, dirs, x);
    if (xy.order.empty()) continue;
    fs::create_directories(dir);
    const PlotSpec s{.x = x, .y = "bits per byte", .series = "name", .title = title, .name = name};
    plots.push_back(write_plot(s, xy, dir, gnuplot, plots.empty(), log, written, warnings));
  }
}

// The roofline (Williams, Waterman and Patterson 2009): each point's achieved FLOP/s against its
// arithmetic intensity (harness/report/derived.cpp), the training step and generation as series
// of their own per model label, under min(peak, bandwidth x intensity) for each dtype and thread
// count: the median calibrated matmul peak of those points and the median triad bandwidth of the
// same points (the run's calibration, measured at the run's threads).
struct RooflinePoints {
  XY xy;
  std::map<std::string, std::vector<double>> peaks, bandwidths;  // "dtype, N threads" -> values
};

RooflinePoints roofline_points(const ResultSet& r) {
  RooflinePoints out;
  XY& xy = out.xy;
  auto& peaks = out.peaks;
  auto& bandwidths = out.bandwidths;
  for (const auto& p : r.points) {
    if (!p.ok()) continue;
    bool placed = false;
    for (const auto& [xf, yf, kind] :
         {std::tuple{"train_arithmetic_intensity", "achieved_flops_per_s", "train step"},
          std::tuple{"generate_arithmetic_intensity", "generate_flops_per_s", "generate"}}) {
      const auto x = as_number(metric_of(p, xf)), y = as_number(metric_of(p, yf));
      if (!x || !y || *x <= 0 || *y <= 0) continue;
      const std::string series = p.label + " " + kind;
      if (!xy.series.count(series)) xy.order.push_back(series);
      xy.series[series].emplace_back(*x, *y);
      placed = true;
    }
    if (!placed) continue;
    // A roof per dtype and thread count: the peak and the bandwidth both scale with the threads.
    std::string dtype = plain_value(lookup(p, "run.dtype"));
    const auto th = p.extra.find("threads");
    if (th != p.extra.end() && th->is_object() && th->contains("intra_op")) {
      dtype += ", " + plain_value((*th)["intra_op"]) + " threads";
    }
    if (const auto peak = as_number(metric_of(p, "matmul_peak_flops_per_s"))) {
      peaks[dtype].push_back(*peak);
    }
    // The read bandwidth at the point's own threads where generation measured it (decoding reads;
    // one core draws less than all of them), else the calibration's all-thread triad.
    auto bandwidth = own_read_bytes_per_s(p);
    if (!bandwidth) bandwidth = calibration_bytes_per_s(p, "triad_gb_per_s");
    if (bandwidth) bandwidths[dtype].push_back(*bandwidth);
  }
  for (auto& [name, pts] : xy.series) std::sort(pts.begin(), pts.end());
  return out;
}

void add_roofline_plot(const ResultSet& r, const fs::path& dir, const std::string& gnuplot,
                       ojson& plots, std::ostream& log, std::vector<std::string>& written,
                       std::vector<std::string>& warnings) {
  RooflinePoints points = roofline_points(r);
  const XY& xy = points.xy;
  if (xy.order.empty()) return;
  fs::create_directories(dir);
  const PlotSpec s{.x = "arithmetic intensity (FLOPs per byte of memory traffic)",
                   .y = "achieved FLOP/s",
                   .series = "label",
                   .title = "roofline: achieved FLOP/s against arithmetic intensity",
                   .name = "roofline",
                   .log = true};
  std::vector<double> xs, ys;
  std::string dat = dat_text(s, xy, {}, xs, ys);
  std::ostringstream roofs, gp;
  roofs << std::setprecision(6);
  ojson roof_entries = ojson::array();
  for (const auto& [dtype, pk] : points.peaks) {
    if (!points.bandwidths.count(dtype)) continue;
    const double peak = stats::summarize(pk).median,
                 bw = stats::summarize(points.bandwidths[dtype]).median;
    roofs << ", \\\n     (x < " << peak / bw << " ? " << bw << " * x : " << peak
          << ") with lines dashtype 2 title "
          << gp_quote("roof " + dtype + ": " + format_sig3(peak / 1e9) + " GFLOP/s, " +
                      format_sig3(bw / 1e9) + " GB/s");
    roof_entries.push_back({{"dtype", dtype}, {"peak_flops_per_s", peak}, {"bytes_per_s", bw}});
    dat += "# roof " + dtype + ": peak_flops_per_s " + std::to_string(peak) + " bytes_per_s " +
           std::to_string(bw) + "\n";
  }
  const double xlo = *std::min_element(xs.begin(), xs.end()) / 3,
               xhi = *std::max_element(xs.begin(), xs.end()) * 3;
  gp << gp_header(s, "1300,650")
     << "set key outside right top\nset grid\nset logscale xy\nset samples 400\n"
     << std::setprecision(6) << "set xrange [" << xlo << ":" << xhi << "]\nplot ";
  for (size_t i = 0; i < xy.order.size(); ++i)
    gp << (i ? ", \\\n     " : "") << "\"roofline.dat\" index " << i
       << " using 1:2 with points pointtype " << (xy.order[i].ends_with("generate") ? 9 : 7)
       << " title " << gp_quote(xy.order[i]);
  gp << roofs.str() << "\n";
  write_file(dir / "roofline.dat", dat, log, written);
  write_file(dir / "roofline.gp", gp.str(), log, written);
  ojson entry = {{"name", s.name},          {"x", s.x},           {"y", s.y},
                 {"series_field", "label"}, {"title", s.title},   {"log_x", true},
                 {"log_y", true},           {"series", xy.order}, {"roofs", roof_entries},
                 {"png", nullptr}};
  if (!gnuplot.empty()) {
    if (const std::string png = render_png(gnuplot, dir, s.name, log, warnings); !png.empty()) {
      written.push_back(png);
      entry["png"] = png;
    }
  }
  plots.push_back(entry);
}

}  // namespace

ojson make_plots(const ResultSet& r, const std::vector<std::string>& result_dirs,
                 const fs::path& out_dir, std::ostream& log, std::vector<std::string>& written,
                 std::vector<std::string>& warnings) {
  ojson plots = ojson::array();
  auto it = r.report_section.find("plots");
  const bool specs = it != r.report_section.end();
  if (specs && !it->is_array())
    throw std::invalid_argument("report: report.plots must be an array");
  const XY context = loss_by_position_xy(r, "context"), patch = loss_by_position_xy(r, "patch");
  const fs::path dir = out_dir / "plots";
  const std::string gnuplot = find_gnuplot();
  if (!specs && context.order.empty()) {
    add_curve_plots(r, result_dirs, dir, gnuplot, plots, log, written, warnings);
    add_roofline_plot(r, dir, gnuplot, plots, log, written, warnings);
    return plots;
  }
  fs::create_directories(dir);
  std::set<std::string> used;
  for (const auto& spec : specs ? *it : ojson::array()) {
    const PlotSpec s = read_spec(spec, used);
    HLines lines;
    const ResultSet selected = select_points(r, s, lines);
    const XY xy = collect_xy(selected, s.x, s.y, s.series, !s.mean);
    if (xy.skipped)
      warnings.push_back("plot " + s.name + ": " + std::to_string(xy.skipped) +
                         " ok point(s) lack numeric " + s.x + " or " + s.y);
    plots.push_back(write_plot(s, xy, dir, gnuplot, plots.empty(), log, written, warnings, lines));
  }
  // Loss by position (Yu et al. 2023, section 7): drawn whenever the points recorded it.
  if (!context.order.empty()) {
    const PlotSpec s{.x = "position in window + 1",
                     .y = "bits per byte",
                     .series = "name",
                     .title = "held-out loss by position in the context",
                     .name = "loss_by_context_position",
                     .log = true};
    plots.push_back(write_plot(s, context, dir, gnuplot, plots.empty(), log, written, warnings));
  }
  if (!patch.order.empty()) {
    const PlotSpec s{.x = "position in patch",
                     .y = "bits per byte",
                     .series = "name",
                     .title = "held-out loss by position in the patch",
                     .name = "loss_by_patch_position",
                     .log = false};
    plots.push_back(write_plot(s, patch, dir, gnuplot, plots.empty(), log, written, warnings));
  }
  add_curve_plots(r, result_dirs, dir, gnuplot, plots, log, written, warnings);
  add_roofline_plot(r, dir, gnuplot, plots, log, written, warnings);
  return plots;
}

}  // namespace megabench::report::detail
