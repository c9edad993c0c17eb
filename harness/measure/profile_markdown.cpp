#include "harness/measure/profile_markdown.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <sstream>
#include <vector>

namespace megabench {

// A file name for a point: "megabyte/seq_len=1024/patch=8" -> "megabyte__seq_len=1024__patch=8".
std::string profile_file_stem(const std::string& point_name) {
  std::string out;
  for (char c : point_name) {
    if (c == '/') {
      out += "__";
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
               c == '=') {
      out += c;
    } else {
      out += '_';
    }
  }
  return out.empty() ? "point" : out;
}

// The component table (ProfileResult::table_markdown) and the kernels (CUDA) or top-level ops (CPU)
// that took the most time, summed by name within each component.
std::string profile_section_markdown(const std::string& title, const ProfileResult& r, size_t top) {
  struct Row {
    std::string name, component;
    int64_t calls = 0;
    double ms = 0;
  };
  std::map<std::pair<std::string, std::string>, Row> by_name;
  for (const auto& k : r.kernels) {
    Row& row = by_name[{k.component, k.name}];
    row.name = k.name;
    row.component = k.component;
    row.calls += 1;
    row.ms += k.duration_ms();
  }
  std::vector<Row> rows;
  for (auto& [key, row] : by_name) rows.push_back(std::move(row));
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.ms > b.ms; });
  std::ostringstream out;
  out << "## " << title << "\n\n" << r.table_markdown() << "\n";
  const bool cpu = r.source == "libtorch";
  out << "Top " << std::min(top, rows.size()) << " " << (cpu ? "ops" : "kernels") << " of "
      << rows.size() << " (by total time):\n\n| " << (cpu ? "op" : "kernel")
      << " | component | calls | ms | % of total |\n"
      << "|---|---|---:|---:|---:|\n";
  for (size_t i = 0; i < std::min(top, rows.size()); ++i) {
    const auto& row = rows[i];
    std::string name = row.name;
    for (auto& c : name) {
      if (c == '|' || c == '\n') c = ' ';  // keep the table a table
    }
    if (name.size() > 120) name = name.substr(0, 117) + "...";
    char ms[32], pct[32];
    std::snprintf(ms, sizeof ms, "%.3f", row.ms);
    std::snprintf(pct, sizeof pct, "%.1f", r.total_ms > 0 ? 100 * row.ms / r.total_ms : 0.0);
    out << "| `" << name << "` | " << row.component << " | " << row.calls << " | " << ms << " | "
        << pct << " |\n";
  }
  out << "\n";
  return out.str();
}

}  // namespace megabench
