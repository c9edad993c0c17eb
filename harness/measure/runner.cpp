#include "harness/measure/runner.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <c10/util/Exception.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <iostream>
#include <numeric>
#include <set>
#include <sstream>

#include "harness/io/data.h"
#include "harness/measure/profiler.h"
#include "harness/api/registry.h"

#ifdef MEGABENCH_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif
#include "harness/measure/memory.h"
#include "harness/report/report.h"

namespace megabench {

AutocastGuard::AutocastGuard(const torch::Device& device, torch::ScalarType dtype) {
  if (dtype == torch::kFloat32) return;
  type_ = device.type();
  active_ = true;
  prev_enabled_ = at::autocast::is_autocast_enabled(type_);
  prev_dtype_ = at::autocast::get_autocast_dtype(type_);
  at::autocast::set_autocast_enabled(type_, true);
  at::autocast::set_autocast_dtype(type_, dtype);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(type_, prev_enabled_);
  at::autocast::set_autocast_dtype(type_, prev_dtype_);
}

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

torch::ScalarType dtype_of(const std::string& name) {
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "float16") return torch::kFloat16;
  return torch::kFloat32;
}

// Loss scaling for float16 training (bfloat16 and float32 need none): scale the loss, unscale the
// gradients, skip the step and halve the scale when a gradient overflows, double it after
// `growth_interval` clean steps. LibTorch has no C++ GradScaler, hence this small one.
class LossScaler {
 public:
  explicit LossScaler(bool enabled) : enabled_(enabled) {}
  torch::Tensor scale(const torch::Tensor& loss) const { return enabled_ ? loss * scale_ : loss; }
  /// Unscales the gradients; false when they hold inf/NaN (the caller skips the step).
  bool unscale(torch::optim::Optimizer& opt) {
    if (!enabled_) return true;
    bool finite = true;
    for (auto& group : opt.param_groups()) {
      for (auto& p : group.params()) {
        if (!p.grad().defined()) continue;
        p.mutable_grad().div_(scale_);
        if (!torch::isfinite(p.grad()).all().item<bool>()) finite = false;
      }
    }
    if (!finite) {
      scale_ /= 2;
      clean_ = 0;
    } else if (++clean_ == kGrowthInterval) {
      scale_ *= 2;
      clean_ = 0;
    }
    return finite;
  }

 private:
  static constexpr int kGrowthInterval = 2000;
  bool enabled_;
  double scale_ = 65536.0;
  int clean_ = 0;
};

struct Overhead {
  double measured_ms = 0, loop_ms = 0;
  void add(const Timing& t) {
    measured_ms += t.measured_ms;
    loop_ms += t.loop_ms;
  }
};

torch::Tensor random_bytes(int64_t batch, int64_t len, const torch::Device& device) {
  return torch::randint(0, 256, {batch, len}, torch::TensorOptions().dtype(torch::kLong)).to(device);
}

void check_finite(const torch::Tensor& loss, const std::string& where) {
  double v = loss.item<double>();
  if (!std::isfinite(v)) throw std::runtime_error(where + ": loss is " + std::to_string(v));
}

// One training step: forward under autocast, backward, clip, AdamW step. Returns the loss.
torch::Tensor train_step(ByteModel& model, torch::optim::AdamW& opt, LossScaler& scaler, const torch::Tensor& x,
                         const torch::Device& device, torch::ScalarType dtype, double grad_clip) {
  opt.zero_grad();
  torch::Tensor loss;
  {
    AutocastGuard autocast(device, dtype);
    loss = model.loss(x);
  }
  scaler.scale(loss).backward();
  if (scaler.unscale(opt)) {
    if (grad_clip > 0) torch::nn::utils::clip_grad_norm_(model.module().parameters(), grad_clip);
    opt.step();
  }
  return loss.detach();
}

torch::optim::AdamW make_optimizer(ByteModel& model, const json& train) {
  return torch::optim::AdamW(model.module().parameters(),
                             torch::optim::AdamWOptions(train["lr"].get<double>())
                                 .weight_decay(train["weight_decay"].get<double>()));
}

