#pragma once
// A model that fails on purpose when the harness builds it, for the point-isolation tests:
// "segv" raises SIGSEGV, "abort" calls std::abort, "alloc" touches memory until it is stopped,
// "sleep" sleeps for a minute, "throw" throws; "ok" builds the tiny Transformer. Each writes a
// line to stderr first, which the failed record's stderr tail must keep.
//
//   ScopedFaultModel fault;   // registers "fault" in this process; the worker registers it too
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "harness/api/registry.h"

namespace megabench::testing {

inline ModelSpec fault_spec() {
  ModelSpec s;
  s.name = "fault";
  s.description = "test model: fails on purpose when built";
  s.options = {{"kind", "string", "ok", "segv | abort | alloc | sleep | throw | ok"}};
  s.resolve = [](const json& c) {
    return apply_option_defaults("fault", {{"kind", "string", "ok", ""}}, c);
  };
  s.parse = [](const json& r) -> std::shared_ptr<const ModelOptions> {
    return std::make_shared<TypedOptions<std::string>>(r["kind"].get<std::string>());
  };
  s.build = [](const ModelOptions& o) -> std::unique_ptr<ByteModel> {
    const std::string kind = static_cast<const TypedOptions<std::string>&>(o).value;
    std::fprintf(stderr, "fault model: about to %s\n", kind.c_str());
    std::fflush(stderr);
    if (kind == "segv") std::raise(SIGSEGV);
    if (kind == "abort") std::abort();
    if (kind == "throw") throw std::runtime_error("fault model: thrown on purpose");
    if (kind == "sleep") ::sleep(60);
    if (kind == "alloc") {
      std::vector<char*> blocks;
      for (int i = 0; i < 64; ++i) {  // up to 16 GB, 256 MB at a time, each page touched
        blocks.push_back(static_cast<char*>(std::malloc(256 << 20)));
        std::memset(blocks.back(), 1, 256 << 20);
        ::usleep(20000);
      }
    }
    const auto& tiny = Registry::instance().get("transformer");
    return tiny.build(*tiny.parse(tiny.resolve(tiny.tiny_config)));
  };
  return s;
}

struct ScopedFaultModel {
  ScopedFaultModel() {
    if (!Registry::instance().has("fault")) Registry::instance().add(fault_spec());
  }
  ~ScopedFaultModel() { Registry::instance().remove("fault"); }
};

}  // namespace megabench::testing
