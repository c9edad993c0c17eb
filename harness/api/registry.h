#pragma once
// The model registry: the one list of models. A model registers itself in its own *_plugin.cpp:
//
//   MEGABENCH_REGISTER_MODEL(megabyte, TypedModelSpec<MEGABYTEOptions>{.name = "megabyte", ...});
//
// Plugins are linked as an OBJECT library, so no registration is dropped by the linker.
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness/api/model.h"

namespace megabench {

using json = nlohmann::json;

/// A bad value of one model option, thrown by a spec's resolve. `option` is the key the user
/// wrote (for a derived value, the option it derives from), so that the experiment parser can
/// name models[i].config.<option>.
struct OptionError : std::invalid_argument {
  OptionError(const std::string& option, const std::string& message)
      : std::invalid_argument(option + ": " + message), option(option), message(message) {}
  std::string option;
  std::string message;
};

/// One documented option of a model's JSON config.
struct OptionSpec {
  std::string name;
  std::string type;  // "int", "float", "bool", "string", "int|int[]", "int[]"
  json default_value;
  std::string help;
};

/// A model's typed Options, parsed once per point from its resolved config. Each plugin wraps its
/// own Options struct (TypedOptions<MEGABYTEOptions>); the harness passes it back untouched.
struct ModelOptions {
  virtual ~ModelOptions() = default;
};
template <class O>
struct TypedOptions final : ModelOptions {
  explicit TypedOptions(O o) : value(std::move(o)) {}
  O value;
};

/// A published closed formula for the FLOPs per byte, beside the analytical count: each of the
/// formula's terms as the count gives it and as the formula gives it, on the same shapes, in the
/// order the formula writes them.
struct FormulaTerm {
  std::string name;
  double counted = 0;
  double formula = 0;
};
struct FormulaCheck {
  std::string formula;  // where the formula comes from, e.g. "SpaceByte Appendix A.1, MEGABYTE"
  std::vector<FormulaTerm> terms;
  std::string note;  // anything the reader needs to compare them, or empty
};

struct ModelSpec {
  std::string name;
  std::string description;
  std::vector<OptionSpec> options;
  /// Fills defaults and checks the config; throws std::invalid_argument naming the key. The
  /// resolved JSON is what a record saves and what the point key hashes.
  std::function<json(const json& config)> resolve;
  /// The typed Options of a resolved config.
  std::function<std::shared_ptr<const ModelOptions>(const json& resolved)> parse;
  /// Builds the model.
  std::function<std::unique_ptr<ByteModel>(const ModelOptions&)> build;
  /// Analytical FLOPs per byte at the config's own context length, without allocating.
  std::function<FlopBreakdown(const ModelOptions&)> flops;
  /// Parameter counts from the options alone, without allocating.
  std::function<ParamCount(const ModelOptions&)> params;
  /// A tiny config for the every-model test (forward, backward, generate).
  json tiny_config;
  /// Where the model came from: "built-in", or the plugin library's path (set by the registry).
  std::string origin = "built-in";
  /// Optional: the count term by term against a published formula, for the configs it applies to
  /// (nullopt otherwise). `megabench flops MODEL` prints it.
  std::function<std::optional<FormulaCheck>(const ModelOptions&)> formula;
};

/// What a plugin writes: the same functions over its own Options type `O`.
template <class O>
struct TypedModelSpec {
  std::string name;
  std::string description;
  std::vector<OptionSpec> options;
  std::function<json(const json& config)> resolve;
  std::function<O(const json& resolved)> parse;
  std::function<std::unique_ptr<ByteModel>(const O&)> build;
  std::function<FlopBreakdown(const O&)> flops;
  std::function<ParamCount(const O&)> params;
  json tiny_config;
  std::function<std::optional<FormulaCheck>(const O&)> formula;
};

/// The type-erased spec of a plugin's typed one (each function unwraps TypedOptions<O>).
template <class O>
ModelSpec erase_options(TypedModelSpec<O> t) {
  auto unwrap = [](const ModelOptions& o) -> const O& {
    return static_cast<const TypedOptions<O>&>(o).value;
  };
  ModelSpec s{t.name, t.description, t.options, t.resolve, {}, {}, {}, {}, t.tiny_config};
  s.parse = [f = t.parse](const json& r) -> std::shared_ptr<const ModelOptions> {
    return std::make_shared<TypedOptions<O>>(f(r));
  };
  s.build = [f = t.build, unwrap](const ModelOptions& o) { return f(unwrap(o)); };
  if (t.flops) s.flops = [f = t.flops, unwrap](const ModelOptions& o) { return f(unwrap(o)); };
  if (t.params) s.params = [f = t.params, unwrap](const ModelOptions& o) { return f(unwrap(o)); };
  if (t.formula) {
    s.formula = [f = t.formula, unwrap](const ModelOptions& o) { return f(unwrap(o)); };
  }
  return s;
}

class Registry {
 public:
  static Registry& instance();
  /// Adds a model, its origin set to the plugin being loaded (else "built-in"). Throws
  /// std::invalid_argument when the name is taken, naming both origins.
  void add(ModelSpec spec);
  /// While alive, models added are marked as coming from `origin` (a plugin's path).
  struct OriginScope {
    explicit OriginScope(std::string origin);
    ~OriginScope();
    std::string previous;
  };
  const ModelSpec& get(const std::string& name) const;  // throws naming the known models
  bool has(const std::string& name) const;
  /// Takes a model out again (a test's scoped model; a plugin unloaded). No-op when absent.
  void remove(const std::string& name);
  std::vector<std::string> names() const;

