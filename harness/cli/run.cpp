#include "harness/cli/run.h"

#include <ATen/Parallel.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <sstream>

#ifdef MEGABENCH_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

#include "harness/api/format.h"
#include "harness/cli/stop_signal.h"
#include "harness/cli/worker.h"
#include "harness/config/expand.h"
#include "harness/measure/memory.h"
#include "harness/measure/point.h"
#include "harness/measure/timing.h"
#include "harness/report/report.h"
#include "harness/store/folder_lock.h"
#include "harness/store/provenance.h"

namespace megabench {
namespace {

std::string mmss(double s) {
  char b[32];
  std::snprintf(b, sizeof b, "%d:%02d", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  return b;
}

// The device as the context record names it: "cpu" or "cuda:0 <name>".
std::string device_text(const torch::Device& device) {
  if (!device.is_cuda()) return "cpu";
#ifdef MEGABENCH_WITH_CUDA
  return std::string("cuda:0 ") + at::cuda::getCurrentDeviceProperties()->name;
#else
  return "cuda:0";
#endif
}

void log_calibration(const json& c, std::ostream& log) {
  log << "calibration: " << c["matmul_dtype"].get<std::string>() << " matmul " << c["matmul_n"]
      << "^3 at " << format_value(c["matmul_gflops_per_s"]) << " GFLOP/s, triad "
      << format_value(c["triad_gb_per_s"]) << " GB/s, read " << format_value(c["read_gb_per_s"])
      << " GB/s (" << c.value("read_kernel", std::string("mv")) << ")\n";
}

// Checks the device, installs memory tracking when a point needs it, and measures the matmul
// peak in the run's compute dtype (bf16 runs are measured against the bf16 peak).
json prepare_device(const Experiment& exp, const std::vector<const Point*>& mine,
                    std::ostream& log) {
  const bool any_cuda =
      std::any_of(mine.begin(), mine.end(), [](const Point* p) { return p->run.device == "cuda"; });
  if (any_cuda && !torch::cuda::is_available()) {
    throw ConfigError("device",
                      "\"cuda\" requested but no CUDA device is available "
                      "(torch::cuda::is_available() is false)");
  }
  if (std::any_of(mine.begin(), mine.end(),
                  [](const Point* p) { return p->run.wants("memory"); })) {
    memory::install_cpu_tracking();
  }
  const torch::Device device = exp.run.torch_device();
  if (exp.run.threads > 0) at::set_num_threads(static_cast<int>(exp.run.threads));
  json calibration = calibrate(device, exp.run.scalar_type());
  log_calibration(calibration, log);
  calibration["device_text"] = device_text(device);
  return calibration;
}

// The measuring loop's state: the store, the counts, the machine's latest calibration, and the
// log lines.
struct Loop {
  ResultsFile& out;
  RunSummary& summary;
  std::ostream& log;
  bool progress;
  json calibration;
  const Experiment& exp;
  double calibrate_every_s;
  std::vector<std::string> failures;
  Clock::time_point t_run = Clock::now();
  Clock::time_point t_calibrated = Clock::now();
  double measured_s = 0;
  size_t measured = 0;

  // A calibration record: the machine's state now (a contended machine reads low).
  void recalibrate() {
    calibration = calibrate(exp.run.torch_device(), exp.run.scalar_type());
    t_calibrated = Clock::now();
    log_calibration(calibration, log);
    json rec = {{"type", "calibration"}, {"calibration", calibration}};
    const auto t_store = Clock::now();
    out.append(rec);
    summary.store_ms += ms_since(t_store);
  }

  // The record gets the latest calibration, the time it was measured and the provenance.
  void stamp(PointRecord& r) const {
    r.extra["calibration"] = {{"matmul_dtype", calibration["matmul_dtype"]},
                              {"matmul_gflops_per_s", calibration["matmul_gflops_per_s"]},
                              {"triad_gb_per_s", calibration["triad_gb_per_s"]},
                              {"read_gb_per_s", calibration.value("read_gb_per_s", json())},
                              {"read_kernel", calibration.value("read_kernel", json())},
                              {"date", calibration["date"]}};
    r.extra["provenance"] = provenance();
    r.extra["measured_at"] = utc_now_iso();
  }

  void show_progress(size_t position, size_t total, const Point& p) {
    // ETA: the mean time of the points measured so far in this invocation, times those left.
    const size_t remaining = total - position + 1;
    const std::string eta =
        measured ? mmss(measured_s / static_cast<double>(measured) * remaining) : "?";
    log << "\r\033[K[" << position << "/" << total << "] " << p.name << "  elapsed "
        << mmss(ms_since(t_run) * 1e-3) << "  ETA " << eta << std::flush;
  }

  void record(size_t position, size_t total, const Point& p, PointRecord r) {
    stamp(r);
    const auto t_store = Clock::now();
    out.append(r.to_json());
    summary.store_ms += ms_since(t_store);
    measured_s += r.elapsed_s.value_or(0);
    ++measured;
    const auto& overhead = r.extra["harness_overhead"];
    summary.timed_ms += overhead["timed_ms"].get<double>();
    summary.timing_overhead_ms += overhead["between_repeats_ms"].get<double>();
    (r.ok() ? summary.ok : summary.failed)++;
    if (!r.ok()) failures.push_back(p.name + ": " + r.error);
    if (progress) log << "\r\033[K";
    log << "[" << position << "/" << total << "] " << p.name << " " << (r.ok() ? "ok" : "FAILED")
        << " (" << format_value(r.elapsed_s.value_or(0)) << " s)";
    if (!r.ok()) log << ": " << r.error;
    if (r.extra.contains("profile_error"))
      log << " (profile skipped: " << r.extra["profile_error"].get<std::string>() << ")";
    log << "\n" << std::flush;
  }
};

void finish(const std::string& outdir, const Loop& loop, double run_ms, std::ostream& log) {
  // The report of every point in the folder (earlier runs and other shards included): tables,
  // plots and fits are written beside results.jsonl, and the table is printed.
  try {
    std::ostringstream report_log;
    report::write({outdir}, outdir, report_log);
    log << "\n" << report::markdown_table({outdir}) << "report written to " << outdir << "\n";
  } catch (const std::exception& e) {
    log << "\n(report unavailable: " << e.what() << ")\n";
  }
  const RunSummary& s = loop.summary;
  log << "\nsummary: " << s.in_shard << " points: " << s.ok << " ok, " << s.failed << " failed, "
      << s.skipped << " skipped (already recorded) -> " << s.results_file << "\n";
  if (s.timed_ms > 0) {
    log << "harness overhead: "
        << format_value(100 * s.timing_overhead_ms / (s.timed_ms + s.timing_overhead_ms))
        << "% of the timed loops (timer and bookkeeping between repeats); writing results took "
        << format_value(s.store_ms) << " ms ("
        << format_value(run_ms > 0 ? 100 * s.store_ms / run_ms : 0) << "% of the run)\n";
  }
  if (s.worker_starts > 0) {
    auto o = s.isolation_overhead_ms;
    std::sort(o.begin(), o.end());
    log << "isolation: " << s.worker_starts << " worker start" << (s.worker_starts > 1 ? "s" : "")
        << " (" << format_value(s.worker_start_ms) << " ms in all), "
        << (o.empty() ? std::string("no point measured")
                      : format_value(o[o.size() / 2]) + " ms per point (median)")
        << "\n";
  }
  for (const auto& f : loop.failures) log << "  failed: " << f << "\n";
}

// Measures one point: in the worker process (isolation "process"), or here. nullopt: a stop
// signal abandoned it.
std::optional<PointRecord> measure_one(const Point& p, size_t index, const std::string& outdir,
                                       Worker* worker, Loop& loop) {
  if (!worker) return measure_point(p, loop.calibration, outdir);
  const PointLimits limits{loop.exp.run.timeout_s, loop.exp.run.max_memory_gb};
  PointOutcome o = worker->run(p, index, loop.calibration, limits, StopSignals::flag());
  if (o.record && !o.record->extra.contains("worker"))
    loop.summary.isolation_overhead_ms.push_back(o.overhead_ms);
  return std::move(o.record);
}

void measure_all(const std::vector<const Point*>& mine, const std::string& outdir, Worker* worker,
                 Loop& loop) {
  const auto done = completed_keys(outdir);
  size_t position = 0;
  for (const Point* p : mine) {
    ++position;
    if (done.count(p->key)) {
      ++loop.summary.skipped;
      continue;
    }
    if (StopSignals::flag()) break;
    if (ms_since(loop.t_calibrated) * 1e-3 >= loop.calibrate_every_s) loop.recalibrate();
    if (loop.progress) loop.show_progress(position, mine.size(), *p);
    auto record = measure_one(*p, p->index, outdir, worker, loop);
    if (!record) break;  // abandoned by a stop signal: nothing written for it
    loop.record(position, mine.size(), *p, std::move(*record));
  }
  if (worker) {
    loop.summary.worker_starts = worker->starts();
    loop.summary.worker_start_ms = worker->start_ms();
  }
  if (loop.measured > 0 && !StopSignals::flag()) loop.recalibrate();  // and at the end
}

// After a SIGINT / SIGTERM: what was recorded, and how to resume.
void report_stop(const RunSummary& s, int sig, std::ostream& log) {
  log << "\nstopped: " << s.skipped + s.ok + s.failed << " of " << s.in_shard
      << " points recorded; rerun the same command to resume ("
      << (sig == SIGINT    ? "SIGINT"
          : sig == SIGTERM ? "SIGTERM"
                           : "signal " + std::to_string(sig))
      << ")\n"
      << std::flush;
}

}  // namespace

RunSummary run_experiment(const RunOptions& options, std::ostream& log) {
  json doc = load_json_file(options.experiment_path);
  for (const auto& s : options.sets) apply_set(doc, s);
  load_experiment_plugins(doc, options.experiment_path);
  const Experiment exp = parse_experiment(doc);
  const std::vector<Point> points =
      expand(exp);  // every point's config resolved before anything runs

  RunSummary summary;
  summary.points = points.size();
  std::vector<const Point*> mine;
  for (const auto& p : points) {
    if (static_cast<int>(p.index % static_cast<size_t>(options.shard.count)) == options.shard.index)
      mine.push_back(&p);
  }
  summary.in_shard = mine.size();
  const std::string outdir = options.outdir.empty() ? "results/" + exp.name : options.outdir;
  summary.results_file = results_path(outdir, options.shard);
  log << "experiment " << exp.name << ": " << points.size() << " points";
  if (options.shard.active()) log << ", shard " << options.shard.text() << " runs " << mine.size();
  log << "\n";
  // A dry run only lists the points, so it works on a machine without the GPU the run needs.
  if (options.dry_run) {
    for (const Point* p : mine) log << "  " << p->key << "  " << p->name << "\n";
    return summary;
  }

  const FolderLock lock(outdir, options.shard);  // one writer per folder (and shard file)
  const StopSignals stop;
  json calibration = prepare_device(exp, mine, log);
  const std::string device = calibration["device_text"].get<std::string>();
  calibration.erase("device_text");
  ResultsFile out(summary.results_file);
  if (out.truncated_bytes()) {
    log << "warning: the last line of " << out.path() << " was cut short (" << out.truncated_bytes()
        << " bytes, a run killed mid-write); set aside in " << out.partial_path()
        << ", and its point is measured again\n";
  }
  const auto t_store = Clock::now();
  out.append(context_record(exp.resolved, device, options.shard, calibration));
  summary.store_ms += ms_since(t_store);

  const bool progress = options.progress < 0 ? ::isatty(STDOUT_FILENO) != 0 : options.progress == 1;
  Loop loop{out, summary, log, progress, calibration, exp, options.calibrate_every_s, {}};
  std::unique_ptr<Worker> worker;
  if (exp.run.isolation == "process") {
    auto command = options.worker_command;
    if (command.empty()) command = {"/proc/self/exe", kWorkerArg};
    worker = std::make_unique<Worker>(command, doc, outdir);
  }
  measure_all(mine, outdir, worker.get(), loop);
  worker.reset();
  if (stop.requested()) {
    summary.stopped_by = stop.signal();
    report_stop(summary, stop.signal(), log);
    return summary;
  }
  finish(outdir, loop, ms_since(loop.t_run), log);
  return summary;
}

}  // namespace megabench
