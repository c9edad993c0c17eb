#include "harness/config/overrides.h"

#include <algorithm>
#include <vector>

namespace megabench {
namespace {

bool all_digits(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return c >= '0' && c <= '9'; });
}

struct PathStep {
  bool is_index;
  std::string key;
  size_t index;
};

std::vector<PathStep> parse_path(const std::string& path, const std::string& where) {
  std::vector<PathStep> steps;
  size_t i = 0;
  auto bad = [&](const std::string& why) {
    throw ConfigError(where, "bad path '" + path + "': " + why);
  };
  if (path.empty()) bad("empty");
  while (i < path.size()) {
    if (path[i] == '[') {
      size_t close = path.find(']', i);
      if (close == std::string::npos) bad("unclosed '['");
      std::string num = path.substr(i + 1, close - i - 1);
      if (num.empty() || !all_digits(num)) bad("expected a number inside [], got '" + num + "'");
      if (num.size() > 9) bad("index " + num + " is too large");
      steps.push_back({true, "", std::stoul(num)});
      i = close + 1;
      if (i < path.size() && path[i] == '.') ++i;
    } else {
      size_t end = path.find_first_of(".[", i);
      if (end == std::string::npos) end = path.size();
      std::string key = path.substr(i, end - i);
      if (key.empty()) bad("empty key");
      const bool digits = all_digits(key);
      if (digits && key.size() > 9) bad("index " + key + " is too large");
      steps.push_back({digits, key, digits ? std::stoul(key) : 0});
      i = end;
      if (i < path.size() && path[i] == '.') {
        ++i;
        if (i == path.size()) bad("ends with '.'");
      }
    }
  }
  return steps;
}

}  // namespace

void apply_set(json& doc, const std::string& assignment) {
  // JSON text is UTF-8: a byte sequence that is not would fail later, wherever it is printed.
  try {
    (void)json(assignment).dump();
  } catch (const json::type_error&) {
    throw ConfigError("--set", "the assignment is not valid UTF-8");
  }
  const std::string where = "--set " + assignment;
  auto eq = assignment.find('=');
  if (eq == std::string::npos) throw ConfigError(where, "expected PATH=VALUE");
  std::string path = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  auto steps = parse_path(path, where);
  json value;
  try {
    value = json::parse(text);
  } catch (const json::parse_error&) {
    value = text;
  } catch (const json::out_of_range&) {
    throw ConfigError(where, "the number " + text + " is out of range of a double");
  }
  json* node = &doc;
  std::string walked;
  for (size_t s = 0; s < steps.size(); ++s) {
    const auto& st = steps[s];
    bool last = s + 1 == steps.size();
    if (node->is_array()) {
      if (!st.is_index)
        throw ConfigError(where, "'" + (walked.empty() ? "(root)" : walked) +
                                     "' is a list; expected an index, got '" + st.key + "'");
      if (st.index >= node->size()) {
        throw ConfigError(where, "'" + walked + "' has " + std::to_string(node->size()) +
                                     " entries; index " + std::to_string(st.index) +
                                     " is out of range");
      }
      walked = index_path(walked, st.index);
      node = &(*node)[st.index];
    } else if (node->is_object() || node->is_null()) {
      if (st.is_index && st.key.empty()) throw ConfigError(where, "'" + walked + "' is not a list");
      std::string key = st.is_index ? st.key : st.key;
      if (!last && !node->contains(key)) (*node)[key] = json::object();
      walked = child(walked, key);
      node = &(*node)[key];
    } else {
      throw ConfigError(where, "'" + walked + "' is " + show(*node) + ", not an object or list");
    }
  }
  *node = value;
}

}  // namespace megabench
