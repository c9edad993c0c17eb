// Tests of harness/report: the log-log fit against closed-form least squares, the tables from a
// hand-written results.jsonl (shards, duplicate keys, a cut-off last line), the paper comparison,
// and the plot files.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "harness/api/format.h"
#include "harness/report/internal.h"
#include "harness/report/report.h"
#include "harness/store/result_set.h"
#include "tests/support.h"

namespace fs = std::filesystem;
namespace rep = megabench::report;
using ojson = nlohmann::ordered_json;

namespace {

// Removes a folder tree. Not fs::remove_all: libtorch.so exports its own
// std::filesystem::remove_all, which wins symbol lookup in this binary and crashes.
void remove_tree(const fs::path& p) {
  if (fs::is_directory(p)) {
    std::vector<fs::path> children;
    for (const auto& e : fs::directory_iterator(p)) children.push_back(e.path());
    for (const auto& c : children) remove_tree(c);
  }
  fs::remove(p);
}

// A fresh folder under the system temp dir, removed at the end of the test.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path =
        fs::temp_directory_path() / ("megabench_report_" + tag + "_" + std::to_string(::getpid()) +
                                     "_" + std::to_string(counter++));
    remove_tree(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    try {
      remove_tree(path);
    } catch (const std::exception&) {  // a leftover temp folder is no reason to fail a test
    }
  }
};

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string l; std::getline(ss, l);) out.push_back(l);
  return out;
}

int count_rows_starting(const std::string& text, const std::string& prefix) {
  int n = 0;
  for (const auto& l : lines_of(text)) n += l.rfind(prefix, 0) == 0;
  return n;
}

ojson point(const std::string& key, const std::string& model, int seq_len, int patch, ojson metrics,
            const std::string& status = "ok", const std::string& error = "") {
  ojson axes = ojson::object();
  axes["seq_len"] = seq_len;
  axes["patch"] = patch;
  ojson p = ojson::object();
  p["type"] = "point";
  p["key"] = key;
  p["name"] = model + "/seq_len=" + std::to_string(seq_len) + "/patch=" + std::to_string(patch);
  p["model"] = model;
  p["axes"] = axes;
  p["config"] = {{"global", {{"dim", 64}}}, {"seq_len", seq_len}};
  p["metrics"] = metrics;
  p["status"] = status;
  p["error"] = error.empty() ? ojson() : ojson(error);
  p["elapsed_s"] = 0.5;
  p["some_future_field"] = "ignored";
  return p;
}

ojson context(const std::string& date, ojson report_section) {
  ojson exp = {{"name", "report_test"}, {"report", report_section}};
  return {{"type", "context"},      {"schema_version", 1}, {"experiment", exp},
          {"date", date},           {"device", "cpu"},     {"libtorch_version", "2.11.0"},
          {"git_commit", "abc123"}, {"shard", nullptr}};
}

// Four distinct points over results.jsonl + one shard: "a" is replaced by the shard's record,
// "b" failed, and results.jsonl ends in a line cut off mid-record.
void write_sample(const fs::path& dir) {
  ojson old_report = {{"columns", {"bpb"}}};
  ojson report = {{"columns", {"params_total", "forward_ms"}},
                  {"plots",
                   {{{"x", "seq_len"},
                     {"y", "flops_forward_per_byte"},
                     {"series", "model"},
                     {"title", "FLOPs per byte"}}}},
                  {"fits", {{{"x", "seq_len"}, {"y", "forward_ms"}, {"series", "model"}}}},
                  {"paper",
                   {{{"label", "MEGABYTE FLOPs/byte"},
                     {"where", {{"model", "megabyte"}, {"seq_len", 1024}}},
                     {"metric", "flops_forward_per_byte"},
                     {"value", 729e6},
                     {"source", "paper_claims.json"}},
                    {{"label", "absent model"},
                     {"where", {{"model", "nosuchmodel"}}},
                     {"metric", "bpb"},
                     {"value", 1.0}}}}};
  auto m = [](double params, double fwd_ms, double flops) {
    return ojson{{"params_total", params},
                 {"forward_ms", fwd_ms},
                 {"flops_forward_per_byte", flops},
                 {"bpb", 1.0234}};
  };
  std::ostringstream main;
  main << context("2024-01-01T00:00:00Z", old_report).dump() << "\n"
       << point("a", "megabyte", 1024, 8, m(729e6, 99.0, 700e6)).dump() << "\n"
       << point("b", "megabyte", 4096, 8, ojson::object(), "failed", "out of memory | at step 3")
              .dump()
       << "\n"
       << point("c", "transformer", 1024, 1, m(320e6, 20.0, 732e6)).dump() << "\n"
       << R"({"type":"point","key":"zz","name":"cut/off","metrics":{"params_t)";  // no newline: cut
                                                                                  // off
  write_text(dir / "results.jsonl", main.str());
  std::ostringstream shard;
  // forward_ms = 0.002 * seq_len^1.5 for megabyte, exactly.
  shard << context("2024-02-01T00:00:00Z", report).dump() << "\n"
        << point("a", "megabyte", 1024, 8, m(730e6, 0.002 * std::pow(1024.0, 1.5), 656.1e6)).dump()
        << "\n"
        << point("d", "megabyte", 16384, 8, m(731e6, 0.002 * std::pow(16384.0, 1.5), 800e6)).dump()
        << "\n";
  write_text(dir / "results.shard-0-of-2.jsonl", shard.str());
}

