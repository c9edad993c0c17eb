// index.html: one self-contained page per results folder -- the points table (sortable), the
// plots (PNG embedded as data: URIs), the fits, the paper comparison, the trust warnings and the
// context record. No network at view time: no external script, style sheet, font or image.
#include <fstream>
#include <sstream>

#include "harness/api/format.h"
#include "harness/report/internal.h"

namespace megabench::report::detail {

namespace {

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string base64(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += kAlphabet[(v >> k) & 63];
  }
  if (i < bytes.size()) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// A GitHub markdown document (fits.md, paper.md) as HTML: pipe tables become <table>, headings
// <h3>, other lines paragraphs. The markdown stays the one source of the text.
// one piece: a line-by-line scan whose state (inside a table or not) spans the loop
std::string markdown_to_html(const std::string& md) {
  std::ostringstream os;
  std::istringstream in(md);
  std::string line;
  int table_row = -1;  // -1: not in a table; 0: header; 1: separator; 2+: body
  auto cells = [](const std::string& row) {
    std::vector<std::string> out;
    std::string cur;
    for (size_t i = 1; i < row.size(); ++i) {
      if (row[i] == '\\' && i + 1 < row.size() && row[i + 1] == '|') {
        cur += '|';
        ++i;
      } else if (row[i] == '|') {
        out.push_back(cur);
        cur.clear();
      } else {
        cur += row[i];
      }
    }
    return out;
  };
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '|') {
      ++table_row;
      if (table_row == 0) os << "<table class=\"md\"><thead><tr>";
      if (table_row == 1) {
        os << "</tr></thead><tbody>";
        continue;
      }
      if (table_row >= 2) os << "<tr>";
      for (const auto& c : cells(line))
        os << (table_row == 0 ? "<th>" : "<td>") << html_escape(c)
           << (table_row == 0 ? "</th>" : "</td>");
      if (table_row >= 2) os << "</tr>\n";
      continue;
    }
    if (table_row >= 0) os << "</tbody></table>\n";
    table_row = -1;
    if (line.rfind("## ", 0) == 0) {
      os << "<h2>" << html_escape(line.substr(3)) << "</h2>\n";
    } else if (line.rfind("# ", 0) == 0) {
      os << "<h3>" << html_escape(line.substr(2)) << "</h3>\n";
    } else if (!line.empty()) {
      os << "<p>" << html_escape(line) << "</p>\n";
    }
  }
  if (table_row >= 0) os << "</tbody></table>\n";
  return os.str();
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The plots, each PNG inline; a plot without a PNG (no gnuplot) says how to render it.
std::string plots_html(const ojson& plots) {
  std::ostringstream os;
  for (const auto& p : plots) {
    const std::string title = str_or(p, "title", str_or(p, "name"));
    os << "<figure><figcaption>" << html_escape(title) << "</figcaption>";
    const std::string png =
        p.contains("png") && p["png"].is_string() ? p["png"].get<std::string>() : "";
    const std::string bytes = png.empty() ? "" : read_bytes(png);
    if (bytes.empty()) {
      os << "<p class=\"note\">no image: render plots/" << html_escape(str_or(p, "name"))
         << ".gp with gnuplot</p>";
    } else {
      os << "<img alt=\"" << html_escape(title) << "\" src=\"data:image/png;base64,"
         << base64(bytes) << "\">";
    }
    os << "</figure>\n";
  }
  return os.str();
}

// Sorting: a click on a header sorts by that column, numerically by each cell's data-v when
// every cell of the column has one, else as text; a second click reverses.
const char* kScript = R"(<script>
function sortTable(th) {
  const table = th.closest('table'), body = table.tBodies[0];
  const col = Array.from(th.parentNode.children).indexOf(th);
  const dir = th.dataset.dir === 'asc' ? 'desc' : 'asc';
  th.parentNode.querySelectorAll('th').forEach(h => delete h.dataset.dir);
  th.dataset.dir = dir;
  const rows = Array.from(body.rows);
  const key = r => r.cells[col].dataset.v !== undefined ? parseFloat(r.cells[col].dataset.v)
                                                        : r.cells[col].textContent;
  const numeric = rows.every(r => r.cells[col].dataset.v !== undefined);
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    const c = numeric ? x - y : String(x).localeCompare(String(y));
    return dir === 'asc' ? c : -c;
  });
  rows.forEach(r => body.appendChild(r));
}
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  document.body.dataset.imagesLoaded = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.tableRows = document.querySelectorAll('#points tbody tr').length;
});
</script>)";

const char* kStyle = R"(<style>
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; }
th { background: #f0f0f0; cursor: pointer; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #fde8e8; }
.warn { background: #fff4d6; border-left: 4px solid #e0a800; padding: 4px 10px; }
figure { display: inline-block; margin: 0.5em; }
figure img { max-width: 900px; border: 1px solid #ddd; }
pre { background: #f7f7f7; padding: 1em; overflow: auto; font-size: 12px; }
.note { color: #777; }
</style>)";

}  // namespace

std::string render_html(const HtmlParts& parts) {
  std::ostringstream os;
  const std::string title = parts.title.empty() ? std::string("Results") : parts.title;
  os << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
     << html_escape(title) << "</title>" << kStyle << kScript << "</head><body>\n<h1>"
     << html_escape(title) << "</h1>\n";
  for (const auto& w : parts.warnings)
    os << "<p class=\"warn\">Warning: " << html_escape(w) << "</p>\n";
  os << "<h2>Points</h2>\n" << parts.points_table;
  if (!parts.samples_md.empty()) os << markdown_to_html(parts.samples_md);
  if (!parts.plots.empty()) os << "<h2>Plots</h2>\n" << plots_html(parts.plots);
  os << "<h2>Fits</h2>\n" << markdown_to_html(parts.fits_md);
  os << "<h2>Paper</h2>\n" << markdown_to_html(parts.paper_md);
  os << "<h2>Context</h2>\n<details><summary>the newest context record</summary><pre>"
     << html_escape(parts.context.dump(2)) << "</pre></details>\n</body></html>\n";
  return os.str();
}

std::string html_cell(const std::string& text, const ojson& value) {
  const auto v = as_number(value);
  if (!v) return "<td>" + html_escape(text) + "</td>";
  return "<td class=\"num\" data-v=\"" + format_double("%.17g", *v) + "\">" + html_escape(text) +
         "</td>";
}

std::string html_head_row(const std::vector<std::string>& header) {
  std::string s = "<thead><tr>";
  for (const auto& h : header) s += "<th onclick=\"sortTable(this)\">" + html_escape(h) + "</th>";
  return s + "</tr></thead>";
}

}  // namespace megabench::report::detail
