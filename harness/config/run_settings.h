#pragma once
// The run settings of an experiment (everything but models, sweep and report): validated once
// into typed structs. The resolved JSON form is kept beside them: it is saved in each record's
// config["run"] and hashed into the point key, so its layout must not change.
//
//   RunSettings run = resolve_run(doc);   // throws ConfigError naming the JSON path
//   run.train.lr; run.generate.bytes; run.resolved["train"]["lr"];
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "harness/config/json_read.h"
#include "harness/io/data.h"

namespace megabench {

struct TrainSettings {
  std::optional<int64_t> steps;  // exactly one of steps and flop_budget (default: steps 100)
  std::optional<double> flop_budget;
  double lr = 3e-4;
  double weight_decay = 0.0;
  int64_t batch = 4;
  int64_t eval_bytes = 65536;
  double grad_clip = 1.0;         // 0: no clipping
  bool stop_on_nonfinite = true;  // a NaN / Inf training loss fails the point, naming the step
  bool save = true;               // save the trained weights: OUTDIR/checkpoints/<key>.safetensors
  int64_t curve_every = 0;        // held-out bpb on the training curve every N steps; 0: ~10 times
  /// AdamW's (beta1, beta2). Default LibTorch's (0.9, 0.999); the paper trains with (0.9, 0.98).
  std::vector<double> betas = {0.9, 0.999};
  /// Steps of linear warmup from lr / warmup_steps to lr. Default 0.
  int64_t warmup_steps = 0;
  /// After the warmup: "constant" (default), or "linear" / "cosine" decay to 0 at the last step.
  std::string schedule = "constant";
  /// Redraw every parameter of rank >= 2 (linear weights, embeddings) from N(0, init_std) before
  /// training; unset: each model's own initialization.
  std::optional<double> init_std;
  /// Save the training state (weights, optimizer, step, random state) every N minutes to
  /// OUTDIR/checkpoints/<key>.resume.pt, and resume from it when the point runs again; 0: never.
  /// Never part of the key. Default 10.
  double checkpoint_minutes = 10;
};

/// The learning rate of 0-based step `step` of `total` (total 0: unknown, no decay) under the
/// settings' warmup and schedule.
double scheduled_lr(const TrainSettings& train, int64_t step, int64_t total);

struct GenerateSettings {
  int64_t bytes = 32;
  int64_t prime = 8;
  double temperature = 1.0;
  double filter_thres = 0.9;
  int64_t warmup = 1;
  int64_t repeat = 3;
  bool uncached = true;  // also time generation without KV caches
};

/// How bpb scores the held-out bytes (harness/measure/eval_windows.h).
struct EvalSettings {
  /// "basic" | "sliding" | "strided" | "sliding+strided"; each is scored, the first is `bpb`.
  std::vector<std::string> modes = {"basic"};
  bool per_document = false;      // score each document on its own (sources with boundaries)
  bool loss_by_position = false;  // record the mean loss by position (patch and context buckets)
  int64_t buckets = 64;           // log-spaced context buckets of loss_by_position
  bool is_default() const;
};

struct RunSettings {
  std::string device = "cpu";     // "cpu" | "cuda"
  std::string dtype = "float32";  // "float32" | "bfloat16" | "float16" (autocast compute dtype)
  int64_t threads = 0;            // 0: LibTorch's default
  int64_t seed = 0;
  int64_t warmup = 2;
  int64_t repeat = 5;  // timed calls at least; then more until min_time_ms, at most max_repeat
  double min_time_ms = 100;  // the timed calls of one metric add up to at least this
  int64_t max_repeat = 200;
  double noisy_cv = 0.05;  // a timing whose coefficient of variation is above this is "noisy"
  int64_t batch = 1;
  bool profile = false;
  // How the sweep runs its points (not part of a point's key: they change how a point is guarded,
  // not what it measures).
  std::string isolation = "process";    // "process": points in a worker child; "none": in-process
  std::optional<double> timeout_s;      // a point running longer is stopped and recorded failed
  std::optional<double> max_memory_gb;  // a worker whose resident memory passes this is stopped
  std::vector<std::string> metrics;     // from the metric table, in the file's order
  data::DataSpec data;
  TrainSettings train;
  GenerateSettings generate;
  EvalSettings eval;
  json resolved;  // the resolved settings, as saved and hashed

  torch::Device torch_device() const { return device == "cuda" ? torch::kCUDA : torch::kCPU; }
  torch::ScalarType scalar_type() const;
  bool wants(const std::string& metric) const;
};

/// Validates and fills the run settings found at the top level of `doc`.
RunSettings resolve_run(const json& doc);

/// isolation, timeout_s and max_memory_gb as the context record saves them (they are not in
/// `resolved`, so they never change a point's key).
json supervision_json(const RunSettings& r);

/// The top-level run keys ("device", "dtype", ...); with the sections data, train, generate, eval.
const std::vector<std::string>& run_top_keys();

/// The top-level keys of the sweep's supervision (isolation, timeout_s, max_memory_gb): experiment
/// settings, never sweep axes.
const std::vector<std::string>& supervision_keys();

/// The run-level keys an axis may address (top-level or "section.key").
bool is_run_path(const std::string& axis);

}  // namespace megabench