bool have_gnuplot() {
  return std::system("command -v gnuplot > /dev/null 2>&1") == 0;
}

}  // namespace

TEST_CASE("fit_loglog recovers an exact power law", "[report]") {
  std::vector<double> x = {1, 2, 4, 8, 16, 100, 1000}, y;
  for (double v : x) y.push_back(3.0 * std::pow(v, 1.333));
  const auto f = rep::fit_loglog(x, y);
  CHECK(f.slope == Approx(1.333).margin(1e-12));
  CHECK(f.intercept == Approx(std::log(3.0)).margin(1e-12));
  CHECK(f.r2 == Approx(1.0).margin(1e-12));
  CHECK(f.n == 7);
}

TEST_CASE("fit_loglog on noisy data matches closed-form least squares", "[report]") {
  const std::vector<double> x = {128, 256, 512, 1024, 2048, 4096};
  const std::vector<double> noise = {1.10, 0.93, 1.05, 0.90, 1.08, 0.97};
  std::vector<double> y;
  for (size_t i = 0; i < x.size(); ++i) y.push_back(0.5 * std::pow(x[i], 0.75) * noise[i]);
  // Reference: slope = cov(lx, ly) / var(lx), intercept = mean(ly) - slope mean(lx), R^2 = corr^2.
  double mx = 0, my = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    mx += std::log(x[i]);
    my += std::log(y[i]);
  }
  mx /= x.size();
  my /= y.size();
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double dx = std::log(x[i]) - mx, dy = std::log(y[i]) - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  const auto f = rep::fit_loglog(x, y);
  CHECK(f.slope == Approx(sxy / sxx).epsilon(1e-12));
  CHECK(f.intercept == Approx(my - (sxy / sxx) * mx).epsilon(1e-12));
  CHECK(f.r2 == Approx(sxy * sxy / (sxx * syy)).epsilon(1e-12));
  CHECK(f.r2 < 1.0);
  CHECK(f.r2 > 0.9);
  CHECK(f.slope == Approx(0.75).margin(0.05));
}

TEST_CASE("fit_loglog rejects bad input with a clear error", "[report]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(rep::fit_loglog({1.0}, {2.0}), Contains("at least 2 points"));
  CHECK_THROWS_WITH(rep::fit_loglog({}, {}), Contains("at least 2 points"));
  CHECK_THROWS_WITH(rep::fit_loglog({1, 2, 3}, {1, 2}), Contains("differ in length"));
  CHECK_THROWS_WITH(rep::fit_loglog({1, 0}, {1, 2}), Contains("x[1]"));
  CHECK_THROWS_WITH(rep::fit_loglog({1, 2}, {-1, 2}), Contains("y[0]"));
  CHECK_THROWS_WITH(rep::fit_loglog({1, 2}, {1, std::nan("")}), Contains("y[1]"));
  CHECK_THROWS_WITH(rep::fit_loglog({4, 4, 4}, {1, 2, 3}), Contains("all x values are equal"));
  CHECK_THROWS_AS(rep::fit_loglog({1.0}, {2.0}), std::invalid_argument);
}

