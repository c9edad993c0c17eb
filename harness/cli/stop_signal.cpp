#include "harness/cli/stop_signal.h"

#include <unistd.h>

namespace megabench {
namespace {

volatile std::sig_atomic_t g_stop = 0;

void on_stop_signal(int sig) {
  if (g_stop != 0) ::_exit(128 + sig);  // the second signal: at once
  g_stop = sig;
}

}  // namespace

StopSignals::StopSignals() {
  g_stop = 0;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocking poll or read returns EINTR and sees the flag
  ::sigaction(SIGINT, &sa, &old_int_);
  ::sigaction(SIGTERM, &sa, &old_term_);
}

StopSignals::~StopSignals() {
  ::sigaction(SIGINT, &old_int_, nullptr);
  ::sigaction(SIGTERM, &old_term_, nullptr);
}

const volatile std::sig_atomic_t& StopSignals::flag() {
  return g_stop;
}

}  // namespace megabench
