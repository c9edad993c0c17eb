#include "harness/api/record.h"

#include <stdexcept>

#include "harness/api/registry.h"

namespace megabench {

using ojson = nlohmann::ordered_json;

namespace {

// The fields PointRecord holds itself; every other key of a record goes to `extra`.
const char* const kOwnFields[] = {"type",    "schema_version", "key",     "name", "model",
                                  "label",   "status",         "error",   "axes", "config",
                                  "metrics", "elapsed_s",      "warnings"};

bool own_field(const std::string& k) {
  for (const char* f : kOwnFields)
    if (k == f) return true;
  return false;
}

[[noreturn]] void bad_field(const std::string& field, const std::string& expected,
                            const ojson* got) {
  throw std::invalid_argument("point record: \"" + field + "\": expected " + expected + ", got " +
                              (got ? got->dump() : std::string("nothing (missing)")));
}

const ojson* find(const ojson& j, const char* field) {
  auto it = j.find(field);
  return it == j.end() ? nullptr : &*it;
}

std::string required_string(const ojson& j, const char* field) {
  const ojson* v = find(j, field);
  if (!v || !v->is_string() || v->get<std::string>().empty())
    bad_field(field, "a non-empty string", v);
  return v->get<std::string>();
}

ojson required_object(const ojson& j, const char* field) {
  const ojson* v = find(j, field);
  if (!v || !v->is_object()) bad_field(field, "an object", v);
  return *v;
}

int schema_version_of(const ojson& j) {
  const ojson* v = find(j, "schema_version");
  if (!v) return 1;  // version 1 had no such field
  if (!v->is_number_integer() || v->get<int64_t>() < 1 || v->get<int64_t>() > kSchemaVersion)
    bad_field("schema_version", "an integer from 1 to " + std::to_string(kSchemaVersion), v);
  return v->get<int>();
}

// The optional fields: label, error, elapsed_s, warnings.
void read_optional(const ojson& j, PointRecord& r) {
  if (const ojson* v = find(j, "label")) {
    if (!v->is_string()) bad_field("label", "a string", v);
    r.label = v->get<std::string>();
  } else {
    r.label = r.name.substr(0, r.name.find('/'));  // before labels: the name's first segment
  }
  if (const ojson* v = find(j, "error"); v && !v->is_null()) {
    if (!v->is_string()) bad_field("error", "a string or null", v);
    r.error = v->get<std::string>();
  }
  if (const ojson* v = find(j, "elapsed_s"); v && !v->is_null()) {
    if (!v->is_number()) bad_field("elapsed_s", "a number or null", v);
    r.elapsed_s = v->get<double>();
  }
  if (const ojson* v = find(j, "warnings")) {
    if (!v->is_array()) bad_field("warnings", "an array of strings", v);
    for (const auto& w : *v) {
      if (!w.is_string()) bad_field("warnings", "an array of strings", v);
      r.warnings.push_back(w.get<std::string>());
    }
  }
}

// ---- version 1 -> 2 ----------------------------------------------------------------------------

// How the point name prints an axis value (as config/ writes it): strings bare, the rest as JSON.
std::string value_text(const ojson& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// One axis of a version-1 record under today's name and value. The name may carry the entry's
// label ("megabyte.flash_attn"); only the option after the last '.' is renamed.
std::pair<std::string, ojson> upgrade_axis(const std::string& axis, const ojson& value,
                                           const std::string& model) {
  const size_t dot = axis.rfind('.');
  const std::string prefix = dot == std::string::npos ? "" : axis.substr(0, dot + 1);
  const std::string option = axis.substr(prefix.size());
  if (option == "flash_attn") {
    if (!value.is_boolean()) bad_field("axes." + axis, "true or false", &value);
    return {prefix + "attention", value.get<bool>() ? "sdpa" : "explicit"};
  }
  if (option == "layers") return {prefix + "depth", value};
  if (option == "cross_attn_seq_len") return {prefix + "prefix_len", value};
  if (option == "max_seq_len") {
    if (model != "megabyte" || !value.is_array()) return {prefix + "seq_len", value};
    // MEGABYTE's [G, P1, ..., Pk]: the context in bytes is the product (the patch sizes, which
    // the config keeps under "patch", are not made an axis of their own).
    int64_t product = 1;
    for (const auto& n : value) {
      if (!n.is_number_integer()) bad_field("axes." + axis, "an int or a list of ints", &value);
      product *= n.get<int64_t>();
    }
    return {prefix + "seq_len", product};
  }
  return {axis, value};
}

// Renames the axes in place (keeping their order) and the matching "/axis=value" segments of the
// name, so that an old point is named as a new run names it.
void upgrade_axes(PointRecord& r) {
  ojson axes = ojson::object();
  for (auto it = r.axes.begin(); it != r.axes.end(); ++it) {
    auto [axis, value] = upgrade_axis(it.key(), it.value(), r.model);
    if (axes.contains(axis))
      bad_field("axes." + it.key(), "no second axis named " + axis, &it.value());
    if (axis != it.key() || value != it.value()) {
      const std::string from = "/" + it.key() + "=" + value_text(it.value());
      if (auto at = r.name.find(from); at != std::string::npos)
        r.name.replace(at, from.size(), "/" + axis + "=" + value_text(value));
    }
    axes[axis] = value;
  }
  r.axes = std::move(axes);
}

void upgrade_config(PointRecord& r) {
  try {
    r.config = upgrade_model_config(r.model, nlohmann::json(r.config));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("point record: \"config\": ") + e.what());
  }
}

}  // namespace

ojson PointRecord::to_json() const {
  ojson j = ojson::object();
  j["type"] = "point";
  j["schema_version"] = schema_version;
  j["key"] = key;
  j["name"] = name;
  j["model"] = model;
  j["label"] = label;
  j["axes"] = axes;
  j["config"] = config;
  j["metrics"] = metrics;
  j["status"] = status;
  j["error"] = error.empty() ? ojson() : ojson(error);
  if (extra.contains("harness_overhead")) j["harness_overhead"] = extra["harness_overhead"];
  if (elapsed_s) j["elapsed_s"] = *elapsed_s;
  for (auto it = extra.begin(); it != extra.end(); ++it)
    if (!j.contains(it.key())) j[it.key()] = it.value();
  if (!warnings.empty()) j["warnings"] = warnings;
  return j;
}

PointRecord PointRecord::from_json(const ojson& j) {
  if (!j.is_object())
    throw std::invalid_argument("point record: expected a JSON object, got " + j.dump());
  const ojson* type = find(j, "type");
  if (!type || *type != "point") bad_field("type", "\"point\"", type);
  PointRecord r;
  const int version = schema_version_of(j);
  r.key = required_string(j, "key");
  r.name = required_string(j, "name");
  r.model = required_string(j, "model");
  r.status = required_string(j, "status");
  if (r.status != "ok" && r.status != "failed")
    bad_field("status", "\"ok\" or \"failed\"", find(j, "status"));
  r.axes = required_object(j, "axes");
  r.config = required_object(j, "config");
  r.metrics = required_object(j, "metrics");
  read_optional(j, r);
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!own_field(it.key())) r.extra[it.key()] = it.value();
  if (version < 2) {
    upgrade_config(r);
    upgrade_axes(r);
  }
  r.schema_version = kSchemaVersion;
  return r;
}

}  // namespace megabench