TEST_CASE("format_metric: SI suffixes for counts - 3 significant digits for times", "[report]") {
  CHECK(megabench::format_metric("params_total", 729e6) == "729.0M");
  CHECK(megabench::format_metric("flops_forward_per_byte", 1.5e9) == "1.5G");
  CHECK(megabench::format_metric("forward_bytes_per_s", 12345.0) == "12.3K");
  CHECK(megabench::format_metric("params_total", 999999.0) == "1.0M");
  CHECK(megabench::format_metric("forward_ms", 12.3456) == "12.3");
  CHECK(megabench::format_metric("forward_ms", 1234.56) == "1235");
  CHECK(megabench::format_metric("generate_ms_per_byte", 0.0012345) == "0.00123");
  CHECK(megabench::format_metric("elapsed_s", 2.34567) == "2.35");
  CHECK(megabench::format_metric("bpb", 1.0234) == "1.02");
  CHECK(megabench::format_metric("train_steps", 500) == "500");
  CHECK(megabench::format_metric("bpb", ojson()) == "–");
}

TEST_CASE("one number formatter: format_si - format_sig3 - format_value", "[report]") {
  using megabench::format_si;
  CHECK(format_si(729e6, 1) == "729.0M");
  CHECK(format_si(-12345.0, 1) == "-12.3K");
  CHECK(format_si(999.96e3, 1) == "1.0M");  // would print as 1000.0K
  CHECK(format_si(999.94e3, 1) == "999.9K");
  CHECK(format_si(1234567, 3, " ") == "1.235 M");  // the FLOP breakdown's form
  CHECK(format_si(512, 3, " ") == "512.000 ");     // no suffix below 1000
  CHECK(format_si(2.5e21, 1) == "2500.0E");        // E is the last suffix
  CHECK(megabench::format_sig3(1234.56) == "1235");
  CHECK(megabench::format_sig3(0) == "0");
  CHECK(megabench::format_sig3(-0.0012345) == "-0.00123");
  CHECK(megabench::is_time_metric("forward_ms_min"));
  CHECK_FALSE(megabench::is_time_metric("forward_bytes_per_s"));
  CHECK(megabench::format_value(nlohmann::json(0.123456)) == "0.1235");
  CHECK(megabench::format_value(nlohmann::json(42)) == "42");
  CHECK(megabench::format_value(nlohmann::json("sdpa")) == "sdpa");
  CHECK(megabench::format_value(nlohmann::json()) == "");
}

TEST_CASE("load_result_set merges shards - replaces duplicate keys and ignores a cut-off last line",
          "[report]") {
  TempDir tmp("load");
  write_sample(tmp.path);
  const auto r = megabench::load_result_set({tmp.path.string()});
  REQUIRE(r.points.size() == 4);  // a, b, c from results.jsonl; d from the shard; "zz" cut off
  CHECK(r.points[0].key == "a");
  CHECK(r.points[0].metrics["params_total"].get<double>() == 730e6);  // the shard's record won
  CHECK(r.points[1].status == "failed");
  CHECK(r.points[3].key == "d");
  CHECK(r.files.size() == 2);
  CHECK(r.warnings.empty());
  // The newest context record gives the report section.
  CHECK(r.report_section["columns"] == ojson({"params_total", "forward_ms"}));
  CHECK(megabench::lookup(r.points[0], "global.dim") == 64);
  CHECK(megabench::lookup(r.points[0], "seq_len") == 1024);
  CHECK(megabench::lookup(r.points[0], "model") == "megabyte");
  CHECK(megabench::lookup(r.points[0], "nope").is_null());

  // A malformed line that is not the last is skipped with a warning naming file and line.
  write_text(tmp.path / "results.shard-1-of-2.jsonl",
             "garbage\n" + point("e", "megabyte", 2048, 8, {{"bpb", 1.1}}).dump() + "\n");
  const auto r2 = megabench::load_result_set({tmp.path.string()});
  CHECK(r2.points.size() == 5);
  REQUIRE(r2.warnings.size() == 1);
  CHECK(r2.warnings[0].find("results.shard-1-of-2.jsonl:1") != std::string::npos);

  TempDir empty("empty");
  CHECK_THROWS_WITH(megabench::load_result_set({empty.path.string()}),
                    Catch::Matchers::Contains("no results.jsonl"));
  CHECK_THROWS_WITH(megabench::load_result_set({(empty.path / "missing").string()}),
                    Catch::Matchers::Contains("does not exist"));
}

