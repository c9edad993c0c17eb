#include "harness/cli/worker.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "harness/api/format.h"
#include "harness/api/plugin.h"
#include "harness/config/experiment.h"
#include "harness/measure/allocator.h"
#include "harness/measure/memory.h"
#include "harness/measure/point.h"
#include "harness/measure/timing.h"

namespace megabench {
namespace {

constexpr int kRequestFd = 3;  // parent -> worker: header, then one request per point
constexpr int kRecordFd = 4;   // worker -> parent: "ready", then one record per point
constexpr size_t kTailBytes = 8192;
constexpr size_t kTailLines = 20;

// Writes all of `line` (with its '\n'); false when the other end is gone.
bool write_all(int fd, const std::string& line) {
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    left -= static_cast<size_t>(n);
  }
  return true;
}

// Appends what `fd` has now to `buf`; false at end of file.
bool drain(int fd, std::string& buf) {
  char chunk[4096];
  while (true) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n > 0) {
      buf.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return !(n == 0);  // EAGAIN: nothing more now
  }
}

// Resident memory of a process in GB, from /proc (0 when it cannot be read).
double rss_gb(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/statm";
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return 0;
  long pages_total = 0, pages_resident = 0;
  const int got = std::fscanf(f, "%ld %ld", &pages_total, &pages_resident);
  std::fclose(f);
  if (got != 2) return 0;
  return static_cast<double>(pages_resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / 1e9;
}

std::string signal_text(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  const char* desc = ::strsignal(sig);
  return std::string("SIG") + (abbrev ? abbrev : std::to_string(sig).c_str()) + " (" +
         (desc ? desc : "unknown signal") + ")";
}

// Why a worker ended, for the failed record.
std::string death_cause(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    if (sig == SIGKILL)
      return "killed (SIGKILL): out of memory? (the kernel's OOM killer sends SIGKILL)";
    return "crashed: " + signal_text(sig);
  }
  if (WIFEXITED(status)) return "worker exited with status " + std::to_string(WEXITSTATUS(status));
  return "worker ended (wait status " + std::to_string(status) + ")";
}

std::vector<std::string> tail_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t end = text.size();
  while (end > 0 && lines.size() < kTailLines) {
    if (text[end - 1] == '\n') {
      --end;
      continue;
    }
    const size_t nl = text.rfind('\n', end - 1);
    const size_t begin = nl == std::string::npos ? 0 : nl + 1;
    lines.insert(lines.begin(), text.substr(begin, end - begin));
    end = begin;
  }
  return lines;
}

}  // namespace

struct Worker::Child {
  pid_t pid = -1;
  int request = -1, record = -1, output = -1;  // the parent's ends
  std::string record_buf, output_buf;

  enum class Event { line, died, timeout, memory, stopped };
  struct Wait {
    Event event;
    std::string line = "";
    int status = 0;
    double rss = 0;
  };

  void keep_tail() {
    if (output_buf.size() > kTailBytes) output_buf.erase(0, output_buf.size() - kTailBytes);
  }

  // Waits for the next line on the record pipe while watching the worker, the limits and `stop`.
  Wait wait_line(const PointLimits& limits, const volatile std::sig_atomic_t& stop) {
    const auto t0 = Clock::now();
    while (true) {
      const size_t nl = record_buf.find('\n');
      if (nl != std::string::npos) {
        Wait w{Event::line, record_buf.substr(0, nl)};
        record_buf.erase(0, nl + 1);
        return w;
      }
      pollfd fds[2] = {{record, POLLIN, 0}, {output, POLLIN, 0}};
      ::poll(fds, 2, 50);
      drain(output, output_buf);
      keep_tail();
      const bool open = drain(record, record_buf);
      if (record_buf.find('\n') != std::string::npos) continue;
      if (stop) return {Event::stopped};
      int status = 0;
      const bool exited = ::waitpid(pid, &status, WNOHANG) == pid;
      if (!open || exited) {
        if (!exited) ::waitpid(pid, &status, 0);
        drain(output, output_buf);
        keep_tail();
        pid = -1;
        return {Event::died, "", status};
      }
      if (limits.timeout_s && ms_since(t0) * 1e-3 > *limits.timeout_s) return {Event::timeout};
      if (limits.max_memory_gb) {
        const double rss = rss_gb(pid);
        if (rss > *limits.max_memory_gb) return {Event::memory, "", 0, rss};
      }
    }
  }

  void kill_and_reap() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      int status = 0;
      ::waitpid(pid, &status, 0);
      pid = -1;
    }
  }

  ~Child() {
    kill_and_reap();
    for (int fd : {request, record, output})
      if (fd >= 0) ::close(fd);
  }
};

Worker::Worker(std::vector<std::string> command, json experiment, std::string out_dir)
    : command_(std::move(command)),
      header_({{"experiment", std::move(experiment)},
               {"out_dir", std::move(out_dir)},
               {"plugins", loaded_plugins()}}) {
  // A worker that dies makes writes to its pipe fail with EPIPE, never kill the parent.
  std::signal(SIGPIPE, SIG_IGN);
}

Worker::~Worker() {
  stop_child();
}

void Worker::stop_child() {
  delete child_;
  child_ = nullptr;
}

