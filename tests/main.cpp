// The test binary's main: Catch2, or -- started as `megabench_tests __worker` by a run under test
// -- the point-isolation worker, with the tests' fault model registered.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstring>
#include <iostream>

#include "harness/cli/worker.h"
#include "harness/measure/profiler.h"
#include "tests/fault_model.h"

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], megabench::kWorkerArg) == 0) {
    megabench::testing::ScopedFaultModel fault;
    try {
      return megabench::end_process(megabench::worker_main());
    } catch (const std::exception& e) {
      std::cerr << "megabench worker: " << e.what() << "\n";
      return megabench::end_process(1);
    }
  }
  // Catch's session is destroyed (its reporters flushed) before end_process.
  const int rc = Catch::Session().run(argc, argv);
  return megabench::end_process(rc);
}