TEST_CASE("markdown and csv tables: rows - columns - failed point", "[report]") {
  TempDir tmp("table");
  write_sample(tmp.path);
  const std::string md = rep::markdown_table({tmp.path.string()});
  const auto md_lines = lines_of(md);
  REQUIRE(md_lines.size() >= 6);
  CHECK(md_lines[0] ==
        "| name | model | seq_len | patch | params_total | forward_ms | status | error |");
  CHECK(md_lines[1] == "| --- | --- | --- | --- | ---: | ---: | --- | --- |");
  CHECK(count_rows_starting(md, "| ") == 1 + 1 + 4);  // header, separator, 4 points
  CHECK(
      md.find("| megabyte/seq_len=1024/patch=8 | megabyte | 1024 | 8 | 730.0M | 65.5 | ok |  |") !=
      std::string::npos);
  CHECK(md.find("729.0M") == std::string::npos);  // replaced by the shard's record
  CHECK(md.find("| failed | out of memory \\| at step 3 |") != std::string::npos);
  CHECK(md.find("cut/off") == std::string::npos);
  CHECK(md.find("bpb") == std::string::npos);  // not among the report's columns

  rep::Options opt;
  opt.columns = {"bpb"};
  const std::string md2 = rep::markdown_table({tmp.path.string()}, opt);
  CHECK(lines_of(md2)[0] == "| name | model | seq_len | patch | bpb | status | error |");
  CHECK(md2.find("| 1.02 |") != std::string::npos);

  std::ostringstream log;
  const TempDir out("table_out");
  rep::write({tmp.path.string()}, out.path.string(), log, rep::Options{{}, /*plots=*/false});
  const std::string csv = read_text(out.path / "table.csv");
  const auto csv_lines = lines_of(csv);
  REQUIRE(csv_lines.size() == 5);
  CHECK(csv_lines[0] ==
        "name,model,seq_len,patch,params_total,forward_ms,status,error,elapsed_s,key");
  // Full precision in the CSV: 0.002 * 1024^1.5 = 65.536 exactly as the double holds it.
  std::ostringstream expect_a;
  expect_a << "megabyte/seq_len=1024/patch=8,megabyte,1024,8,730000000.0,"
           << ojson(0.002 * std::pow(1024.0, 1.5)).dump() << ",ok,,0.5,a";
  CHECK(csv_lines[1] == expect_a.str());
  CHECK(csv_lines[2] ==
        "megabyte/seq_len=4096/patch=8,megabyte,4096,8,,,failed,out of memory | at step 3,0.5,b");
  CHECK(read_text(out.path / "table.md").find("# report_test") == 0);
  CHECK(log.str().find("table.csv") != std::string::npos);
  CHECK_FALSE(fs::exists(out.path / "plots"));

  const auto summary = ojson::parse(read_text(out.path / "summary.json"));
  CHECK(summary["points_total"] == 4);
  CHECK(summary["points_failed"] == 1);
  CHECK(summary["experiment"] == "report_test");
}

TEST_CASE("paper comparison and fits", "[report]") {
  TempDir tmp("paper");
  write_sample(tmp.path);
  const auto rows = rep::compare_paper(megabench::load_result_set({tmp.path.string()}));
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].label == "MEGABYTE FLOPs/byte");
  CHECK(rows[0].point == "megabyte/seq_len=1024/patch=8");
  CHECK(rows[0].paper == 729e6);
  REQUIRE(rows[0].ours);
  CHECK(*rows[0].ours == 656.1e6);
  REQUIRE(rows[0].ratio);
  CHECK(*rows[0].ratio == Approx(0.9).epsilon(1e-12));
  CHECK(rows[1].note == "no matching point");
  CHECK_FALSE(rows[1].ratio);

  std::ostringstream log;
  const TempDir out("paper_out");
  rep::write({tmp.path.string()}, out.path.string(), log, rep::Options{{}, /*plots=*/false});
  const std::string paper_md = read_text(out.path / "paper.md");
  CHECK(paper_md.find("| MEGABYTE FLOPs/byte | flops_forward_per_byte | "
                      "megabyte/seq_len=1024/patch=8 | 729.0M | 656.1M | 0.900 |") !=
        std::string::npos);

  // forward_ms = 0.002 * seq_len^1.5 on the megabyte series; the transformer has one point only.
  const auto fits = ojson::parse(read_text(out.path / "fits.json"));
  REQUIRE(fits.size() == 2);
  CHECK(fits[0]["series"] == "megabyte");
  CHECK(fits[0]["n"] == 2);  // the failed point is left out
  CHECK(fits[0]["slope"].get<double>() == Approx(1.5).margin(1e-12));
  CHECK(fits[0]["r2"].get<double>() == Approx(1.0).margin(1e-12));
  CHECK(fits[1]["series"] == "transformer");
  CHECK(fits[1]["slope"].is_null());
  CHECK(fits[1]["error"].get<std::string>().find("at least 2 points") != std::string::npos);
  CHECK(read_text(out.path / "fits.md").find("| forward_ms | seq_len | megabyte | 1.500 |") !=
        std::string::npos);
}

