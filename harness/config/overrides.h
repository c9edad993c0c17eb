#pragma once
// `--set PATH=VALUE` overrides, applied to the raw experiment document before validation.
//
//   apply_set(doc, "models[0].config.dim=256");   // also "models.0.config.dim", "train.steps=50"
#include "harness/config/json_read.h"

namespace megabench {

/// Applies one `path=value` override to the raw document. The path uses dots and [i] indices; the
/// value is parsed as JSON, else taken as a string. Throws ConfigError on a malformed assignment
/// or a path that runs through a missing index or a non-container.
void apply_set(json& doc, const std::string& assignment);

}  // namespace megabench
