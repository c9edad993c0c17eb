#pragma once
// The model registry: the one list of models. A model registers itself in its own *_plugin.cpp:
//
//   MEGABENCH_REGISTER_MODEL(megabyte, ModelSpec{ .name = "megabyte", ... });
//
// Plugins are linked as an OBJECT library, so no registration is dropped by the linker.
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "harness/api/model.h"

namespace megabench {

using json = nlohmann::json;

/// One documented option of a model's JSON config.
struct OptionSpec {
  std::string name;
  std::string type;  // "int", "float", "bool", "string", "int|int[]", "int[]"
  json default_value;
  std::string help;
};

struct ModelSpec {
  std::string name;
  std::string description;
  std::vector<OptionSpec> options;
  /// Fills defaults and checks the config; throws std::invalid_argument naming the key.
  std::function<json(const json& config)> resolve;
  /// Builds the model from a resolved config.
  std::function<std::unique_ptr<ByteModel>(const json& resolved)> build;
  /// Analytical FLOPs per byte at the config's own context length, without allocating.
  std::function<FlopBreakdown(const json& resolved)> flops;
  /// Parameter counts from the config alone, without allocating.
  std::function<ParamCount(const json& resolved)> params;
  /// A tiny config for the every-model test (forward, backward, generate).
  json tiny_config;
};

class Registry {
 public:
  static Registry& instance();
  void add(ModelSpec spec);
  const ModelSpec& get(const std::string& name) const;  // throws naming the known models
  bool has(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, ModelSpec> specs_;
};

/// Checks a model config against its documented options and fills the defaults: an unknown key or
/// a value of the wrong type throws std::invalid_argument naming the key and the expected type.
/// Options whose default is null stay absent unless given.
json apply_option_defaults(const std::string& model, const std::vector<OptionSpec>& options,
                           const json& config);

/// Maps a model config written before the option renames (the references' keyword names, and
/// records of an older results schema) to today's names; the identity on a current config.
///   every model:  flash_attn true | false       -> attention "sdpa" | "explicit"
///                 layers                        -> depth
///   megabyte:     max_seq_len [G, P1, ..., Pk]  -> seq_len G * P1 * ... * Pk, patch [P1, ..., Pk]
///   other models: max_seq_len                   -> seq_len
///                 cross_attn_seq_len            -> prefix_len
/// Pure (no registry lookup). Throws std::invalid_argument when an old key and its new one are
/// both given and disagree, or when an old value has the wrong type.
json upgrade_model_config(const std::string& model, const json& config);

/// Static registration object, one per plugin file.
struct ModelRegistration {
  explicit ModelRegistration(ModelSpec spec) { Registry::instance().add(std::move(spec)); }
};

#define MEGABENCH_REGISTER_MODEL(id, ...) \
  static ::megabench::ModelRegistration megabench_model_registration_##id(__VA_ARGS__)

}  // namespace megabench