TEST_CASE("plot data and gnuplot script are written - with or without gnuplot", "[report]") {
  TempDir tmp("plotfiles");
  write_sample(tmp.path);
  const TempDir out("plotfiles_out");
  std::ostringstream log;
  // Without gnuplot: the .dat/.gp are still written, the report does not fail, the log says why.
  ::setenv("MEGABENCH_GNUPLOT", "/nonexistent/gnuplot", 1);
  REQUIRE_NOTHROW(rep::write({tmp.path.string()}, out.path.string(), log));
  ::unsetenv("MEGABENCH_GNUPLOT");
  const fs::path plots = out.path / "plots";
  const std::string name = "flops_forward_per_byte_vs_seq_len";
  REQUIRE(fs::exists(plots / (name + ".gp")));
  REQUIRE(fs::exists(plots / (name + ".dat")));
  CHECK_FALSE(fs::exists(plots / (name + ".png")));
  CHECK(log.str().find("gnuplot not found") != std::string::npos);

  const std::string gp = read_text(plots / (name + ".gp"));
  CHECK(gp.find("set logscale x") != std::string::npos);  // seq_len spans 1024..16384 (16x)
  CHECK(gp.find("set logscale y") == std::string::npos);  // FLOPs span 656M..800M (< 10x)
  CHECK(gp.find("title \"megabyte\"") != std::string::npos);
  CHECK(gp.find("title \"transformer\"") != std::string::npos);
  const std::string dat = read_text(plots / (name + ".dat"));
  CHECK(dat.find("# series: megabyte\n1024 656100000\n16384 800000000\n\n\n# series: "
                 "transformer\n1024 732000000\n") != std::string::npos);
}

TEST_CASE("plot PNG is rendered by gnuplot", "[report]") {
  if (!have_gnuplot()) {
    std::cout << "SKIPPED: gnuplot is not installed (Debian package gnuplot-nox)" << std::endl;
    return;
  }
  TempDir tmp("png");
  write_sample(tmp.path);
  const TempDir out("png_out");
  std::ostringstream log;
  rep::write({tmp.path.string()}, out.path.string(), log);
  const fs::path png = out.path / "plots" / "flops_forward_per_byte_vs_seq_len.png";
  INFO(log.str());
  REQUIRE(fs::exists(png));
  const std::string bytes = read_text(png);
  REQUIRE(bytes.size() > 8);
  CHECK(bytes.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) == 0);
  CHECK(log.str().find(png.string()) != std::string::npos);
}

TEST_CASE("two labelled entries of one model are two series - and where model matches a label",
          "[report]") {
  TempDir tmp("labels");
  ojson report = {{"fits", {{{"x", "seq_len"}, {"y", "forward_ms"}, {"series", "model"}}}},
                  {"paper",
                   {{{"label", "by label"},
                     {"where", {{"model", "small"}, {"seq_len", 2048}}},
                     {"metric", "forward_ms"},
                     {"value", 2.0}},
                    {{"label", "by registry name"},
                     {"where", {{"model", "megabyte"}, {"seq_len", 1024}}},
                     {"metric", "forward_ms"},
                     {"value", 1.0}}}}};
  // forward_ms = seq_len / 1024 for "small" (exponent 1), (seq_len / 1024)^2 for "big" (exponent
  // 2).
  std::ostringstream f;
  f << context("2024-01-01T00:00:00Z", report).dump() << "\n";
  for (int n : {1024, 2048}) {
    const double r = n / 1024.0;
    auto small = point("s" + std::to_string(n), "megabyte", n, 8, ojson{{"forward_ms", r}});
    small["label"] = "small";
    small["name"] = "small/seq_len=" + std::to_string(n);
    auto big = point("b" + std::to_string(n), "megabyte", n, 8, ojson{{"forward_ms", r * r}});
    big.erase("label");  // an older record: the label is the name's first segment
    big["name"] = "big/seq_len=" + std::to_string(n);
    f << small.dump() << "\n" << big.dump() << "\n";
  }
  write_text(tmp.path / "results.jsonl", f.str());
  const auto results = megabench::load_result_set({tmp.path.string()});
  REQUIRE(results.points.size() == 4);
  CHECK(results.points[1].label == "big");

  const auto rows = rep::compare_paper(results);
  REQUIRE(rows.size() == 3);  // one row for the label, two for the registry name (both entries)
  CHECK(rows[0].point == "small/seq_len=2048");
  CHECK(rows[1].point == "small/seq_len=1024");
  CHECK(rows[2].point == "big/seq_len=1024");

  const TempDir out("labels_out");
  std::ostringstream log;
  rep::write({tmp.path.string()}, out.path.string(), log, rep::Options{{}, /*plots=*/false});
  const auto fits = ojson::parse(read_text(out.path / "fits.json"));
  REQUIRE(fits.size() == 2);
  CHECK(fits[0]["series"] == "small");
  CHECK(fits[0]["slope"].get<double>() == Approx(1.0).margin(1e-12));
  CHECK(fits[1]["series"] == "big");
  CHECK(fits[1]["slope"].get<double>() == Approx(2.0).margin(1e-12));
}