// Windows of `len` bytes at random offsets of `bytes`, (B, len) int64.
torch::Tensor sample_windows(const std::vector<uint8_t>& bytes, int64_t batch, int64_t len) {
  auto all = torch::from_blob(const_cast<uint8_t*>(bytes.data()), {static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  auto starts = torch::randint(0, static_cast<int64_t>(bytes.size()) - len + 1, {batch}, torch::kLong);
  auto offsets = starts.unsqueeze(1) + torch::arange(len, torch::kLong).unsqueeze(0);  // (B, len)
  return all.index({offsets}).to(torch::kLong);
}

void measure_bpb(ByteModel& model, const ModelSpec& spec, const Point& p, const torch::Device& device,
                 torch::ScalarType dtype, json& metrics, json& record) {
  const json& train = p.run["train"];
  const auto& data = data::load_cached(p.run["data"]);
  record["data"] = data.info;
  const int64_t T = model.max_seq_len();
  const int64_t B = train["batch"].get<int64_t>();
  if (static_cast<int64_t>(data.train.size()) < T) {
    throw std::runtime_error("bpb: the training split has " + std::to_string(data.train.size()) +
                             " bytes, fewer than one window of " + std::to_string(T));
  }
  const double flops_train_per_byte = spec.flops ? 3 * spec.flops(p.model_config).total() : 0;
  // The analytical FLOPs are per predicted byte, and a window of T predicts `predicted` bytes
  // (T, except for models that predict only part of it, like Perceiver AR's latents).
  int64_t predicted;
  {
    torch::NoGradGuard no_grad;
    model.module().eval();
    predicted = model.byte_nll(sample_windows(data.train, 1, T).to(device)).size(1);
  }
  int64_t steps;
  if (!train["flop_budget"].is_null()) {
    if (flops_train_per_byte <= 0) throw std::runtime_error("bpb: train.flop_budget needs the model's analytical FLOPs");
    const double per_step = flops_train_per_byte * static_cast<double>(B * predicted);
    steps = static_cast<int64_t>(train["flop_budget"].get<double>() / per_step);
    if (steps < 1) {
      throw std::runtime_error("bpb: train.flop_budget " + train["flop_budget"].dump() +
                               " is less than one step (" + std::to_string(per_step) + " FLOPs)");
    }
  } else {
    steps = train["steps"].get<int64_t>();
  }

  model.module().train();
  auto opt = make_optimizer(model, train);
  LossScaler scaler(dtype == torch::kFloat16);
  std::vector<double> tail;
  for (int64_t s = 0; s < steps; ++s) {
    auto x = sample_windows(data.train, B, T).to(device);
    auto loss = train_step(model, opt, scaler, x, device, dtype, train["grad_clip"].get<double>());
    double v = loss.item<double>();
    if (!std::isfinite(v)) throw std::runtime_error("bpb: training loss is " + std::to_string(v) + " at step " + std::to_string(s));
    tail.push_back(v);
    if (tail.size() > 10) tail.erase(tail.begin());
  }
  metrics["train_steps"] = steps;
  metrics["train_flops"] = flops_train_per_byte * static_cast<double>(steps * B * predicted);
  metrics["train_bpb_final"] = std::accumulate(tail.begin(), tail.end(), 0.0) / tail.size() / std::log(2.0);

  // Held-out: windows of T advance by N, the bytes each window predicts (N == T except for models
  // that predict only the tail of their window), so every evaluated byte is predicted exactly once.
  model.module().eval();
  torch::NoGradGuard no_grad;
  AutocastGuard autocast(device, dtype);
  const auto held = std::min<int64_t>(train["eval_bytes"].get<int64_t>(), static_cast<int64_t>(data.held_out.size()));
  auto stream = torch::from_blob(const_cast<uint8_t*>(data.held_out.data()), {held}, torch::kUInt8).to(torch::kLong);
  if (held < T) {
    throw std::runtime_error("bpb: " + std::to_string(held) + " held-out bytes are fewer than one window of " + std::to_string(T));
  }
  const int64_t N = predicted;
  int64_t windows = (held - (T - N)) / N;
  double nats = 0;
  for (int64_t w0 = 0; w0 < windows; w0 += B) {
    std::vector<torch::Tensor> rows;
    for (int64_t w = w0; w < std::min(windows, w0 + B); ++w) rows.push_back(stream.slice(0, w * N, w * N + T));
    auto nll = model.byte_nll(torch::stack(rows).to(device));  // (b, N)
    nats += nll.to(torch::kDouble).sum().item<double>();
  }
  const double counted = static_cast<double>(windows * N);
  if (!std::isfinite(nats)) throw std::runtime_error("bpb: held-out loss is not finite");
  metrics["bpb"] = nats / counted / std::log(2.0);
  record["data"]["eval_bytes"] = windows * N;
}

// --- profiling (the experiment's "profile": true) ------------------------------------------------

// A file name for a point: "megabyte/seq_len=1024/patch=8" -> "megabyte__seq_len=1024__patch=8".
std::string profile_file_stem(const std::string& point_name) {
  std::string out;
  for (char c : point_name) {
    if (c == '/') {
      out += "__";
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '=') {
      out += c;
    } else {
      out += '_';
    }
  }
  return out.empty() ? "point" : out;
}

// The component table (ProfileResult::table_markdown) and the kernels (CUDA) or top-level ops (CPU)
// that took the most time, summed by name within each component.
std::string profile_section_markdown(const std::string& title, const ProfileResult& r, size_t top = 15) {
  struct Row {
    std::string name, component;
    int64_t calls = 0;
    double ms = 0;
  };
  std::map<std::pair<std::string, std::string>, Row> by_name;
  for (const auto& k : r.kernels) {
    Row& row = by_name[{k.component, k.name}];
    row.name = k.name;
    row.component = k.component;
    row.calls += 1;
    row.ms += k.duration_ms();
  }
  std::vector<Row> rows;
  for (auto& [key, row] : by_name) rows.push_back(std::move(row));
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.ms > b.ms; });
  std::ostringstream out;
  out << "## " << title << "\n\n" << r.table_markdown() << "\n";
  const bool cpu = r.source == "libtorch";
  out << "Top " << std::min(top, rows.size()) << " " << (cpu ? "ops" : "kernels") << " of " << rows.size()
      << " (by total time):\n\n| " << (cpu ? "op" : "kernel") << " | component | calls | ms | % of total |\n"
      << "|---|---|---:|---:|---:|\n";
  for (size_t i = 0; i < std::min(top, rows.size()); ++i) {
    const auto& row = rows[i];
    std::string name = row.name;
    for (auto& c : name) {
      if (c == '|' || c == '\n') c = ' ';  // keep the table a table
    }
    if (name.size() > 120) name = name.substr(0, 117) + "...";
    char ms[32], pct[32];
    std::snprintf(ms, sizeof ms, "%.3f", row.ms);
    std::snprintf(pct, sizeof pct, "%.1f", r.total_ms > 0 ? 100 * row.ms / r.total_ms : 0.0);
    out << "| `" << name << "` | " << row.component << " | " << row.calls << " | " << ms << " | " << pct << " |\n";
  }
  out << "\n";
  return out.str();
}

