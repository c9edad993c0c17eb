#pragma once
// Model checkpoints as safetensors files. Names are the module's named_parameters() and
// named_buffers() keys, which match the Python references' state_dict keys, so a checkpoint saved
// by `safetensors.torch.save_file(model.state_dict(), ...)` loads into the C++ model and back.
#include <torch/torch.h>

#include <map>
#include <string>

#include "harness/io/safetensors.h"

namespace megabench::checkpoint {

/// Copies the file's tensors into module.named_parameters() and named_buffers() by name.
/// Everything is checked before anything is copied, so a failed load leaves the module unchanged.
/// Throws std::runtime_error naming each offending tensor: missing from the file, unexpected in the
/// file (only when `strict`), shape mismatch, or a dtype that cannot convert (a floating parameter
/// needs a floating tensor; a non-floating one needs the same dtype). Floating dtypes convert, e.g.
/// an F32 file loads into a float64 model. Tensors land on each parameter's own device.
void load_into(torch::nn::Module& module, const safetensors::File& file, bool strict = true);

/// Saves named_parameters() and named_buffers() as contiguous CPU copies, with `metadata` such as
/// {"config": <resolved JSON config>, "model": "megabyte"}. Written atomically (see
/// safetensors::save).
void save(const std::string& path, const torch::nn::Module& module,
          const std::map<std::string, std::string>& metadata);

}  // namespace megabench::checkpoint
