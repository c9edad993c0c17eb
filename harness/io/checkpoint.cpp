#include "harness/io/checkpoint.h"

#include <stdexcept>
#include <utility>
#include <vector>

namespace megabench::checkpoint {
namespace {

/// Parameters then buffers, as (name, tensor) pairs; undefined buffers (optional, unset) are
/// skipped.
std::vector<std::pair<std::string, torch::Tensor>> state_of(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> state;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    if (item.value().defined()) state.emplace_back(item.key(), item.value());
  }
  for (const auto& item : module.named_buffers(/*recurse=*/true)) {
    if (item.value().defined()) state.emplace_back(item.key(), item.value());
  }
  return state;
}

std::string shape_str(const torch::Tensor& t) {
  return c10::str(t.sizes());
}

}  // namespace

void load_into(torch::nn::Module& module, const safetensors::File& file, bool strict) {
  const auto state = state_of(module);
  std::vector<std::string> problems;
  std::map<std::string, bool> wanted;
  for (const auto& [name, target] : state) {
    wanted[name] = true;
    auto it = file.tensors.find(name);
    if (it == file.tensors.end()) {
      problems.push_back("tensor '" + name + "' is missing from the checkpoint (model shape " +
                         shape_str(target) + ")");
      continue;
    }
    const torch::Tensor& source = it->second;
    if (source.sizes() != target.sizes()) {
      problems.push_back("tensor '" + name + "' has shape " + shape_str(source) +
                         " in the checkpoint but the model expects " + shape_str(target));
    }
    const bool target_float = torch::isFloatingType(target.scalar_type());
    const bool source_float = torch::isFloatingType(source.scalar_type());
    if (target_float ? !source_float : source.scalar_type() != target.scalar_type()) {
      problems.push_back("tensor '" + name + "' has dtype " + c10::toString(source.scalar_type()) +
                         " in the checkpoint but the model's " +
                         c10::toString(target.scalar_type()) +
                         (target_float ? " needs a floating dtype" : " needs the same dtype"));
    }
  }
  if (strict) {
    for (const auto& [name, unused] : file.tensors) {
      if (!wanted.count(name)) {
        problems.push_back("tensor '" + name +
                           "' in the checkpoint is not in the model (unexpected)");
      }
    }
  }
  if (!problems.empty()) {
    std::string message = "checkpoint does not fit the model (" + std::to_string(problems.size()) +
                          (problems.size() == 1 ? " problem" : " problems") + "):";
    for (const auto& p : problems) message += "\n  " + p;
    throw std::runtime_error(message);
  }

  torch::NoGradGuard no_grad;
  for (const auto& [name, target] : state) {
    torch::Tensor t = target;  // shares storage with the module's tensor
    t.copy_(file.tensors.at(name));
  }
}

void save(const std::string& path, const torch::nn::Module& module,
          const std::map<std::string, std::string>& metadata) {
  auto state = state_of(module);
  for (auto& [name, t] : state) t = t.detach().to(torch::kCPU).contiguous();
  safetensors::save(path, state, metadata);
}

}  // namespace megabench::checkpoint