// One profiled forward pass (and one profiled training step when "train_step" is measured), after
// the timed metrics and outside their measured regions. Writes PROFILE_DIR/<point>.md and .json and
// adds the profile_* metrics. A failure (no CUPTI, no GPU, out of memory) becomes the record's
// "profile_error" (and a "warnings" entry) and leaves the point's other metrics alone.
void profile_point(ByteModel& model, const Point& p, const std::set<std::string>& wanted, const torch::Device& device,
                   torch::ScalarType dtype, int64_t batch, const std::string& profile_dir, json& metrics,
                   json& record) {
  try {
    const int64_t T = model.max_seq_len();
    auto x = random_bytes(batch, T, device);
    std::ostringstream md;
    json doc = {{"point", p.name}, {"key", p.key}, {"model", p.model}, {"axes", p.axes}};
    md << "# Profile of " << p.name << "\n\n"
       << "One profiled call after the timed metrics; components are the models' profile::Range names, "
          "times exclusive of nested ranges; \"other\" is time outside any range.\n\n";

    {
      model.module().eval();
      torch::NoGradGuard no_grad;
      AutocastGuard autocast(device, dtype);
      model.logits(x);  // one unprofiled call first, so lazy initialization stays out of the profile
      if (device.is_cuda()) torch::cuda::synchronize();
      Profiler prof(device);
      prof.start();
      model.logits(x);
      ProfileResult r = prof.stop();
      double attention = 0;
      for (const auto& [component, ms] : r.component_ms) {
        metrics["profile_forward_" + component + "_ms"] = ms;
        if (component == "global_attention" || component == "local_attention") attention += ms;
      }
      metrics["profile_forward_total_ms"] = r.total_ms;
      metrics["attention_forward_ms"] = attention;
      metrics["attention_forward_share"] = r.total_ms > 0 ? attention / r.total_ms : 0.0;
      if (r.measured_matmul_flops >= 0) {  // what the profiler counted, beside the analytical count
        metrics["flops_forward_measured_per_byte"] = r.measured_matmul_flops / static_cast<double>(batch * T);
      }
      md << profile_section_markdown("Forward (logits of " + std::to_string(batch) + " x " + std::to_string(T) +
                                         " bytes)",
                                     r);
      doc["forward"] = r.to_json();
    }

    if (wanted.count("train_step")) {
      model.module().train();
      auto opt = make_optimizer(model, p.run["train"]);
      LossScaler scaler(dtype == torch::kFloat16);
      const double clip = p.run["train"]["grad_clip"].get<double>();
      Profiler prof(device);
      prof.start();
      train_step(model, opt, scaler, x, device, dtype, clip);
      if (device.is_cuda()) torch::cuda::synchronize();
      ProfileResult r = prof.stop();
      for (const auto& [component, ms] : r.component_ms) metrics["profile_train_step_" + component + "_ms"] = ms;
      metrics["profile_train_step_total_ms"] = r.total_ms;
      md << profile_section_markdown("Training step (forward, backward, clip, AdamW)", r);
      doc["train_step"] = r.to_json();
      model.module().zero_grad();
    }

    std::filesystem::create_directories(profile_dir);
    const std::string stem = profile_dir + "/" + profile_file_stem(p.name);
    auto write = [](const std::string& path, const std::string& text) {
      std::ofstream f(path, std::ios::binary | std::ios::trunc);
      f << text;
      if (!f.flush()) throw std::runtime_error("cannot write " + path);
    };
    write(stem + ".md", md.str());
    write(stem + ".json", doc.dump(1) + "\n");
    record["profile_files"] = {stem + ".md", stem + ".json"};
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (const auto* ce = dynamic_cast<const c10::Error*>(&e)) what = ce->what_without_backtrace();
#ifdef MEGABENCH_WITH_CUDA
    if (dynamic_cast<const c10::OutOfMemoryError*>(&e)) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
    record["profile_error"] = what;
    if (!record.contains("warnings")) record["warnings"] = json::array();
    record["warnings"].push_back("profile: " + what);
  }
}

}  // namespace

