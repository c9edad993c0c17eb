// Fuzzes the results.jsonl reader used by resume and report: the input is written as a results
// file, read by load_result_set (every record upgraded to today's schema), and every point is
// written back and looked up as the report does.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "harness/store/result_set.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path =
      "/tmp/megabench_fuzz_results_" + std::to_string(::getpid()) + ".jsonl";
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  megabench::fuzz::expect_clear_errors([&] {
    const auto set = megabench::load_result_set({path});
    for (const auto& p : set.points) {
      (void)p.to_json().dump();
      for (const char* field : {"name", "seq_len", "global.dim", "/run/seed", "train_step_ms"})
        (void)megabench::lookup(p, field).dump();
    }
  });
  return 0;
}
