#pragma once
// Graceful stop for `megabench run`: while a StopSignals is alive, the first SIGINT or SIGTERM
// only sets a flag (the run abandons or finishes the point in flight, writes nothing partial and
// says how to resume); a second one ends the process at once with 128 + the signal.
//
//   StopSignals stop;
//   while (more && !stop.requested()) { ... }
//   if (stop.requested()) throw Interrupted(stop.signal());
#include <csignal>
#include <stdexcept>
#include <string>

namespace megabench {

class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  bool requested() const { return flag() != 0; }
  int signal() const { return static_cast<int>(flag()); }
  /// The flag itself (0, or the signal received), for loops that poll it.
  static const volatile std::sig_atomic_t& flag();

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

/// Thrown by the run command after a graceful stop; main() exits with 128 + signal.
struct Interrupted : std::runtime_error {
  explicit Interrupted(int sig)
      : std::runtime_error("stopped by signal " + std::to_string(sig)), signal(sig) {}
  int signal;
};

}  // namespace megabench