Timing time_repeats(const std::function<void()>& fn, int64_t warmup, int64_t repeat, const torch::Device& device) {
  const bool cuda = device.is_cuda();
  auto sync = [&] {
    if (cuda) torch::cuda::synchronize();
  };
  for (int64_t i = 0; i < warmup; ++i) fn();
  sync();
  Timing t;
  t.samples_ms.reserve(static_cast<size_t>(repeat));
  auto loop0 = Clock::now();
  for (int64_t i = 0; i < repeat; ++i) {
#ifdef MEGABENCH_WITH_CUDA
    if (cuda) {
      at::cuda::CUDAEvent start(cudaEventDefault), stop(cudaEventDefault);
      start.record();
      fn();
      stop.record();
      stop.synchronize();
      t.samples_ms.push_back(start.elapsed_time(stop));
      continue;
    }
#endif
    auto t0 = Clock::now();
    fn();
    sync();
    t.samples_ms.push_back(ms_since(t0));
  }
  t.loop_ms = ms_since(loop0);
  auto sorted = t.samples_ms;
  std::sort(sorted.begin(), sorted.end());
  size_t n = sorted.size();
  t.median_ms = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  t.min_ms = sorted.front();
  t.max_ms = sorted.back();
  t.measured_ms = std::accumulate(sorted.begin(), sorted.end(), 0.0);
  return t;
}

