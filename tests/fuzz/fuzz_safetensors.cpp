// Fuzzes the safetensors reader (header and tensors), as `megabench logits` / `generate` read an
// untrusted checkpoint: parse, then touch every tensor and the metadata.
#include <cstddef>
#include <cstdint>
#include <string>

#include "harness/io/safetensors.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  megabench::fuzz::expect_clear_errors([&] {
    const auto file = megabench::safetensors::parse(bytes, "fuzz input");
    for (const auto& [name, t] : file.tensors) {
      if (t.numel() > 0) (void)t.to(torch::kFloat64).sum().item<double>();
    }
    for (const auto& [k, v] : file.metadata) (void)(k.size() + v.size());
  });
  return 0;
}
