#include "harness/report/report.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

namespace megabench::report {

namespace fs = std::filesystem;
// ordered_json keeps the file's key order, so axes and metrics appear as the runner wrote them.
using ojson = nlohmann::ordered_json;

namespace {

// ---- reading -----------------------------------------------------------------------------------

std::string str_or(const ojson& j, const char* key, const std::string& fallback = "") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return it->is_string() ? it->get<std::string>() : it->dump();
}

Point to_point(const ojson& rec) {
  Point p;
  p.key = str_or(rec, "key");
  p.name = str_or(rec, "name");
  p.model = str_or(rec, "model");
  p.label = str_or(rec, "label", p.name.substr(0, p.name.find('/')));
  p.status = str_or(rec, "status", "ok");
  p.error = str_or(rec, "error");
  if (auto it = rec.find("axes"); it != rec.end() && it->is_object()) p.axes = *it;
  if (auto it = rec.find("config"); it != rec.end() && it->is_object()) p.config = *it;
  if (auto it = rec.find("metrics"); it != rec.end() && it->is_object()) p.metrics = *it;
  if (auto it = rec.find("elapsed_s"); it != rec.end() && it->is_number()) p.elapsed_s = it->get<double>();
  return p;
}

std::vector<std::string> results_files(const std::string& dir) {
  std::vector<std::string> files;
  if (!fs::is_directory(dir)) throw std::runtime_error("report: result folder '" + dir + "' does not exist");
  if (fs::exists(fs::path(dir) / "results.jsonl")) files.push_back((fs::path(dir) / "results.jsonl").string());
  std::vector<std::string> shards;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (e.is_regular_file() && n.rfind("results.shard-", 0) == 0 && n.size() > 6 &&
        n.compare(n.size() - 6, 6, ".jsonl") == 0)
      shards.push_back(e.path().string());
  }
  std::sort(shards.begin(), shards.end());
  files.insert(files.end(), shards.begin(), shards.end());
  if (files.empty())
    throw std::runtime_error("report: no results.jsonl or results.shard-*.jsonl in '" + dir + "'");
  return files;
}

// ---- lookup and formatting ---------------------------------------------------------------------

std::optional<double> as_number(const ojson& v) {
  if (v.is_number()) return v.get<double>();
  return std::nullopt;
}

bool values_equal(const ojson& a, const ojson& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  return a == b;
}