 private:
  std::map<std::string, ModelSpec> specs_;
  std::string origin_ = "built-in";
};

/// Whether `v` has an option type: "int", "float", "bool", "string", "T[]" (a list of T), and
/// alternatives joined by '|' ("int|int[]|string"). Throws std::logic_error on an unknown type
/// word.
bool option_type_matches(const std::string& type, const json& v);
/// The type in words for errors: "an integer or a list of ints".
std::string option_type_words(const std::string& type);
/// The option named `key` of a spec, or null.
const OptionSpec* find_option(const ModelSpec& spec, const std::string& key);

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
  template <class O>
  explicit ModelRegistration(TypedModelSpec<O> spec) {
    Registry::instance().add(erase_options(std::move(spec)));
  }
};

}  // namespace megabench

#ifndef MEGABENCH_PLUGIN
#define MEGABENCH_REGISTER_MODEL(id, ...) \
  static ::megabench::ModelRegistration megabench_model_registration_##id(__VA_ARGS__)
#else
// In a plugin library (megabench::plugin defines MEGABENCH_PLUGIN): the same macro queues the
// model inside the library, and megabench registers the queue only after it has checked the
// versions the library was built against (harness/api/plugin.h). The two entry points are weak,
// so that every file of a plugin may include this header.
#include <torch/version.h>

#include "harness/api/version.h"

namespace megabench::plugin_detail {
inline std::vector<ModelSpec>& queue() {
  static std::vector<ModelSpec> q;
  return q;
}
struct Queued {
  explicit Queued(ModelSpec spec) { queue().push_back(std::move(spec)); }
  template <class O>
  explicit Queued(TypedModelSpec<O> spec) {
    queue().push_back(erase_options(std::move(spec)));
  }
};
}  // namespace megabench::plugin_detail

extern "C" __attribute__((weak, visibility("default"))) const char* megabench_plugin_abi() {
  return MEGABENCH_PLUGIN_ABI;
}
extern "C" __attribute__((weak, visibility("default"))) void megabench_plugin_register() {
  for (auto& spec : ::megabench::plugin_detail::queue())
    ::megabench::Registry::instance().add(std::move(spec));
  ::megabench::plugin_detail::queue().clear();
}

#define MEGABENCH_REGISTER_MODEL(id, ...) \
  static ::megabench::plugin_detail::Queued megabench_model_registration_##id(__VA_ARGS__)
#endif
