#include "harness/config/json_read.h"

#include <algorithm>
#include <fstream>

namespace megabench {

std::string show(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

std::string join(const std::vector<std::string>& xs, const std::string& sep) {
  std::string out;
  for (const auto& x : xs) out += (out.empty() ? "" : sep) + x;
  return out;
}

std::string child(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

std::string index_path(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

void expect_object(const json& j, const std::string& path) {
  if (!j.is_object()) throw ConfigError(path, "expected an object, got " + show(j));
}

void check_keys(const json& j, const std::string& path, const std::vector<std::string>& allowed) {
  for (const auto& [k, _] : j.items()) {
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      throw ConfigError(child(path, k), "unknown key; expected one of: " + join(allowed));
    }
  }
}

int64_t read_int(const json& v, const std::string& path, int64_t min) {
  if (!v.is_number_integer()) {
    const char* what = min > 0    ? "a positive integer"
                       : min == 0 ? "a non-negative integer"
                                  : "an integer";
    throw ConfigError(path, std::string("expected ") + what + ", got " + show(v));
  }
  int64_t x = v.get<int64_t>();
  if (x < min) {
    throw ConfigError(path, "expected an integer >= " + std::to_string(min) + ", got " + show(v));
  }
  return x;
}

double read_number(const json& v, const std::string& path, bool positive) {
  if (!v.is_number()) {
    throw ConfigError(path, std::string("expected ") +
                                (positive ? "a positive number" : "a number") + ", got " + show(v));
  }
  double x = v.get<double>();
  if (positive && !(x > 0)) throw ConfigError(path, "expected a positive number, got " + show(v));
  return x;
}

std::string read_string(const json& v, const std::string& path) {
  if (!v.is_string()) throw ConfigError(path, "expected a string, got " + show(v));
  return v.get<std::string>();
}

std::string read_enum(const json& v, const std::string& path,
                      const std::vector<std::string>& allowed) {
  if (!v.is_string() ||
      std::find(allowed.begin(), allowed.end(), v.get<std::string>()) == allowed.end()) {
    throw ConfigError(path, "expected one of " + join(allowed) + ", got " + show(v));
  }
  return v.get<std::string>();
}

bool read_bool(const json& v, const std::string& path) {
  if (!v.is_boolean()) throw ConfigError(path, "expected true or false, got " + show(v));
  return v.get<bool>();
}

json merge_section(const json& given, const json& defaults, const std::string& path) {
  json out = defaults;
  if (given.is_null()) return out;
  expect_object(given, path);
  std::vector<std::string> keys;
  for (const auto& [k, _] : defaults.items()) keys.push_back(k);
  check_keys(given, path, keys);
  for (const auto& [k, v] : given.items()) out[k] = v;
  return out;
}

json load_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open experiment file '" + path + "'");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    throw std::runtime_error("'" + path + "' is not valid JSON: " + e.what());
  }
}

}  // namespace megabench