TEST_CASE("report --spec: a plot across folders, seeds averaged, reference points as lines",
          "[report]") {
  // Two budget folders of seeds (label t, bpb by budget and seed) and a folder of n-gram rows;
  // the spec's plot draws t's mean and std per budget and each n-gram order as a line.
  TempDir tmp("spec");
  const auto budget_point = [](const std::string& key, double budget, int seed, double bpb) {
    ojson p = point(key, "t", 1024, 8, ojson{{"bpb", bpb}});
    p["axes"] = {{"seed", seed}};
    p["name"] = "t/seed=" + std::to_string(seed);
    p["config"] = {{"run", {{"train", {{"flop_budget", budget}}}, {"data", {{"path", "c/text"}}}}}};
    return p;
  };
  fs::create_directories(tmp.path / "b12");
  fs::create_directories(tmp.path / "b13");
  fs::create_directories(tmp.path / "ngram");
  write_text(tmp.path / "b12/results.jsonl", budget_point("a0", 1e12, 0, 3.0).dump() + "\n" +
                                                 budget_point("a1", 1e12, 1, 3.2).dump() + "\n");
  write_text(tmp.path / "b13/results.jsonl", budget_point("b0", 1e13, 0, 2.5).dump() + "\n" +
                                                 budget_point("b1", 1e13, 1, 2.5).dump() + "\n");
  std::string ngram;
  for (const auto& [order, path, bpb] :
       {std::tuple{2, "c/text", 3.5}, std::tuple{2, "c/code", 9.0}}) {
    ojson p = point(std::string("n") + path, "ngram", 1024, 8, ojson{{"bpb", bpb}});
    p["axes"] = {{"ngram.order", order}};
    p["config"] = {{"run", {{"data", {{"path", path}}}}}};
    ngram += p.dump() + "\n";
  }
  write_text(tmp.path / "ngram/results.jsonl", ngram);
  const ojson spec = {
      {"name", "curve"},
      {"report",
       {{"columns", {"bpb"}},
        {"plots",
         {{{"name", "curve"},
           {"x", "run.train.flop_budget"},
           {"y", "bpb"},
           {"series", "label"},
           {"aggregate", "mean"},
           {"where", {{"run.data.path", "c/text"}}},
           {"hlines", {{"where", {{"model", "ngram"}}}, {"title", "ngram.order"}}}}}}}}};
  write_text(tmp.path / "spec.json", spec.dump());
  rep::Options options;
  options.spec_file = (tmp.path / "spec.json").string();
  const TempDir out("spec_out");
  std::ostringstream log;
  ::setenv("MEGABENCH_GNUPLOT", "/nonexistent/gnuplot", 1);
  REQUIRE_NOTHROW(rep::write(
      {(tmp.path / "b12").string(), (tmp.path / "b13").string(), (tmp.path / "ngram").string()},
      out.path.string(), log, options));
  ::unsetenv("MEGABENCH_GNUPLOT");
  const std::string dat = read_text(out.path / "plots/curve.dat");
  INFO(dat);
  // Mean and sample std: (3.0, 3.2) -> 3.1 +- 0.1414; the code n-gram row is not drawn.
  CHECK(dat.find("# hline: ngram.order=2 3.5\n") != std::string::npos);
  CHECK(dat.find("# hline:") == dat.rfind("# hline:"));
  const auto at = dat.find("# series: t\n");
  REQUIRE(at != std::string::npos);
  std::istringstream rows(dat.substr(at + 12));
  double x = 0, mean = 0, std = 0, n = 0;
  rows >> x >> mean >> std >> n;
  CHECK(x == 1e12);
  CHECK(mean == Approx(3.1).epsilon(1e-12));
  CHECK(std == Approx(std::sqrt(0.02)).epsilon(1e-12));
  CHECK(n == 2);
  rows >> x >> mean >> std >> n;
  CHECK((x == 1e13 && mean == 2.5 && std == 0 && n == 2));
  const std::string gp = read_text(out.path / "plots/curve.gp");
  CHECK(gp.find("using 1:2:3 with yerrorlines") != std::string::npos);
  CHECK(gp.find("3.5 with lines dashtype 2 title \"ngram.order=2\"") != std::string::npos);
  CHECK(read_text(out.path / "table.md").rfind("# curve\n", 0) == 0);
  // A spec without a "report" object is refused, naming the field.
  write_text(tmp.path / "bad.json", R"({"name": "x"})");
  options.spec_file = (tmp.path / "bad.json").string();
  CHECK_THROWS_WITH(rep::write({(tmp.path / "b12").string()}, out.path.string(), log, options),
                    Catch::Contains("\"report\" must be an object"));
}

