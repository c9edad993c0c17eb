// The test binary's main: Catch2, or -- started as `megabench_tests __worker` by a run under test
// -- the point-isolation worker, with the tests' fault model registered.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstring>
#include <iostream>

#include "harness/cli/worker.h"
#include "tests/fault_model.h"

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], megabench::kWorkerArg) == 0) {
    megabench::testing::ScopedFaultModel fault;
    try {
      return megabench::worker_main();
    } catch (const std::exception& e) {
      std::cerr << "megabench worker: " << e.what() << "\n";
      return 1;
    }
  }
  return Catch::Session().run(argc, argv);
}
