#pragma once
// Runtime model plugins: a shared library built against the installed megabench package
// (find_package(megabench), target megabench::plugin) whose files register models with the same
// MEGABENCH_REGISTER_MODEL macro as the built-in ones. `megabench --plugin lib.so ...` or an
// experiment's "plugins": [...] loads it:
//
//   load_plugin("build/libgated_conv.so");   // its models join the registry, origin = the path
//
// Loading checks, before any model is registered: that the library loads (a missing symbol is
// named), that it is a megabench plugin, and that it was built against this megabench version,
// this LibTorch version and this C++ ABI; then that none of its model names is taken. Each is a
// std::runtime_error naming the library, never a crash. Loading the same file twice is a no-op.
#include <string>
#include <vector>

namespace megabench {

/// What this binary requires of a plugin (MEGABENCH_PLUGIN_ABI of harness/api/version.h).
std::string plugin_abi();

/// Loads one plugin library and registers its models; returns their names.
std::vector<std::string> load_plugin(const std::string& path);

/// The canonical paths of the plugins loaded so far, in load order (a worker process loads
/// the same ones).
std::vector<std::string> loaded_plugins();

}  // namespace megabench
