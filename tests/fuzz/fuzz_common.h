#pragma once
// What a fuzz target may see from the code under test: a clear error (std::invalid_argument,
// which ConfigError is, or std::runtime_error) is the contract for bad input. Anything else --
// a crash, a sanitizer report, another exception type (nlohmann's type_error, c10::Error, ...),
// or a hang -- is a finding: the target aborts with the exception's message.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>

namespace megabench::fuzz {

template <class F>
void expect_clear_errors(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument&) {
  } catch (const std::runtime_error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz finding: unexpected exception: %s\n", e.what());
    std::abort();
  }
}

}  // namespace megabench::fuzz