json calibrate_matmul(const torch::Device& device, torch::ScalarType dtype, int64_t n) {
  torch::NoGradGuard no_grad;
  if (n <= 0) n = device.is_cuda() ? 8192 : 1024;
  auto opts = torch::TensorOptions().device(device).dtype(dtype);
  auto a = torch::randn({n, n}, opts);
  auto b = torch::randn({n, n}, opts);
  torch::Tensor c;
  auto t = time_repeats([&] { c = torch::matmul(a, b); }, 2, 5, device);
  double flops = 2.0 * static_cast<double>(n) * n * n;
  return {{"matmul_gflops_per_s", flops / (t.min_ms * 1e-3) / 1e9},
          {"matmul_n", n},
          {"matmul_dtype", c10::toString(dtype)},
          {"device_type", c10::DeviceTypeName(device.type(), /*lower_case=*/true)}};
}

// The matmul peak (FLOP/s) for a point's device and dtype: the experiment's calibration when it
// matches (the usual case), else one measured once per process for that pair (run-level axes
// may sweep device or dtype).
double matmul_peak(const json& calibration, const torch::Device& device, torch::ScalarType dtype) {
  const std::string dtype_name = c10::toString(dtype);
  if (calibration.value("matmul_dtype", std::string("Float")) == dtype_name &&
      calibration.value("device_type", std::string("cpu")) == c10::DeviceTypeName(device.type(), true)) {
    return calibration["matmul_gflops_per_s"].get<double>() * 1e9;
  }
  static std::map<std::string, double> measured;
  const std::string key = c10::DeviceTypeName(device.type(), true) + "/" + dtype_name;
  auto it = measured.find(key);
  if (it == measured.end()) {
    it = measured.emplace(key, calibrate_matmul(device, dtype)["matmul_gflops_per_s"].get<double>() * 1e9).first;
  }
  return it->second;
}