std::string printf_str(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// Times are read by people in ms or s: 3 significant digits, never an SI suffix.
bool is_time_metric(const std::string& m) {
  auto ends = [&](const std::string& s) { return m.size() >= s.size() && m.compare(m.size() - s.size(), s.size(), s) == 0; };
  if (ends("_per_s")) return false;
  return ends("_ms") || ends("_s") || m.find("_ms_") != std::string::npos || m == "elapsed_s";
}

std::string sig3(double v) {
  const double a = std::fabs(v);
  if (a == 0) return "0";
  if (a >= 100) return printf_str("%.0f", v);
  if (a >= 10) return printf_str("%.1f", v);
  if (a >= 1) return printf_str("%.2f", v);
  return printf_str("%.3g", v);
}

std::string si(double v) {
  static const char* kSuffix[] = {"", "K", "M", "G", "T", "P", "E"};
  const double a = std::fabs(v);
  int k = std::min(6, static_cast<int>(std::floor(std::log10(a) / 3)));
  if (std::fabs(v / std::pow(1000.0, k)) >= 999.95 && k < 6) ++k;  // 999.96K prints as 1.0M
  return printf_str("%.1f", v / std::pow(1000.0, k)) + kSuffix[k];
}

// Markdown cell text: '|' would end the cell, a newline the row.
std::string md_cell(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n' || c == '\r') out += ' ';
    else out += c;
  }
  return out;
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += (c == '"') ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// Full precision: nlohmann prints the shortest text that reads back to the same double.
std::string csv_value(const ojson& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string plain_value(const ojson& v) {  // axes and config values in markdown
  if (v.is_null()) return "–";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return printf_str("%g", v.get<double>());
  return v.dump();
}

// ---- the table ---------------------------------------------------------------------------------

struct Table {
  std::vector<std::string> axes, metrics;
  bool any_failed = false;
};

Table table_layout(const Results& r, const Options& opt) {
  Table t;
  std::set<std::string> seen_axes, seen_metrics;
  for (const auto& p : r.points) {
    for (auto it = p.axes.begin(); it != p.axes.end(); ++it)
      if (seen_axes.insert(it.key()).second) t.axes.push_back(it.key());
    for (auto it = p.metrics.begin(); it != p.metrics.end(); ++it)
      if (seen_metrics.insert(it.key()).second) t.metrics.push_back(it.key());
    t.any_failed |= !p.ok();
  }
  if (!opt.columns.empty()) {
    t.metrics = opt.columns;
  } else if (auto it = r.report_section.find("columns"); it != r.report_section.end()) {
    if (!it->is_array()) throw std::invalid_argument("report: report.columns must be an array of metric names");
    t.metrics.clear();
    for (const auto& c : *it) {
      if (!c.is_string()) throw std::invalid_argument("report: report.columns must hold strings, got " + c.dump());
      t.metrics.push_back(c.get<std::string>());
    }
  }
  return t;
}

std::string render_markdown(const Results& r, const Options& opt) {
  const Table t = table_layout(r, opt);
  std::vector<std::string> header = {"name", "model"};
  header.insert(header.end(), t.axes.begin(), t.axes.end());
  header.insert(header.end(), t.metrics.begin(), t.metrics.end());
  header.push_back("status");
  if (t.any_failed) header.push_back("error");

  std::ostringstream os;
  os << "|";
  for (const auto& h : header) os << " " << md_cell(h) << " |";
  os << "\n|";
  // Numbers right-aligned; name, model, axes, status and error left.
  const size_t first_metric = 2 + t.axes.size(), end_metric = first_metric + t.metrics.size();
  for (size_t i = 0; i < header.size(); ++i) os << (i >= first_metric && i < end_metric ? " ---: |" : " --- |");
  os << "\n";
  for (const auto& p : r.points) {
    os << "| " << md_cell(p.name) << " | " << md_cell(p.model) << " |";
    for (const auto& a : t.axes) os << " " << md_cell(plain_value(p.axes.contains(a) ? p.axes[a] : ojson())) << " |";
    for (const auto& m : t.metrics)
      os << " " << md_cell(format_metric(m, p.metrics.contains(m) ? p.metrics[m] : ojson())) << " |";
    os << " " << md_cell(p.status) << " |";
    if (t.any_failed) os << " " << md_cell(p.error) << " |";
    os << "\n";
  }
  if (r.points.empty()) os << "\n(no points)\n";
  return os.str();
}

std::string render_csv(const Results& r, const Options& opt) {
  const Table t = table_layout(r, opt);
  std::vector<std::string> header = {"name", "model"};
  header.insert(header.end(), t.axes.begin(), t.axes.end());
  header.insert(header.end(), t.metrics.begin(), t.metrics.end());
  for (const char* h : {"status", "error", "elapsed_s", "key"}) header.push_back(h);
  std::ostringstream os;
  for (size_t i = 0; i < header.size(); ++i) os << (i ? "," : "") << csv_cell(header[i]);
  os << "\n";
  for (const auto& p : r.points) {
    std::vector<std::string> row = {p.name, p.model};
    for (const auto& a : t.axes) row.push_back(csv_value(p.axes.contains(a) ? p.axes[a] : ojson()));
    for (const auto& m : t.metrics) row.push_back(csv_value(p.metrics.contains(m) ? p.metrics[m] : ojson()));
    row.push_back(p.status);
    row.push_back(p.error);
    row.push_back(p.elapsed_s ? ojson(*p.elapsed_s).dump() : "");
    row.push_back(p.key);
    for (size_t i = 0; i < row.size(); ++i) os << (i ? "," : "") << csv_cell(row[i]);
    os << "\n";
  }
  return os.str();
}

// ---- fits --------------------------------------------------------------------------------------

std::string spec_string(const ojson& spec, const char* key, const char* what, bool required) {
  auto it = spec.find(key);
  if (it == spec.end() || it->is_null()) {
    if (required) throw std::invalid_argument(std::string("report: ") + what + " needs a \"" + key + "\" field, got " + spec.dump());
    return "";
  }
  if (!it->is_string()) throw std::invalid_argument(std::string("report: ") + what + "." + key + " must be a string, got " + it->dump());
  return it->get<std::string>();
}

// The series of a point: the value of the spec's "series" field (or the y name when none). Where
// the points of one series differ in another swept axis besides x, that axis joins the label
// ("megabyte patch=4"), so that such points are never drawn as one line.
// Series by "model" are by entry label, so two entries of one model are two lines.
std::string series_base(const Point& p, const std::string& series_field, const std::string& fallback) {
  if (series_field == "model") return p.label.empty() ? p.model : p.label;
  return series_field.empty() ? fallback : plain_value(lookup(p, series_field));
}

struct XY {
  std::map<std::string, std::vector<std::pair<double, double>>> series;  // sorted by series name
  std::vector<std::string> order;                                          // first appearance
  int skipped = 0;  // ok points without a numeric x or y
};

XY collect_xy(const Results& r, const std::string& x, const std::string& y, const std::string& series) {
  XY out;
  // Axes (other than x and the series field) that take several values within one series.
  std::map<std::string, std::map<std::string, std::set<std::string>>> values;  // base -> axis -> values
  for (const auto& p : r.points) {
    if (!p.ok()) continue;
    for (const auto& [axis, value] : p.axes.items()) {
      if (axis != x && axis != series) values[series_base(p, series, y)][axis].insert(plain_value(value));
    }
  }
  for (const auto& p : r.points) {
    if (!p.ok()) continue;
    auto xv = as_number(lookup(p, x));
    auto yv = as_number(lookup(p, y));
    if (!xv || !yv) { ++out.skipped; continue; }
    const std::string base = series_base(p, series, y);
    std::string s = base;
    for (const auto& [axis, seen] : values[base]) {
      if (seen.size() > 1 && p.axes.contains(axis)) s += " " + axis + "=" + plain_value(p.axes[axis]);
    }
    if (!out.series.count(s)) out.order.push_back(s);
    out.series[s].emplace_back(*xv, *yv);
  }
  for (auto& [name, pts] : out.series) std::sort(pts.begin(), pts.end());
  return out;
}

ojson run_fits(const Results& r) {
  ojson fits = ojson::array();
  auto it = r.report_section.find("fits");
  if (it == r.report_section.end()) return fits;
  if (!it->is_array()) throw std::invalid_argument("report: report.fits must be an array");
  for (const auto& spec : *it) {
    const std::string x = spec_string(spec, "x", "report.fits[]", true);
    const std::string y = spec_string(spec, "y", "report.fits[]", true);
    const std::string series = spec_string(spec, "series", "report.fits[]", false);
    const XY xy = collect_xy(r, x, y, series);
    for (const auto& s : xy.order) {
      const auto& pts = xy.series.at(s);
      ojson f = {{"x", x}, {"y", y}, {"series_field", series}, {"series", s}, {"n", pts.size()}};
      std::vector<double> xs, ys;
      for (auto [a, b] : pts) { xs.push_back(a); ys.push_back(b); }
      f["x_min"] = xs.front();
      f["x_max"] = xs.back();
      try {
        const Fit fit = fit_loglog(xs, ys);
        f["slope"] = fit.slope;
        f["intercept"] = fit.intercept;
        f["r2"] = fit.r2;
        f["error"] = nullptr;
      } catch (const std::invalid_argument& e) {
        f["slope"] = f["intercept"] = f["r2"] = nullptr;
        f["error"] = e.what();
      }
      fits.push_back(f);
    }
    if (xy.order.empty())
      fits.push_back({{"x", x}, {"y", y}, {"series_field", series}, {"series", nullptr}, {"n", 0},
                      {"slope", nullptr}, {"intercept", nullptr}, {"r2", nullptr},
                      {"error", "no ok point has numeric values for both " + x + " and " + y}});
  }
  return fits;
}

std::string render_fits_md(const ojson& fits) {
  std::ostringstream os;
  os << "# Scaling fits\n\nLeast-squares fit of log(y) = a + b·log(x) per series (Eigen QR); "
        "b is the scaling exponent, R² is measured in log space.\n\n";
  if (fits.empty()) return os.str() + "No fits requested (the experiment's report.fits is empty or absent).\n";
  os << "| y | x | series | exponent b | intercept a | R² | n | x range | note |\n"
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- |\n";
  for (const auto& f : fits) {
    auto num = [&](const char* k, const char* fmt) {
      return f[k].is_number() ? printf_str(fmt, f[k].get<double>()) : std::string("–");
    };
    std::string range = f.contains("x_min") ? plain_value(f["x_min"]) + " – " + plain_value(f["x_max"]) : "–";
    os << "| " << md_cell(f["y"].get<std::string>()) << " | " << md_cell(f["x"].get<std::string>()) << " | "
       << md_cell(plain_value(f["series"])) << " | " << num("slope", "%.3f") << " | " << num("intercept", "%.3f")
       << " | " << num("r2", "%.4f") << " | " << f["n"].dump() << " | " << md_cell(range) << " | "
       << md_cell(f["error"].is_string() ? f["error"].get<std::string>() : "") << " |\n";
  }
  return os.str();
}

// ---- paper -------------------------------------------------------------------------------------

std::string render_paper_md(const std::vector<PaperRow>& rows) {
  std::ostringstream os;
  os << "# Paper vs ours\n\n";
  if (rows.empty()) return os.str() + "No paper numbers given (the experiment's report.paper is empty or absent).\n";
  os << "| claim | metric | point | paper | ours | ours/paper | source | note |\n"
        "| --- | --- | --- | ---: | ---: | ---: | --- | --- |\n";
  for (const auto& r : rows) {
    os << "| " << md_cell(r.label) << " | " << md_cell(r.metric) << " | " << md_cell(r.point.empty() ? "–" : r.point)
       << " | " << md_cell(format_metric(r.metric, r.paper)) << " | "
       << (r.ours ? md_cell(format_metric(r.metric, *r.ours)) : "–") << " | "
       << (r.ratio ? printf_str("%.3f", *r.ratio) : "–") << " | " << md_cell(r.source) << " | " << md_cell(r.note)
       << " |\n";
  }
  return os.str();
}

// ---- plots -------------------------------------------------------------------------------------

std::string slug(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
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

// "auto": log when every value is positive and they span >= 10x; true/false force it (true falls
// back to linear, with a warning, when a value is not positive).
bool use_log(const ojson& spec_log, const std::vector<double>& v, const std::string& axis, const std::string& plot,
             std::vector<std::string>& warnings) {
  if (v.empty()) return false;
  const double lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
  if (spec_log.is_boolean() && !spec_log.get<bool>()) return false;
  if (lo <= 0) {
    if (spec_log.is_boolean()) warnings.push_back("plot " + plot + ": " + axis + " has values <= 0, drawn on a linear axis");
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

void write_file(const fs::path& path, const std::string& text, std::ostream& log, std::vector<std::string>& written) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("report: cannot write '" + path.string() + "'");
  f << text;
  f.close();
  if (!f) throw std::runtime_error("report: error writing '" + path.string() + "'");
  log << "report: wrote " << path.string() << "\n";
  written.push_back(path.string());
}

ojson make_plots(const Results& r, const fs::path& out_dir, std::ostream& log, std::vector<std::string>& written,
                 std::vector<std::string>& warnings) {
  ojson plots = ojson::array();
  auto it = r.report_section.find("plots");
  if (it == r.report_section.end()) return plots;
  if (!it->is_array()) throw std::invalid_argument("report: report.plots must be an array");
  const fs::path dir = out_dir / "plots";
  fs::create_directories(dir);
  const std::string gnuplot = find_gnuplot();
  std::set<std::string> used;
  bool told_missing = false;
  for (const auto& spec : *it) {
    const std::string x = spec_string(spec, "x", "report.plots[]", true);
    const std::string y = spec_string(spec, "y", "report.plots[]", true);
    const std::string series = spec_string(spec, "series", "report.plots[]", false);
    std::string title = spec_string(spec, "title", "report.plots[]", false);
    if (title.empty()) title = y + " vs " + x;
    std::string name = slug(spec.contains("name") ? spec_string(spec, "name", "report.plots[]", false) : y + "_vs_" + x);
    for (int k = 2; used.count(name); ++k) name = slug(y + "_vs_" + x) + "_" + std::to_string(k);
    used.insert(name);
    const ojson log_spec = spec.contains("log") ? spec["log"] : ojson("auto");
    if (!(log_spec.is_boolean() || log_spec == "auto"))
      throw std::invalid_argument("report: report.plots[].log must be \"auto\", true or false, got " + log_spec.dump());

    const XY xy = collect_xy(r, x, y, series);
    std::vector<double> xs, ys;
    std::ostringstream dat;
    dat << "# " << title << "\n# columns: " << x << " " << y << "\n";
    for (const auto& s : xy.order) {
      dat << "# series: " << s << "\n";
      for (auto [a, b] : xy.series.at(s)) {
        dat << std::setprecision(17) << a << " " << b << "\n";
        xs.push_back(a);
        ys.push_back(b);
      }
      dat << "\n\n";  // two blank lines: the next gnuplot "index"
    }
    const bool logx = use_log(log_spec, xs, "x", name, warnings);
    const bool logy = use_log(log_spec, ys, "y", name, warnings);

    std::ostringstream gp;
    gp << "# Renders " << name << ".png from " << name << ".dat; run from this folder: gnuplot " << name << ".gp\n"
       << "if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) {\n"
       << "  set terminal pngcairo size 900,600 noenhanced font \"sans,10\"\n"
       << "} else {\n  set terminal png size 900,600 noenhanced\n}\n"
       << "set output " << gp_quote(name + ".png") << "\n"
       << "set title " << gp_quote(title) << "\n"
       << "set xlabel " << gp_quote(x) << "\nset ylabel " << gp_quote(y) << "\n"
       << "set key left top\nset grid\n"
       << (logx ? "set logscale x\n" : "") << (logy ? "set logscale y\n" : "");
    if (xy.order.empty()) {
      gp << "set label 1 \"no data\" at graph 0.5,0.5 center\nplot [0:1] [0:1] NaN notitle\n";
    } else {
      gp << "plot ";
      for (size_t i = 0; i < xy.order.size(); ++i)
        gp << (i ? ", \\\n     " : "") << gp_quote(name + ".dat") << " index " << i
           << " using 1:2 with linespoints pointtype 7 title " << gp_quote(xy.order[i]);
      gp << "\n";
    }
    write_file(dir / (name + ".dat"), dat.str(), log, written);
    write_file(dir / (name + ".gp"), gp.str(), log, written);

    ojson entry = {{"name", name}, {"x", x}, {"y", y}, {"series_field", series}, {"title", title},
                   {"log_x", logx}, {"log_y", logy}, {"series", xy.order}, {"png", nullptr}};
    if (xy.skipped) warnings.push_back("plot " + name + ": " + std::to_string(xy.skipped) + " ok point(s) lack numeric " + x + " or " + y);
    const fs::path png = dir / (name + ".png");
    if (gnuplot.empty()) {
      if (!told_missing)
        log << "report: gnuplot not found (install the Debian package gnuplot-nox, or set MEGABENCH_GNUPLOT); "
               "wrote the .dat/.gp files only, render later with: cd " << dir.string() << " && gnuplot <name>.gp\n";
      told_missing = true;
    } else {
      fs::remove(png);
      const std::string cmd = "cd " + sh_quote(dir.string()) + " && " + sh_quote(gnuplot) + " " + sh_quote(name + ".gp") +
                              " > " + sh_quote(name + ".log") + " 2>&1";
      const int rc = std::system(cmd.c_str());
      if (rc == 0 && fs::exists(png) && fs::file_size(png) > 0) {
        fs::remove(dir / (name + ".log"));
        log << "report: wrote " << png.string() << "\n";
        written.push_back(png.string());
        entry["png"] = png.string();
      } else {
        const std::string msg = "plot " + name + ": gnuplot failed (exit " + std::to_string(rc) + "), see " +
                                (dir / (name + ".log")).string();
        log << "report: " << msg << "\n";
        warnings.push_back(msg);
      }
    }
    plots.push_back(entry);
  }
  return plots;
}

}  // namespace

// ---- public ------------------------------------------------------------------------------------

Fit fit_loglog(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size())
    throw std::invalid_argument("fit_loglog: x and y differ in length (" + std::to_string(x.size()) + " vs " +
                                std::to_string(y.size()) + ")");
  if (x.size() < 2) throw std::invalid_argument("fit_loglog: needs at least 2 points, got " + std::to_string(x.size()));
  const Eigen::Index n = static_cast<Eigen::Index>(x.size());
  Eigen::MatrixXd A(n, 2);
  Eigen::VectorXd b(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    for (auto [v, what] : {std::pair{x[i], "x"}, std::pair{y[i], "y"}})
      if (!std::isfinite(v) || v <= 0)
        throw std::invalid_argument(std::string("fit_loglog: ") + what + "[" + std::to_string(i) +
                                    "] must be finite and > 0 for a log-log fit, got " + printf_str("%g", v));
    A(i, 0) = 1.0;
    A(i, 1) = std::log(x[i]);
    b(i) = std::log(y[i]);
  }
  if ((A.col(1).array() == A(0, 1)).all())
    throw std::invalid_argument("fit_loglog: all x values are equal; the slope is undefined");
  const Eigen::Vector2d coef = A.colPivHouseholderQr().solve(b);
  const Eigen::VectorXd resid = b - A * coef;
  const double ss_res = resid.squaredNorm();
  const double ss_tot = (b.array() - b.mean()).square().sum();
  // All y equal: the flat fit is exact, so R^2 = 1 (the 0/0 form has no other sensible value).
  const double r2 = ss_tot > 0 ? 1.0 - ss_res / ss_tot : 1.0;
  return Fit{coef(1), coef(0), r2, static_cast<int>(n)};
}

Results load(const std::vector<std::string>& result_dirs) {
  if (result_dirs.empty()) throw std::invalid_argument("report: no result folders given");
  Results r;
  std::map<std::string, size_t> index;  // key -> position in r.points
  std::string newest_date;
  bool have_context = false;
  for (const auto& dir : result_dirs) {
    for (const auto& file : results_files(dir)) {
      std::ifstream in(file, std::ios::binary);
      if (!in) throw std::runtime_error("report: cannot read '" + file + "'");
      r.files.push_back(file);
      std::vector<std::string> lines;
      for (std::string line; std::getline(in, line);) lines.push_back(line);
      for (size_t i = 0; i < lines.size(); ++i) {
        const std::string& line = lines[i];
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        ojson rec = ojson::parse(line, nullptr, /*allow_exceptions=*/false);
        const std::string where = file + ":" + std::to_string(i + 1);
        if (rec.is_discarded() || !rec.is_object()) {
          // The last line may be cut short by a run that is still writing or was killed.
          if (i + 1 != lines.size()) r.warnings.push_back(where + ": not a JSON object, line skipped");
          continue;
        }
        const std::string type = str_or(rec, "type");
        if (type == "context") {
          // Newest by ISO-8601 date (which sorts as text); on a tie, the later record.
          const std::string date = str_or(rec, "date");
          if (!have_context || date >= newest_date) {
            r.context = rec;
            newest_date = date;
            have_context = true;
          }
        } else if (type == "point") {
          Point p = to_point(rec);
          if (p.key.empty()) {
            if (p.name.empty()) {
              r.warnings.push_back(where + ": point without \"key\" or \"name\", skipped");
              continue;
            }
            p.key = "name:" + p.name;
          }
          if (auto it = index.find(p.key); it != index.end()) r.points[it->second] = std::move(p);
          else {
            index[p.key] = r.points.size();
            r.points.push_back(std::move(p));
          }
        }  // other record types: ignored, as the contract asks of readers
      }
    }
  }
  if (have_context) {
    const auto& exp = r.context.contains("experiment") ? r.context["experiment"] : ojson();
    if (exp.is_object() && exp.contains("report") && !exp["report"].is_null()) {
      if (!exp["report"].is_object()) throw std::invalid_argument("report: experiment.report must be an object");
      r.report_section = exp["report"];
    }
  }
  return r;
}

ojson lookup(const Point& p, const std::string& field) {
  if (field == "name") return p.name;
  if (field == "model") return p.model;
  if (field == "label") return p.label;
  if (field == "status") return p.status;
  if (p.axes.contains(field)) return p.axes[field];
  if (p.metrics.contains(field)) return p.metrics[field];
  if (p.config.contains(field)) return p.config[field];
  std::string ptr = field;
  if (ptr.empty()) return nullptr;
  if (ptr[0] != '/') {
    std::replace(ptr.begin(), ptr.end(), '.', '/');
    ptr = "/" + ptr;
  }
  try {
    const auto jp = ojson::json_pointer(ptr);
    if (p.config.contains(jp)) return p.config[jp];
  } catch (const nlohmann::json::exception&) {
  }
  return nullptr;
}

std::string format_metric(const std::string& metric, const ojson& value) {
  if (value.is_null()) return "–";
  if (value.is_string()) return value.get<std::string>();
  if (!value.is_number()) return value.dump();
  const double v = value.get<double>();
  if (!std::isfinite(v)) return printf_str("%g", v);
  if (is_time_metric(metric)) return sig3(v);
  if (std::fabs(v) >= 1000) return si(v);
  if (v == std::floor(v)) return printf_str("%.0f", v);
  return sig3(v);
}

std::vector<PaperRow> compare_paper(const Results& r) {
  std::vector<PaperRow> rows;
  auto it = r.report_section.find("paper");
  if (it == r.report_section.end()) return rows;
  if (!it->is_array()) throw std::invalid_argument("report: report.paper must be an array");
  for (const auto& e : *it) {
    PaperRow base;
    base.metric = spec_string(e, "metric", "report.paper[]", true);
    base.label = spec_string(e, "label", "report.paper[]", false);
    if (base.label.empty()) base.label = base.metric;
    base.source = spec_string(e, "source", "report.paper[]", false);
    if (!e.contains("value") || !e["value"].is_number())
      throw std::invalid_argument("report: report.paper[] \"" + base.label + "\" needs a numeric \"value\"");
    base.paper = e["value"].get<double>();
    const ojson where = e.contains("where") ? e["where"] : ojson::object();
    if (!where.is_object())
      throw std::invalid_argument("report: report.paper[] \"" + base.label + "\": where must be an object");
    bool any = false;
    for (const auto& p : r.points) {
      bool match = true;
      for (auto w = where.begin(); w != where.end() && match; ++w) {
        // "model" names an entry by its label or its registry name.
        match = values_equal(lookup(p, w.key()), w.value()) ||
                (w.key() == "model" && values_equal(ojson(p.label), w.value()));
      }
      if (!match) continue;
      any = true;
      PaperRow row = base;
      row.point = p.name;
      if (!p.ok()) {
        row.note = "point " + p.status + (p.error.empty() ? "" : ": " + p.error);
      } else if (auto v = as_number(p.metrics.contains(base.metric) ? p.metrics[base.metric] : ojson())) {
        row.ours = *v;
        if (base.paper != 0) row.ratio = *v / base.paper;
        else row.note = "paper value is 0, no ratio";
      } else {
        row.note = "metric missing";
      }
      rows.push_back(row);
    }
    if (!any) {
      base.note = "no matching point";
      rows.push_back(base);
    }
  }
  return rows;
}

std::string markdown_table(const std::vector<std::string>& result_dirs, const Options& options) {
  return render_markdown(load(result_dirs), options);
}

void write(const std::vector<std::string>& result_dirs, const std::string& out_dir, std::ostream& log,
           const Options& options) {
  Results r = load(result_dirs);
  const fs::path out(out_dir);
  fs::create_directories(out);
  std::vector<std::string> written;
  std::vector<std::string> warnings = r.warnings;
  for (const auto& f : r.files) log << "report: read " << f << "\n";

  const auto& ctx = r.context;
  const std::string exp_name =
      ctx.is_object() && ctx.contains("experiment") && ctx["experiment"].is_object() ? str_or(ctx["experiment"], "name") : "";
  std::ostringstream md;
  md << "# " << (exp_name.empty() ? std::string("Results") : exp_name) << "\n\n";
  if (ctx.is_object())
    md << "Device: " << str_or(ctx, "device", "?") << " · date: " << str_or(ctx, "date", "?")
       << " · LibTorch " << str_or(ctx, "libtorch_version", "?") << " · commit " << str_or(ctx, "git_commit", "?")
       << "\n\n";
  md << render_markdown(r, options);
  write_file(out / "table.md", md.str(), log, written);
  write_file(out / "table.csv", render_csv(r, options), log, written);

  const ojson fits = run_fits(r);
  write_file(out / "fits.md", render_fits_md(fits), log, written);
  write_file(out / "fits.json", fits.dump(2) + "\n", log, written);

  const auto paper_rows = compare_paper(r);
  write_file(out / "paper.md", render_paper_md(paper_rows), log, written);

  ojson plots = ojson::array();
  if (options.plots) plots = make_plots(r, out, log, written, warnings);

  const Table t = table_layout(r, options);
  ojson summary = ojson::object();
  summary["experiment"] = exp_name;
  summary["result_dirs"] = result_dirs;
  summary["files_read"] = r.files;
  ojson context = ojson::object();
  if (ctx.is_object())
    for (const char* k : {"date", "host", "cpu", "threads", "device", "libtorch_version", "cuda_version", "git_commit", "calibration"})
      if (ctx.contains(k)) context[k] = ctx[k];
  summary["context"] = context;
  size_t n_ok = 0;
  for (const auto& p : r.points) n_ok += p.ok();
  summary["points_total"] = r.points.size();
  summary["points_ok"] = n_ok;
  summary["points_failed"] = r.points.size() - n_ok;
  summary["columns"] = t.metrics;
  ojson pts = ojson::array();
  for (const auto& p : r.points) {
    ojson m = ojson::object();
    for (const auto& c : t.metrics)
      if (p.metrics.contains(c)) m[c] = p.metrics[c];
    pts.push_back({{"key", p.key}, {"name", p.name}, {"model", p.model}, {"axes", p.axes}, {"status", p.status},
                   {"error", p.error.empty() ? ojson() : ojson(p.error)}, {"metrics", m}});
  }
  summary["points"] = pts;
  summary["fits"] = fits;
  ojson paper = ojson::array();
  for (const auto& row : paper_rows)
    paper.push_back({{"label", row.label}, {"metric", row.metric}, {"point", row.point}, {"paper", row.paper},
                     {"ours", row.ours ? ojson(*row.ours) : ojson()}, {"ratio", row.ratio ? ojson(*row.ratio) : ojson()},
                     {"source", row.source}, {"note", row.note}});
  summary["paper"] = paper;
  summary["plots"] = plots;
  summary["warnings"] = warnings;
  written.push_back((out / "summary.json").string());
  summary["files_written"] = written;
  write_file(out / "summary.json", summary.dump(2) + "\n", log, written);
  for (const auto& w : warnings) log << "report: warning: " << w << "\n";
}

}  // namespace megabench::report