TEST_CASE("derived metrics: the bandwidth roofline of batch-1 generation", "[report]") {
  // 1e9 FLOPs per byte = 5e8 multiply-adds, each reading one 2-byte element (2e8 weight bytes over
  // 1e8 parameters): 1e9 bytes read per generated byte; at 30 GB/s the bound is 30 bytes/s, and
  // 15 bytes/s measured is half of it.
  TempDir tmp("roofline");
  ojson p = point("g", "megabyte", 1024, 8,
                  ojson{{"generate_bytes_per_s", 15.0},
                        {"flops_forward_per_byte", 1e9},
                        {"generate_weight_bytes", 2e8},
                        {"params_total", 1e8}});
  p["calibration"] = {
      {"triad_gb_per_s", 30.0}, {"read_gb_per_s", 60.0}, {"matmul_gflops_per_s", 100.0}};
  ojson no_cal = point("h", "megabyte", 2048, 8, p["metrics"]);
  write_text(tmp.path / "results.jsonl", p.dump() + "\n" + no_cal.dump() + "\n");
  const auto r = rep::detail::load_with_spec({tmp.path.string()}, {});
  REQUIRE(r.points.size() == 2);
  CHECK(r.points[0].metrics["generate_roofline_bytes_per_s"].get<double>() == Approx(30.0));
  CHECK(r.points[0].metrics["generate_roofline_fraction"].get<double>() == Approx(0.5));
  // Against the 60 GB/s read bandwidth the bound is 60 bytes/s: a quarter of it.
  CHECK(r.points[0].metrics["generate_read_roofline_fraction"].get<double>() == Approx(0.25));
  CHECK_FALSE(r.points[1].metrics.contains("generate_roofline_bytes_per_s"));  // no calibration
  // A point that measured the read bandwidth at its own thread count (20 GB/s) is held to that.
  ojson own = p;
  own["name"] = "own";
  own["metrics"]["generate_read_bandwidth_gb_per_s"] = 20.0;
  TempDir tmp2("roofline_own");
  write_text(tmp2.path / "results.jsonl", own.dump() + "\n");
  const auto r2 = rep::detail::load_with_spec({tmp2.path.string()}, {});
  REQUIRE(r2.points.size() == 1);
  CHECK(r2.points[0].metrics["generate_read_roofline_fraction"].get<double>() == Approx(0.75));
  CHECK(r2.points[0].metrics["generate_roofline_fraction"].get<double>() == Approx(0.5));
  // The weights alone: 3e8 of the 5e8 multiply-adds per byte are weight products (2e8 dense, 1e8
  // logits; the rest attention), 6e8 bytes per byte at 2 bytes each, 15 bytes/s x 6e8 / 20 GB/s.
  CHECK_FALSE(r2.points[0].metrics.contains("generate_weight_read_fraction"));  // no breakdown
  own["metrics"]["flops_dense_forward_per_byte"] = 4e8;
  own["metrics"]["flops_embed_logits_forward_per_byte"] = 2e8;
  write_text(tmp2.path / "results.jsonl", own.dump() + "\n");
  const auto r3 = rep::detail::load_with_spec({tmp2.path.string()}, {});
  CHECK(r3.points[0].metrics["generate_weight_read_fraction"].get<double>() == Approx(0.45));
}

