#pragma once
// Typed readers for untrusted JSON: each names the JSON path of the value and what was expected.
//
//   int64_t n = read_int(doc["repeat"], "repeat", /*min=*/1);   // "repeat: expected an integer >=
//   1, got 0"
//
// Every error is a ConfigError whose what() starts with the path.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace megabench {

using json = nlohmann::json;

/// A bad experiment file or override. what() starts with the JSON path of the offending value.
class ConfigError : public std::invalid_argument {
 public:
  ConfigError(const std::string& path, const std::string& message)
      : std::invalid_argument(path.empty() ? message : path + ": " + message), path_(path) {}
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// A value as it appears in an error message (JSON, cut to 60 characters).
std::string show(const json& v);
std::string join(const std::vector<std::string>& xs, const std::string& sep = ", ");
/// "a.b" from ("a", "b"); "b" from ("", "b").
std::string child(const std::string& path, const std::string& key);
/// "a[3]" from ("a", 3).
std::string index_path(const std::string& path, size_t i);

void expect_object(const json& j, const std::string& path);
/// Throws naming the first key of `j` that is not in `allowed`.
void check_keys(const json& j, const std::string& path, const std::vector<std::string>& allowed);
/// An integer >= min (min 1: "a positive integer", 0: "a non-negative integer").
int64_t read_int(const json& v, const std::string& path, int64_t min);
/// A number; with `positive`, > 0.
double read_number(const json& v, const std::string& path, bool positive);
std::string read_string(const json& v, const std::string& path);
std::string read_enum(const json& v, const std::string& path,
                      const std::vector<std::string>& allowed);
bool read_bool(const json& v, const std::string& path);
/// A section with defaults: `defaults` overwritten by `given` (null: defaults), whose keys must be
/// among the defaults' keys.
json merge_section(const json& given, const json& defaults, const std::string& path);

/// Parses a JSON file; throws std::runtime_error naming the file (and line/column on a syntax
/// error).
json load_json_file(const std::string& path);

}  // namespace megabench
