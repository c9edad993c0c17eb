// index.html, the self-contained report page: written by `report` beside the tables, with the
// points table sortable, the plots embedded, and nothing fetched from the network; opened in
// headless Chromium (Debian's chromium, which scripts/setup.sh installs), which must render the
// table rows and decode every image.
#include <catch2/catch.hpp>
#include <filesystem>
#include <regex>
#include <sstream>
#include <string>

#include "harness/cli/run.h"
#include "harness/report/report.h"
#include "tests/support.h"

namespace fs = std::filesystem;
using namespace megabench::test;
using megabench::json;

namespace {

std::string chromium() {
  for (const char* c : {"chromium", "chromium-browser", "google-chrome"}) {
    if (run_command(std::string("command -v ") + c).status == 0) return c;
  }
  return "";
}

// A three-point run of the test model with one plot, reported into its own folder.
std::string report_folder() {
  const auto dir = fresh_dir("html");
  json exp = {{"name", "html <report>"},
              {"models", {{{"name", "test_tiny"}, {"config", json::object()}}}},
              {"sweep", {{"grid", {{"dim", {4, 8, 16}}}}}},
              {"metrics", {"params", "forward"}},
              {"repeat", 2},
              {"min_time_ms", 0},
              {"report", {{"plots", {{{"x", "dim"}, {"y", "params_total"}}}}}}};
  const auto path = write_file(dir + "/exp.json", exp.dump());
  megabench::RunOptions o;
  o.experiment_path = path;
  o.outdir = dir + "/out";
  o.progress = 0;
  std::ostringstream log;
  REQUIRE(megabench::run_experiment(o, log).ok == 3);
  return dir + "/out";
}

}  // namespace

TEST_CASE("report writes a self-contained index.html that renders in headless Chromium",
          "[report][html]") {
  const std::string out = report_folder();
  const std::string html_path = out + "/index.html";
  REQUIRE(fs::exists(html_path));
  const std::string html = read_text(html_path);
  // Self-contained: no URL to fetch (the one http string allowed is none at all).
  CHECK(html.find("http://") == std::string::npos);
  CHECK(html.find("https://") == std::string::npos);
  CHECK(html.find("<script src") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
  // The title is escaped; the table has a sortable header and one row per point.
  CHECK(html.find("<h1>html &lt;report&gt;</h1>") != std::string::npos);
  CHECK(html.find("<table id=\"points\">") != std::string::npos);
  CHECK(html.find("onclick=\"sortTable(this)\"") != std::string::npos);
  const std::regex row("<tr>");
  CHECK(std::distance(std::sregex_iterator(html.begin(), html.end(), row),
                      std::sregex_iterator()) >= 3);
  CHECK(html.find("data:image/png;base64,") != std::string::npos);
  CHECK(html.find("lack numeric") == std::string::npos);  // the plot has its data

  const std::string browser = chromium();
  REQUIRE_FALSE(browser.empty());  // scripts/setup.sh installs Debian's chromium
  const std::string flags =
      " --headless --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=5000 ";
  const auto dom = run_command(browser + flags + "--dump-dom file://" + html_path);
  INFO(dom.out.substr(0, 2000));
  REQUIRE(dom.status == 0);
  // The page's load handler counts what rendered: the decoded images and the table's rows.
  CHECK(dom.out.find("data-images-loaded=\"1\"") != std::string::npos);
  CHECK(dom.out.find("data-table-rows=\"3\"") != std::string::npos);
  const std::string shot = out + "/index.png";
  const auto png = run_command(browser + flags + "--window-size=1280,1600 --screenshot=" + shot +
                               " file://" + html_path);
  INFO(png.out);
  CHECK(png.status == 0);
  REQUIRE(fs::exists(shot));
  const std::string bytes = read_text(shot);
  CHECK(bytes.size() > 10000);  // a rendered page, not a blank one
  CHECK(bytes.substr(1, 3) == "PNG");
}
