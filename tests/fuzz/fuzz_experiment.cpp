// Fuzzes the experiment parser and its validation: bytes -> JSON -> parse_experiment -> expand
// (every point's model config resolved by its plugin), as `megabench run` reads a file.
#include <cstddef>
#include <cstdint>
#include <string>

#include "harness/config/expand.h"
#include "harness/config/experiment.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto doc = megabench::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return 0;
  megabench::fuzz::expect_clear_errors([&] {
    const auto exp = megabench::parse_experiment(doc);
    (void)megabench::expand(exp);
  });
  return 0;
}
