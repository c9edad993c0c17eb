#pragma once
// The checkpoint commands of the CLI: `megabench logits` and `megabench generate`.
#include <memory>
#include <string>

#include "harness/api/model.h"
#include "harness/api/registry.h"

namespace CLI {
class App;
}

namespace megabench {

struct LoadedModel {
  std::string name;
  json config;  // resolved
  std::unique_ptr<ByteModel> model;
};

/// Builds the model a checkpoint's metadata names, in the checkpoint's dtype, and loads its
/// tensors by name (strict). Throws with the path and the problem.
LoadedModel load_checkpoint_model(const std::string& path);

/// Adds the `logits` and `generate` subcommands; their callbacks throw on error.
void add_model_commands(CLI::App& app);

}  // namespace megabench