json measure_point(const Point& p, const json& calibration, const std::string& profile_dir) {
  auto t_point = Clock::now();
  json record = {{"type", "point"}, {"key", p.key},          {"name", p.name},     {"model", p.model},
                 {"label", p.label},
                 {"axes", p.axes},  {"config", p.config()}, {"metrics", json::object()},
                 {"status", "ok"},  {"error", nullptr}};
  json& metrics = record["metrics"];
  Overhead overhead;
  std::set<std::string> wanted;
  for (const auto& m : p.run["metrics"]) wanted.insert(m.get<std::string>());
  try {
    const auto& spec = Registry::instance().get(p.model);
    const json& run = p.run;
    const torch::Device device(run["device"].get<std::string>() == "cuda" ? torch::kCUDA : torch::kCPU);
    if (device.is_cuda() && !torch::cuda::is_available()) throw std::runtime_error("device cuda: no CUDA device available");
    const torch::ScalarType dtype = dtype_of(run["dtype"].get<std::string>());
    if (run["threads"].get<int64_t>() > 0) at::set_num_threads(static_cast<int>(run["threads"].get<int64_t>()));
    torch::manual_seed(run["seed"].get<uint64_t>());
    const int64_t warmup = run["warmup"].get<int64_t>(), repeat = run["repeat"].get<int64_t>();
    const int64_t B = run["batch"].get<int64_t>();

    // Analytical figures first: they need no allocation.
    FlopBreakdown fl;
    if (spec.flops && (wanted.count("flops") || wanted.count("efficiency"))) fl = spec.flops(p.model_config);
    if (wanted.count("params")) {
      if (!spec.params) throw std::runtime_error("model '" + p.model + "' does not count its parameters");
      ParamCount pc = spec.params(p.model_config);
      metrics["params_total"] = pc.total;
      metrics["params_non_embedding"] = pc.non_embedding;
      for (const auto& [group, n] : pc.groups) metrics["params_" + group] = n;
    }
    if (wanted.count("flops")) {
      if (!spec.flops) throw std::runtime_error("model '" + p.model + "' does not count its FLOPs");
      metrics["flops_forward_per_byte"] = fl.total();
      metrics["flops_attention_forward_per_byte"] = fl.attention;
      metrics["flops_dense_forward_per_byte"] = fl.dense;
      metrics["flops_embed_logits_forward_per_byte"] = fl.embed_logits;
      metrics["flops_train_per_byte"] = 3 * fl.total();
    }
    static const std::set<std::string> needs_model = {"forward", "train_step", "memory", "generate", "bpb", "efficiency"};
    const bool profiling = run.value("profile", false);
    bool build = profiling ||
                 std::any_of(wanted.begin(), wanted.end(), [](const std::string& m) { return needs_model.count(m) > 0; });
    if (build) {
      std::unique_ptr<ByteModel> model = spec.build(p.model_config);
      model->module().to(device);  // fp32 master weights; autocast lowers the compute
      const int64_t T = model->max_seq_len();
      const double bytes_per_call = static_cast<double>(B * T);
      const json& train = run["train"];

      if (wanted.count("memory")) {
        memory::PeakTracker tracker(device);
        auto x = random_bytes(B, T, device);
        model->module().eval();
        tracker.reset();
        {
          torch::NoGradGuard no_grad;
          AutocastGuard autocast(device, dtype);
          model->logits(x);
        }
        metrics["peak_memory_forward_bytes"] = tracker.peak_above_baseline();
        model->module().train();
        auto opt = make_optimizer(*model, train);
        LossScaler scaler(dtype == torch::kFloat16);
        tracker.reset();
        train_step(*model, opt, scaler, x, device, dtype, train["grad_clip"].get<double>());
        metrics["peak_memory_train_bytes"] = tracker.peak_above_baseline();
        model->module().zero_grad();
      }

      if (wanted.count("forward")) {
        model->module().eval();
        auto x = random_bytes(B, T, device);
        torch::NoGradGuard no_grad;
        AutocastGuard autocast(device, dtype);
        auto t = time_repeats([&] { model->logits(x); }, warmup, repeat, device);
        overhead.add(t);
        metrics["forward_ms"] = t.median_ms;
        metrics["forward_ms_min"] = t.min_ms;
        metrics["forward_ms_max"] = t.max_ms;
        metrics["forward_bytes_per_s"] = bytes_per_call / (t.median_ms * 1e-3);
      }

      if (wanted.count("train_step")) {
        model->module().train();
        auto x = random_bytes(B, T, device);
        auto opt = make_optimizer(*model, train);
        LossScaler scaler(dtype == torch::kFloat16);
        torch::Tensor loss;
        auto t = time_repeats(
            [&] { loss = train_step(*model, opt, scaler, x, device, dtype, train["grad_clip"].get<double>()); },
            warmup, repeat, device);
        overhead.add(t);
        check_finite(loss, "train_step");
        metrics["train_step_ms"] = t.median_ms;
        metrics["train_step_ms_min"] = t.min_ms;
        metrics["train_step_ms_max"] = t.max_ms;
        metrics["train_bytes_per_s"] = bytes_per_call / (t.median_ms * 1e-3);
        model->module().zero_grad();
      }

      if (wanted.count("efficiency")) {
        double achieved = metrics.contains("train_step_ms")
                              ? 3 * fl.total() * metrics["train_bytes_per_s"].get<double>()
                              : fl.total() * metrics["forward_bytes_per_s"].get<double>();
        const double peak = matmul_peak(calibration, device, dtype);
        metrics["achieved_flops_per_s"] = achieved;
        metrics["matmul_peak_flops_per_s"] = peak;
        metrics["flops_utilization"] = achieved / peak;
      }

      if (wanted.count("generate")) {
        const json& g = run["generate"];
        const int64_t n = g["bytes"].get<int64_t>(), prime_len = g["prime"].get<int64_t>();
        if (prime_len + n > T) {
          throw std::runtime_error("generate: prime " + std::to_string(prime_len) + " + bytes " + std::to_string(n) +
                                   " exceed the model's max_seq_len " + std::to_string(T));
        }
        model->module().eval();
        torch::NoGradGuard no_grad;
        AutocastGuard autocast(device, dtype);
        auto prime = random_bytes(1, prime_len, device);
        SamplingOptions so;
        so.temperature = g["temperature"].get<double>();
        so.filter_thres = g["filter_thres"].get<double>();
        so.use_cache = true;
        auto gw = g["warmup"].get<int64_t>(), gr = g["repeat"].get<int64_t>();
        auto cached = time_repeats([&] { model->generate(prime, n, so); }, gw, gr, device);
        overhead.add(cached);
        metrics["generate_ms_per_byte"] = cached.median_ms / n;
        metrics["generate_bytes_per_s"] = n / (cached.median_ms * 1e-3);
        if (g["uncached"].get<bool>()) {
          so.use_cache = false;
          auto uncached = time_repeats([&] { model->generate(prime, n, so); }, gw, gr, device);
          overhead.add(uncached);
          metrics["generate_uncached_ms_per_byte"] = uncached.median_ms / n;
          metrics["generate_uncached_bytes_per_s"] = n / (uncached.median_ms * 1e-3);
          metrics["generate_cache_speedup"] = uncached.median_ms / cached.median_ms;
        }
      }

      if (wanted.count("bpb")) measure_bpb(*model, spec, p, device, dtype, metrics, record);

      if (profiling) {
        profile_point(*model, p, wanted, device, dtype, B,
                      profile_dir.empty() ? std::string("profiles") : profile_dir, metrics, record);
      }
    }
  } catch (const c10::OutOfMemoryError& e) {
    record["status"] = "failed";
    record["error"] = std::string("out of memory: ") + e.what_without_backtrace();
#ifdef MEGABENCH_WITH_CUDA
    c10::cuda::CUDACachingAllocator::emptyCache();
#endif
  } catch (const c10::Error& e) {
    record["status"] = "failed";
    record["error"] = e.what_without_backtrace();
  } catch (const std::exception& e) {
    record["status"] = "failed";
    record["error"] = e.what();
  }
  record["harness_overhead"] = {{"timed_ms", overhead.measured_ms},
                                {"between_repeats_ms", overhead.loop_ms - overhead.measured_ms}};
  record["elapsed_s"] = ms_since(t_point) * 1e-3;
  return record;
}