TEST_CASE("roofline: arithmetic intensity of training and generation, and the plot's roofs",
          "[report]") {
  // Training: 100 GFLOP/s for 500 ms = 5e10 FLOPs per step; traffic 40 B x 1e8 params + 2 x 3e9
  // live bytes = 1e10 bytes: intensity 5. Generation as in the test above: 1e9 FLOPs per byte over
  // 1e9 bytes read = 1 FLOP/byte, at 15 bytes/s = 1.5e10 FLOP/s.
  TempDir tmp("roofline_plot");
  ojson p = point("g", "megabyte", 1024, 8,
                  ojson{{"generate_bytes_per_s", 15.0},
                        {"flops_forward_per_byte", 1e9},
                        {"generate_weight_bytes", 2e8},
                        {"params_total", 1e8},
                        {"achieved_flops_per_s", 1e11},
                        {"matmul_peak_flops_per_s", 2e11},
                        {"train_step_ms", 500.0},
                        {"peak_memory_train_bytes", 3e9}});
  p["calibration"] = {{"triad_gb_per_s", 30.0}, {"matmul_gflops_per_s", 200.0}};
  p["label"] = "g";
  p["config"]["run"] = {{"dtype", "float32"}};
  ojson no_memory = point("h", "megabyte", 2048, 8, p["metrics"]);
  no_memory["metrics"].erase("peak_memory_train_bytes");
  // A point whose generation measured the read bandwidth at its threads (50 GB/s): its roof.
  ojson own_bw = p;
  own_bw["key"] = "k";
  own_bw["name"] = "megabyte/seq_len=4096/patch=8";
  own_bw["axes"]["seq_len"] = 4096;
  own_bw["label"] = "k";
  own_bw["config"]["run"] = {{"dtype", "bfloat16"}};
  own_bw["metrics"]["generate_read_bandwidth_gb_per_s"] = 50.0;
  write_text(tmp.path / "results.jsonl",
             p.dump() + "\n" + no_memory.dump() + "\n" + own_bw.dump() + "\n");
  const auto r = rep::detail::load_with_spec({tmp.path.string()}, {});
  REQUIRE(r.points.size() == 3);
  CHECK(r.points[0].metrics["train_arithmetic_intensity"].get<double>() == Approx(5.0));
  CHECK(r.points[0].metrics["generate_arithmetic_intensity"].get<double>() == Approx(1.0));
  CHECK(r.points[0].metrics["generate_flops_per_s"].get<double>() == Approx(1.5e10));
  CHECK_FALSE(r.points[1].metrics.contains("train_arithmetic_intensity"));  // no memory metric

  TempDir out("roofline_out");
  std::ostringstream log;
  rep::write({tmp.path.string()}, out.path.string(), log, {});
  const std::string dat = read_text(out.path / "plots/roofline.dat");
  CHECK(dat.find("# series: g train step\n5 100000000000\n") != std::string::npos);
  CHECK(dat.find("# series: g generate\n1 15000000000\n") != std::string::npos);
  // One roof for the points' dtype: the ridge at peak / bandwidth = 2e11 / 3e10 FLOPs per byte.
  const std::string gp = read_text(out.path / "plots/roofline.gp");
  CHECK(gp.find("(x < 6.66667 ? 3e+10 * x : 2e+11) with lines dashtype 2 title \"roof float32") !=
        std::string::npos);
  CHECK(gp.find("(x < 4 ? 5e+10 * x : 2e+11) with lines dashtype 2 title \"roof bfloat16") !=
        std::string::npos);
  CHECK(gp.find("set logscale xy") != std::string::npos);
}

TEST_CASE("series: an axis zipped with x does not split a series, one crossed with it does",
          "[report]") {
  // MEGABYTE at N = P^3: the patch moves with seq_len (one value per x): one series of 3 points.
  // A seed axis crossed with seq_len (two values at each x) splits the series by seed.
  megabench::ResultSet r;
  int i = 0;
  for (const auto& [n, p] : {std::pair{512, 8}, std::pair{1728, 12}, std::pair{4096, 16}}) {
    auto pt = point("z" + std::to_string(i++), "megabyte", n, p, ojson{{"forward_ms", n / 100.0}});
    r.points.push_back(megabench::PointRecord::from_json(pt));
    for (int seed : {0, 1}) {
      auto q = point("s" + std::to_string(i++), "transformer", n, 8, ojson{{"forward_ms", 1.0}});
      q["axes"] = {{"seq_len", n}, {"seed", seed}};
      r.points.push_back(megabench::PointRecord::from_json(q));
    }
  }
  const auto xy = rep::detail::collect_xy(r, "seq_len", "forward_ms", "model");
  CHECK(xy.series.count("megabyte") == 1);
  CHECK(xy.series.at("megabyte").size() == 3);
  CHECK(xy.series.count("transformer seed=0") == 1);
  CHECK(xy.series.count("transformer seed=1") == 1);
}
