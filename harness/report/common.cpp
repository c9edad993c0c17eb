// Cell text, report-spec fields and file writing, shared by the tables, fits, paper and plots.
#include <fstream>
#include <stdexcept>

#include "harness/api/format.h"
#include "harness/report/internal.h"

namespace megabench::report::detail {

std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n' || c == '\r')
      out += ' ';
    else
      out += c;
  }
  return out;
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += (c == '"') ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string csv_value(const ojson& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string plain_value(const ojson& v) {
  if (v.is_null()) return "–";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return format_double("%g", v.get<double>());
  return v.dump();
}

std::string str_or(const ojson& j, const char* key, const std::string& fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return it->is_string() ? it->get<std::string>() : it->dump();
}

std::string spec_string(const ojson& spec, const char* key, const char* what, bool required) {
  auto it = spec.find(key);
  if (it == spec.end() || it->is_null()) {
    if (required)
      throw std::invalid_argument(std::string("report: ") + what + " needs a \"" + key +
                                  "\" field, got " + spec.dump());
    return "";
  }
  if (!it->is_string())
    throw std::invalid_argument(std::string("report: ") + what + "." + key +
                                " must be a string, got " + it->dump());
  return it->get<std::string>();
}

std::optional<double> as_number(const ojson& v) {
  if (v.is_number()) return v.get<double>();
  return std::nullopt;
}

bool values_equal(const ojson& a, const ojson& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  return a == b;
}

ojson metric_of(const PointRecord& p, const std::string& metric) {
  auto it = p.metrics.find(metric);
  return it == p.metrics.end() ? ojson() : *it;
}

void write_file(const fs::path& path, const std::string& text, std::ostream& log,
                std::vector<std::string>& written) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("report: cannot write '" + path.string() + "'");
  f << text;
  f.close();
  if (!f) throw std::runtime_error("report: error writing '" + path.string() + "'");
  log << "report: wrote " << path.string() << "\n";
  written.push_back(path.string());
}

bool matches_where(const PointRecord& p, const ojson& where) {
  for (auto w = where.begin(); w != where.end(); ++w) {
    if (values_equal(lookup(p, w.key()), w.value())) continue;
    if (w.key() == "model" && values_equal(ojson(p.label), w.value())) continue;
    return false;
  }
  return true;
}

}  // namespace megabench::report::detail
