// Fuzzes the --set parser: each input line is one PATH=VALUE override, applied in order to a
// small valid experiment, which is then validated and expanded as `megabench run --set` does.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "harness/config/expand.h"
#include "harness/config/experiment.h"
#include "tests/fuzz/fuzz_common.h"

namespace {
const char* kBase = R"({
  "name": "fuzz",
  "models": [{"name": "megabyte", "label": "mb", "config": {"dim": [32, 16], "depth": [1, 1],
              "seq_len": 64, "patch": 8, "heads": 2, "dim_head": 32}},
             {"name": "transformer", "config": {"dim": 32, "depth": 1, "seq_len": 64}}],
  "sweep": {"grid": {"seed": [0, 1]}},
  "metrics": ["params", "flops"],
  "train": {"steps": 2},
  "report": {"plots": [{"x": "seed", "y": "params"}]}
})";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  megabench::fuzz::expect_clear_errors([&] {
    megabench::json doc = megabench::json::parse(kBase);
    std::string line;
    for (int n = 0; n < 8 && std::getline(in, line); ++n) megabench::apply_set(doc, line);
    (void)megabench::expand(megabench::parse_experiment(doc));
  });
  return 0;
}