void Worker::start() {
  const auto t0 = Clock::now();
  int req[2], rec[2], out[2];
  if (::pipe2(req, O_CLOEXEC) || ::pipe2(rec, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC))
    throw std::runtime_error(std::string("worker: cannot create pipes: ") + std::strerror(errno));
  std::vector<char*> argv;
  for (auto& a : command_) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("worker: fork: ") + std::strerror(errno));
  if (pid == 0) {
    // Own process group: a terminal's Ctrl-C reaches the parent, which decides. The worker dies
    // with the parent, even when the parent is killed with SIGKILL.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    // Copies above 10 first, so that no dup2 overwrites an end still to be moved; a dup2 copy
    // has no FD_CLOEXEC, so exactly fds 1-4 cross the exec.
    const int r = ::fcntl(req[0], F_DUPFD_CLOEXEC, 10), w = ::fcntl(rec[1], F_DUPFD_CLOEXEC, 10),
              o = ::fcntl(out[1], F_DUPFD_CLOEXEC, 10);
    ::dup2(r, kRequestFd);
    ::dup2(w, kRecordFd);
    ::dup2(o, STDOUT_FILENO);
    ::dup2(o, STDERR_FILENO);
    ::execv(argv[0], argv.data());
    const char msg[] = "megabench worker: exec failed\n";
    (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(req[0]);
  ::close(rec[1]);
  ::close(out[1]);
  child_ = new Child;
  child_->pid = pid;
  child_->request = req[1];
  child_->record = rec[0];
  child_->output = out[0];
  ::fcntl(child_->record, F_SETFL, O_NONBLOCK);
  ::fcntl(child_->output, F_SETFL, O_NONBLOCK);
  ++starts_;
  static const volatile std::sig_atomic_t never = 0;
  if (write_all(child_->request, header_.dump() + "\n")) {
    const auto w = child_->wait_line({}, never);
    if (w.event == Child::Event::line &&
        json::parse(w.line, nullptr, false).value("ready", false)) {
      start_ms_ += ms_since(t0);
      return;
    }
  }
  const auto tail = tail_lines(child_->output_buf);
  stop_child();
  std::string msg = "worker process did not start (" + command_[0] + ")";
  for (const auto& l : tail) msg += "\n  " + l;
  throw std::runtime_error(msg);
}

PointOutcome Worker::run(const Point& point, size_t index, const json& calibration,
                         const PointLimits& limits, const volatile std::sig_atomic_t& stop) {
  if (!child_) start();
  child_->output_buf.clear();
  const auto t0 = Clock::now();
  const json request = {{"index", index}, {"key", point.key}, {"calibration", calibration}};
  // A worker that died since the last point fails this write; wait_line then reaps it.
  (void)write_all(child_->request, request.dump() + "\n");
  const Child::Wait w = child_->wait_line(limits, stop);
  PointOutcome out;
  if (w.event == Child::Event::line) {
    const auto rec = PointRecord::ojson::parse(w.line, nullptr, false);
    if (!rec.is_discarded()) {
      out.record = PointRecord::from_json(rec);
      out.overhead_ms = ms_since(t0) - out.record->elapsed_s.value_or(0) * 1e3;
      return out;
    }
  }
  if (w.event == Child::Event::stopped) {
    stop_child();
    return out;
  }
  std::string cause;
  switch (w.event) {
    case Child::Event::died:
      cause = death_cause(w.status);
      break;
    case Child::Event::timeout:
      cause = "timeout after " + format_double("%g", *limits.timeout_s) + " s";
      break;
    case Child::Event::memory:
      cause = "out of memory: resident memory " + format_double("%.2f", w.rss) +
              " GB passed max_memory_gb " + format_double("%g", *limits.max_memory_gb);
      break;
    default:
      cause = "worker sent an unreadable record: " + w.line.substr(0, 200);
      break;
  }
  const auto tail = tail_lines(child_->output_buf);
  stop_child();  // a fresh worker for the next point
  PointRecord r = failed_record(point, cause);
  r.extra["worker"] = {{"cause", cause}, {"stderr_tail", tail}};
  r.elapsed_s = ms_since(t0) * 1e-3;
  out.record = std::move(r);
  return out;
}

namespace {

bool read_line(FILE* in, std::string& line) {
  line.clear();
  int c;
  while ((c = std::fgetc(in)) != EOF && c != '\n') line += static_cast<char>(c);
  return c != EOF || !line.empty();
}

}  // namespace

int worker_main() {
  FILE* in = ::fdopen(kRequestFd, "r");
  if (!in) {
    std::fprintf(stderr, "megabench worker: no request pipe on fd %d (run by `megabench run`)\n",
                 kRequestFd);
    return 2;
  }
  std::string line;
  if (!read_line(in, line)) return 2;
  const json header = json::parse(line);
  for (const auto& p : header["plugins"]) load_plugin(p.get<std::string>());  // as the parent
  const Experiment exp = parse_experiment(header["experiment"]);
  const std::vector<Point> points = expand(exp);
  const std::string out_dir = header["out_dir"].get<std::string>();
  for (const auto& p : points) {
    if (p.run.wants("memory")) {
      memory::install_cpu_tracking();
      break;
    }
  }
  if (!write_all(kRecordFd, json{{"ready", true}}.dump() + "\n")) return 1;
  while (read_line(in, line)) {
    const json req = json::parse(line);
    const size_t index = req["index"].get<size_t>();
    if (index >= points.size() || points[index].key != req["key"].get<std::string>()) {
      std::fprintf(stderr, "megabench worker: point %zu does not match the parent's sweep\n",
                   index);
      return 3;
    }
    const PointRecord r = measure_point(points[index], req["calibration"], out_dir);
    if (!write_all(kRecordFd,
                   r.to_json().dump(-1, ' ', false, json::error_handler_t::replace) + "\n"))
      return 1;
    allocator::release_free_memory();  // the next point starts from what it allocates itself
  }
  return 0;
}

}  // namespace megabench