RunSummary run_experiment(const RunOptions& options, std::ostream& log) {
  json doc = load_json_file(options.experiment_path);
  for (const auto& s : options.sets) apply_set(doc, s);
  Experiment exp = parse_experiment(doc);
  std::vector<Point> points = expand(exp);  // every point's config resolved before anything runs

  RunSummary summary;
  summary.points = points.size();
  std::vector<const Point*> mine;
  for (const auto& p : points) {
    if (static_cast<int>(p.index % static_cast<size_t>(options.shard.count)) == options.shard.index) mine.push_back(&p);
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

  bool any_cuda = std::any_of(mine.begin(), mine.end(), [](const Point* p) { return p->run["device"] == "cuda"; });
  if (any_cuda && !torch::cuda::is_available()) {
    throw ConfigError("device", "\"cuda\" requested but no CUDA device is available (torch::cuda::is_available() is false)");
  }

  auto done = completed_keys(outdir);
  bool wants_memory = false;
  for (const Point* p : mine) {
    for (const auto& m : p->run["metrics"]) wants_memory |= m == "memory";
  }
  if (wants_memory) memory::install_cpu_tracking();

  const std::string device_name = exp.run["device"] == "cuda" ? "cuda" : "cpu";
  torch::Device device(device_name == "cuda" ? torch::kCUDA : torch::kCPU);
  if (exp.run["threads"].get<int64_t>() > 0) at::set_num_threads(static_cast<int>(exp.run["threads"].get<int64_t>()));
  std::string device_text = "cpu";
#ifdef MEGABENCH_WITH_CUDA
  if (device.is_cuda()) device_text = std::string("cuda:0 ") + at::cuda::getCurrentDeviceProperties()->name;
#else
  if (device.is_cuda()) device_text = "cuda:0";
#endif
  // The peak in the run's compute dtype: bf16 runs are measured against the bf16 matmul peak.
  json calibration = calibrate_matmul(device, dtype_of(exp.run["dtype"].get<std::string>()));
  log << "calibration: " << calibration["matmul_dtype"].get<std::string>() << " matmul "
      << calibration["matmul_n"] << "^3 at "
      << format_value(calibration["matmul_gflops_per_s"]) << " GFLOP/s on " << device_text << "\n";

  ResultsFile out(summary.results_file);
  if (out.truncated_bytes()) log << "note: dropped a partial last line (" << out.truncated_bytes() << " bytes) of " << out.path() << "\n";
  auto t_store = Clock::now();
  out.append(context_record(exp.resolved, device_text, options.shard, calibration));
  summary.store_ms += ms_since(t_store);

  const bool progress = options.progress < 0 ? ::isatty(STDOUT_FILENO) != 0 : options.progress == 1;
  std::vector<std::string> failures;
  auto t_run = Clock::now();
  double measured_s = 0;
  size_t measured = 0, position = 0;
  for (const Point* p : mine) {
    ++position;
    if (done.count(p->key)) {
      ++summary.skipped;
      continue;
    }
    const size_t remaining = mine.size() - position + 1;  // this point included
    if (progress) {
      auto mmss = [](double s) {
        char b[32];
        std::snprintf(b, sizeof b, "%d:%02d", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
        return std::string(b);
      };
      // ETA: the mean time of the points measured so far in this invocation, times those left.
      std::string eta = measured ? mmss(measured_s / measured * remaining) : "?";
      log << "\r\033[K[" << position << "/" << mine.size() << "] " << p->name << "  elapsed "
          << mmss(ms_since(t_run) * 1e-3) << "  ETA " << eta << std::flush;
    }
    json record = measure_point(*p, calibration, outdir + "/profiles");
    t_store = Clock::now();
    out.append(record);
    summary.store_ms += ms_since(t_store);
    measured_s += record["elapsed_s"].get<double>();
    ++measured;
    summary.timed_ms += record["harness_overhead"]["timed_ms"].get<double>();
    summary.timing_overhead_ms += record["harness_overhead"]["between_repeats_ms"].get<double>();
    bool ok = record["status"] == "ok";
    (ok ? summary.ok : summary.failed)++;
    if (!ok) failures.push_back(p->name + ": " + record["error"].get<std::string>());
    if (progress) log << "\r\033[K";
    log << "[" << position << "/" << mine.size() << "] " << p->name << " " << (ok ? "ok" : "FAILED") << " ("
        << format_value(record["elapsed_s"]) << " s)";
    if (!ok) log << ": " << record["error"].get<std::string>();
    if (record.contains("profile_error")) log << " (profile skipped: " << record["profile_error"].get<std::string>() << ")";
    log << "\n" << std::flush;
  }
  const double run_ms = ms_since(t_run);

  // The report of every point in the folder (earlier runs and other shards included): tables,
  // plots and fits are written beside results.jsonl, and the table is printed.
  try {
    std::ostringstream report_log;
    report::write({outdir}, outdir, report_log);
    log << "\n" << report::markdown_table({outdir}) << "report written to " << outdir << "\n";
  } catch (const std::exception& e) {
    log << "\n(report unavailable: " << e.what() << ")\n";
  }

  log << "\nsummary: " << summary.in_shard << " points: " << summary.ok << " ok, " << summary.failed << " failed, "
      << summary.skipped << " skipped (already recorded) -> " << summary.results_file << "\n";
  const double timed = summary.timed_ms, between = summary.timing_overhead_ms;
  if (timed > 0) {
    log << "harness overhead: " << format_value(100 * between / (timed + between))
        << "% of the timed loops (timer and bookkeeping between repeats); writing results took "
        << format_value(summary.store_ms) << " ms (" << format_value(run_ms > 0 ? 100 * summary.store_ms / run_ms : 0)
        << "% of the run)\n";
  }
  for (const auto& f : failures) log << "  failed: " << f << "\n";
  return summary;
}

}  // namespace megabench
