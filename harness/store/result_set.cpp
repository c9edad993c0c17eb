#include "harness/store/result_set.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "harness/store/results.h"

namespace megabench {

namespace fs = std::filesystem;
// ordered_json keeps each record's key order, so axes and metrics appear as the file lists them.
using ojson = nlohmann::ordered_json;

namespace {

std::string string_or(const ojson& j, const char* key, const std::string& fallback = "") {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

// Merges records into one ResultSet: points by key (a later record replaces the earlier one in
// its place), the newest context by ISO-8601 date (which sorts as text; on a tie, the later one).
class Merger {
 public:
  explicit Merger(ResultSet& set) : set_(set) {}

  void add(const ojson& rec, const std::string& where) {
    const std::string type = string_or(rec, "type");
    if (type == "context") {
      add_context(rec);
    } else if (type == "calibration" && rec.contains("calibration")) {
      ojson c = rec["calibration"];
      c["host"] = string_or(last_context_, "host");
      c["cpu"] = string_or(last_context_, "cpu");
      set_.calibrations.push_back(std::move(c));
    } else if (type == "point") {
      try {
        add_point(PointRecord::from_json(rec));
      } catch (const std::invalid_argument& e) {
        set_.warnings.push_back(where + ": " + e.what() + "; skipped");
      }
    }  // other record types: ignored, as the contract asks of readers
  }

 private:
  void add_context(const ojson& rec) {
    set_.contexts.push_back(rec);
    last_context_ = rec;
    const std::string date = string_or(rec, "date");
    if (have_context_ && date < newest_date_) return;
    set_.context = rec;
    newest_date_ = date;
    have_context_ = true;
  }

  void add_point(PointRecord p) {
    if (auto it = index_.find(p.key); it != index_.end()) {
      set_.points[it->second] = std::move(p);
      return;
    }
    index_[p.key] = set_.points.size();
    set_.points.push_back(std::move(p));
  }

  ResultSet& set_;
  ojson last_context_ = ojson::object();  // the run that the records that follow belong to
  std::map<std::string, size_t> index_;   // key -> position in set_.points
  std::string newest_date_;
  bool have_context_ = false;
};

void read_file(const std::string& file, Merger& merger, ResultSet& set) {
  set.files.push_back(file);
  for_each_result_line(file, [&](size_t line_no, const std::string& line) {
    const std::string where = file + ":" + std::to_string(line_no);
    ojson rec = ojson::parse(line, nullptr, /*allow_exceptions=*/false);
    if (rec.is_discarded() || !rec.is_object()) {
      set.warnings.push_back(where + ": not a JSON object, line skipped");
      return;
    }
    merger.add(rec, where);
  });
}

// The experiment's "report" section of the newest context (empty when absent).
void take_report_section(ResultSet& set) {
  if (!set.context.is_object()) return;
  auto exp = set.context.find("experiment");
  if (exp == set.context.end() || !exp->is_object()) return;
  auto rep = exp->find("report");
  if (rep == exp->end() || rep->is_null()) return;
  if (!rep->is_object()) {
    set.warnings.push_back("context: experiment.report is not an object (" + rep->dump() +
                           "); ignored");
    return;
  }
  set.report_section = *rep;
}

}  // namespace

std::vector<std::string> results_files(const std::string& dir) {
  std::vector<std::string> files;
  if (!fs::is_directory(dir)) return files;
  if (fs::exists(fs::path(dir) / "results.jsonl"))
    files.push_back((fs::path(dir) / "results.jsonl").string());
  std::vector<std::string> shards;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (e.is_regular_file() && n.rfind("results.shard-", 0) == 0 &&
        e.path().extension() == ".jsonl")
      shards.push_back(e.path().string());
  }
  std::sort(shards.begin(), shards.end());
  files.insert(files.end(), shards.begin(), shards.end());
  return files;
}

ResultSet load_result_set(const std::vector<std::string>& dirs) {
  if (dirs.empty()) throw std::invalid_argument("results: no result folders given");
  ResultSet set;
  Merger merger(set);
  for (const auto& dir : dirs) {
    if (fs::is_regular_file(dir)) {
      read_file(dir, merger, set);
      continue;
    }
    if (!fs::is_directory(dir))
      throw std::runtime_error("results: result folder '" + dir + "' does not exist");
    const auto files = results_files(dir);
    if (files.empty())
      throw std::runtime_error("results: no results.jsonl or results.shard-*.jsonl in '" + dir +
                               "'");
    for (const auto& file : files) read_file(file, merger, set);
  }
  take_report_section(set);
  return set;
}

ojson lookup(const PointRecord& p, const std::string& field) {
  if (field == "name") return p.name;
  if (field == "model") return p.model;
  if (field == "label") return p.label;
  if (field == "status") return p.status;
  if (p.axes.contains(field)) return p.axes[field];
  if (p.metrics.contains(field)) return p.metrics[field];
  if (p.config.contains(field)) return p.config[field];
  if (field.empty()) return nullptr;
  std::string ptr = field;
  if (ptr[0] != '/') {
    std::replace(ptr.begin(), ptr.end(), '.', '/');
    ptr = "/" + ptr;
  }
  try {
    const auto jp = ojson::json_pointer(ptr);
    if (p.config.contains(jp)) return p.config[jp];
  } catch (const nlohmann::json::exception&) {  // not a valid pointer: no such field
  }
  return nullptr;
}

}  // namespace megabench
