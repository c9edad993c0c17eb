#include "harness/api/plugin.h"

#include <dlfcn.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <stdexcept>

#include "harness/api/registry.h"
#include "harness/api/version.h"

namespace megabench {
namespace {

std::vector<std::string>& loaded() {
  static std::vector<std::string> files;  // canonical paths, in load order
  return files;
}

[[noreturn]] void fail(const std::string& path, const std::string& why) {
  throw std::runtime_error("plugin '" + path + "': " + why);
}

}  // namespace

std::string plugin_abi() {
  return MEGABENCH_PLUGIN_ABI;
}

std::vector<std::string> load_plugin(const std::string& path) {
  std::error_code ec;
  const auto canonical = std::filesystem::canonical(path, ec);
  if (ec) fail(path, "cannot find the file (" + ec.message() + ")");
  if (std::find(loaded().begin(), loaded().end(), canonical.string()) != loaded().end()) return {};
  // RTLD_NOW: an undefined symbol is reported here, by name, not later as a crash.
  void* handle = ::dlopen(canonical.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) fail(path, std::string("cannot load: ") + ::dlerror());
  using AbiFn = const char* (*)();
  using RegisterFn = void (*)();
  auto abi = reinterpret_cast<AbiFn>(::dlsym(handle, "megabench_plugin_abi"));
  auto reg = reinterpret_cast<RegisterFn>(::dlsym(handle, "megabench_plugin_register"));
  if (!abi || !reg) {
    ::dlclose(handle);
    fail(path,
         "not a megabench plugin (no megabench_plugin_abi / megabench_plugin_register); build it "
         "with find_package(megabench) and link megabench::plugin (examples/plugin/)");
  }
  const std::string theirs = abi();
  if (theirs != plugin_abi()) {
    ::dlclose(handle);
    fail(path, "built against " + theirs + ", but this is " + plugin_abi() +
                   "; rebuild the plugin against this megabench");
  }
  const auto before = Registry::instance().names();
  try {
    const Registry::OriginScope origin(canonical.string());
    reg();
  } catch (const std::exception& e) {
    // Take back what this library registered before the failure; keep it loaded (its code may
    // still be referenced by the models it registered before), but fail.
    const std::set<std::string> keep(before.begin(), before.end());
    for (const auto& n : Registry::instance().names())
      if (!keep.count(n)) Registry::instance().remove(n);
    fail(path, e.what());
  }
  loaded().push_back(canonical.string());
  std::vector<std::string> added;
  const std::set<std::string> old(before.begin(), before.end());
  for (const auto& n : Registry::instance().names())
    if (!old.count(n)) added.push_back(n);
  return added;
}

std::vector<std::string> loaded_plugins() {
  return loaded();
}

}  // namespace megabench
