#include "harness/measure/timing.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <string>

#include "harness/api/format.h"
#include "kernels/gemv.h"

#ifdef MEGABENCH_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#endif

namespace megabench {

Timing time_repeats(const std::function<void()>& fn, int64_t warmup, int64_t repeat,
                    const torch::Device& device, double min_time_ms, int64_t max_repeat) {
  const bool cuda = device.is_cuda();
  auto sync = [&] {
    if (cuda) torch::cuda::synchronize();
  };
  for (int64_t i = 0; i < warmup; ++i) fn();
  sync();
  Timing t;
  t.samples_ms.reserve(static_cast<size_t>(repeat));
  auto loop0 = Clock::now();
  const int64_t cap = std::max(repeat, max_repeat);
  double timed = 0;
  // At least `repeat` calls; then more until the timed calls add up to min_time_ms (or `cap`).
  for (int64_t i = 0; i < repeat || (timed < min_time_ms && i < cap); ++i) {
#ifdef MEGABENCH_WITH_CUDA
    if (cuda) {
      at::cuda::CUDAEvent start(cudaEventDefault), stop(cudaEventDefault);
      start.record();
      fn();
      stop.record();
      stop.synchronize();
      t.samples_ms.push_back(start.elapsed_time(stop));
      timed += t.samples_ms.back();
      continue;
    }
#endif
    auto t0 = Clock::now();
    fn();
    sync();
    t.samples_ms.push_back(ms_since(t0));
    timed += t.samples_ms.back();
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

constexpr double kCalibrationMs = 300;  // timed calls per calibration, at least

json calibrate_matmul(const torch::Device& device, torch::ScalarType dtype, int64_t n) {
  torch::NoGradGuard no_grad;
  if (n <= 0) n = device.is_cuda() ? 8192 : 1024;
  auto opts = torch::TensorOptions().device(device).dtype(dtype);
  auto a = torch::randn({n, n}, opts);
  auto b = torch::randn({n, n}, opts);
  torch::Tensor c;
  // The fastest call of at least 300 ms of calls: a peak, and a few-call window can land wholly
  // in a slow moment of a shared machine (its clock ramping, a neighbour's burst).
  auto t = time_repeats([&] { c = torch::matmul(a, b); }, 2, 5, device, kCalibrationMs, 200);
  double flops = 2.0 * static_cast<double>(n) * n * n;
  return {{"matmul_gflops_per_s", flops / (t.min_ms * 1e-3) / 1e9},
          {"matmul_n", n},
          {"matmul_dtype", c10::toString(dtype)},
          {"matmul_threads", at::get_num_threads()},
          {"device_type", c10::DeviceTypeName(device.type(), /*lower_case=*/true)}};
}

json calibrate_triad(const torch::Device& device, int64_t n) {
  torch::NoGradGuard no_grad;
  if (n <= 0) n = device.is_cuda() ? (int64_t{1} << 26) : (int64_t{1} << 24);
  auto opts = torch::TensorOptions().device(device).dtype(torch::kFloat32);
  auto a = torch::empty({n}, opts), b = torch::rand({n}, opts), c = torch::rand({n}, opts);
  auto t = time_repeats([&] { torch::add_out(a, b, c, 3.0); }, 1, 5, device, kCalibrationMs,
                        200);                                         // a = b + 3 c
  const double bytes = 3.0 * static_cast<double>(n) * sizeof(float);  // read b, c; write a
  return {{"triad_gb_per_s", bytes / (t.min_ms * 1e-3) / 1e9}, {"triad_n", n}};
}

json calibrate_read(const torch::Device& device, int64_t bytes) {
  torch::NoGradGuard no_grad;
  // 256 MB, well beyond a last-level cache (32 MB L3 on the 2-core Zen 4, 50-60 MB L2 on an H100 /
  // H200): at 64 MB, twice that L3, amax read 40-74 GB/s at 2 threads there, partly from cache; at
  // 256 MB, 31-32.
  if (bytes <= 0) bytes = int64_t{256} << 20;
  const int64_t cols = 2048, rows = std::max<int64_t>(1, bytes / (cols * 4));
  auto opts = torch::TensorOptions().device(device).dtype(torch::kFloat32);
  // Constant values: drawing 64M random floats would take longer than the timing itself.
  auto w = torch::full({rows, cols}, 0.5, opts), x = torch::full({cols}, 0.5, opts);
  torch::Tensor y;
  const double read = static_cast<double>(rows * cols) * sizeof(float);
  auto gb_per_s = [&](const std::function<void()>& f) {
    return read / (time_repeats(f, 1, 5, device, kCalibrationMs, 200).min_ms * 1e-3) / 1e9;
  };
  // Ways to read the matrix once: the BLAS matrix-vector product, LibTorch's vectorised parallel
  // reduction and, where it runs its AVX512-BF16 path, the bf16 GEMV kernel that decoding with
  // bf16 weights uses (over the same bytes as bf16). Any can fall short of the memory system: one
  // BLAS's GEMV runs on one thread on some CPUs (MKL's sgemv on an AMD EPYC: 18 GB/s at 1 and at 2
  // threads, where amax reads 47 at 2), and a reduction can be compute-bound on one core. A roof
  // is the most the machine was seen to read, so the bandwidth is the fastest of them.
  const double mv = gb_per_s([&] { y = torch::mv(w, x); });
  const double reduce = gb_per_s([&] { y = w.amax(); });
  json r = {
      {"read_mv_gb_per_s", mv}, {"read_amax_gb_per_s", reduce}, {"read_bytes", rows * cols * 4}};
  double best = std::max(mv, reduce);
  std::string kernel = mv >= reduce ? "mv" : "amax";
  if (device.is_cpu() && kernels::gemv_bf16_auto_path() == kernels::GemvPath::kAvx512Bf16) {
    w = torch::Tensor();  // the bf16 matrix takes its place: 256 MB, not 512, at once
    auto wb = torch::full({rows, 2 * cols}, 0.5, opts.dtype(torch::kBFloat16));
    auto xb = torch::full({2 * cols}, 0.5, opts.dtype(torch::kBFloat16));
    const double gemv = gb_per_s([&] { y = kernels::gemv_bf16(wb, xb); });
    r["read_gemv_bf16_gb_per_s"] = gemv;
    if (gemv > best) best = gemv, kernel = "gemv_bf16";
  }
  r["read_gb_per_s"] = best;
  r["read_kernel"] = kernel;
  return r;
}

json calibrate(const torch::Device& device, torch::ScalarType dtype) {
  json c = calibrate_matmul(device, dtype);
  for (const json& part : {calibrate_triad(device), calibrate_read(device)}) {
    for (const auto& [k, v] : part.items()) c[k] = v;
  }
  c["date"] = utc_now_iso();
  return c;
}

namespace {

// `value` (in the calibration's unit) x `scale` when the calibration was measured on this device
// type and, on the CPU, at the current intra-op thread count (a calibration without
// "matmul_threads", written before it was recorded, matches any thread count, as it did then) and
// `extra_match` holds; else `measure()` x `scale`, taken once per process per `what`, device and
// thread count.
double calibrated_or_measured(const json& calibration, const torch::Device& device,
                              const char* field, bool extra_match, const std::string& what,
                              const std::function<json()>& measure, double scale) {
  const int threads = at::get_num_threads();
  const bool cpu = device.is_cpu();
  const std::string device_name = c10::DeviceTypeName(device.type(), true);
  const auto value = calibration.find(field);
  if (extra_match && value != calibration.end() && value->is_number() &&
      calibration.value("device_type", std::string("cpu")) == device_name &&
      (!cpu || calibration.value("matmul_threads", threads) == threads)) {
    return value->get<double>() * scale;
  }
  static std::map<std::string, double> measured;
  const std::string key =
      what + "/" + device_name + (cpu ? "/" + std::to_string(threads) : std::string());
  auto it = measured.find(key);
  if (it == measured.end())
    it = measured.emplace(key, measure()[field].get<double>() * scale).first;
  return it->second;
}

}  // namespace

// The matmul peak (FLOP/s) for a point's device, dtype and intra-op threads: the experiment's
// calibration when it matches (the usual case), else one measured once per process for that
// triple (run-level axes may sweep device, dtype or threads).
double matmul_peak(const json& calibration, const torch::Device& device, torch::ScalarType dtype) {
  const std::string dtype_name = c10::toString(dtype);
  return calibrated_or_measured(
      calibration, device, "matmul_gflops_per_s",
      calibration.value("matmul_dtype", std::string("Float")) == dtype_name, "matmul/" + dtype_name,
      [&] { return calibrate_matmul(device, dtype); }, 1e9);
}

double read_bandwidth(const json& calibration, const torch::Device& device) {
  return calibrated_or_measured(
      calibration, device, "read_gb_per_s", true, "read", [&] { return calibrate_read(device); },
      1e9);
}

}  // namespace megabench
