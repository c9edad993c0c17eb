// "bpb": trains for train.steps (or train.flop_budget) on the run's data, then measures bits per
// byte on the held-out split. It changes the weights, so it runs after every timed metric. It
// keeps the training curve (curves/<key>.jsonl), the weights (checkpoints/<key>.safetensors) and
// a greedy sample (the record's "sample").
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <numeric>
#include <optional>

#include "harness/io/checkpoint.h"
#include "harness/io/data.h"
#include "harness/measure/context.h"
#include "harness/measure/held_out.h"
#include "harness/measure/session.h"

namespace megabench {
namespace {

using ojson = PointRecord::ojson;

// Windows of `len` bytes at random offsets of `bytes`, (B, len) int64.
torch::Tensor sample_windows(const std::vector<uint8_t>& bytes, int64_t batch, int64_t len) {
  auto all = torch::from_blob(const_cast<uint8_t*>(bytes.data()),
                              {static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  auto starts =
      torch::randint(0, static_cast<int64_t>(bytes.size()) - len + 1, {batch}, torch::kLong);
  auto offsets = starts.unsqueeze(1) + torch::arange(len, torch::kLong).unsqueeze(0);  // (B, len)
  return all.index({offsets}).to(torch::kLong);
}

// train.init_std: every parameter of rank >= 2 (linear weights, embeddings) from N(0, std); the
// rest (biases, norm gains, start tokens) keeps the model's own initialization.
void reinitialize(ByteModel& model, double std) {
  torch::NoGradGuard no_grad;
  for (auto& p : model.module().parameters()) {
    if (p.dim() >= 2) p.normal_(0.0, std);
  }
}

// The training steps: train.steps, or as many as train.flop_budget buys at `per_step` FLOPs.
int64_t training_steps(const TrainSettings& train, double per_step) {
  if (!train.flop_budget) return *train.steps;
  if (per_step <= 0)
    throw std::runtime_error("bpb: train.flop_budget needs the model's analytical FLOPs");
  const auto steps = static_cast<int64_t>(*train.flop_budget / per_step);
  if (steps < 1) {
    throw std::runtime_error("bpb: train.flop_budget " + json(*train.flop_budget).dump() +
                             " is less than one step (" + std::to_string(per_step) + " FLOPs)");
  }
  return steps;
}

ojson optional_array(const std::vector<std::optional<double>>& xs) {
  ojson out = ojson::array();
  for (const auto& x : xs) out.push_back(x ? ojson(*x) : ojson());
  return out;
}

// The training curve: one entry per step (train loss in bits per byte, training FLOPs so far),
// with the held-out bpb of a few windows every `every` steps and at the last.
struct Curve {
  std::vector<ojson> rows;
  int64_t every = 1;
};

// Held-out bpb of the first four windows (basic mode), for the curve; leaves the model training.
double quick_held_out_bpb(MetricContext& ctx, const data::ByteData& data, int64_t predicted) {
  ByteModel& model = ctx.model();
  const EvalSettings basic;
  double bpb = 0;
  {
    EvalScope scope(model, ctx.run());
    const int64_t bytes = 4 * model.seq_len();
    bpb = score_held_out(model, data, basic, bytes, ctx.run().train.batch, predicted, ctx.device(),
                         ctx.run().data.source)
              .results[0]
              .bpb();
  }
  model.module().train();
  return bpb;
}

// What a training resumes from: OUTDIR/checkpoints/<key>.resume.pt, saved every
// train.checkpoint_minutes: the weights, the optimizer, the step, the CPU random state (the next
// windows and dropout masks), the last losses and the curve so far. Written to a temporary file
// and renamed, so a kill mid-write leaves the previous one.
class ResumeFile {
 public:
  ResumeFile(MetricContext& ctx, int64_t steps)
      : path_(std::filesystem::path(ctx.out_dir()) / "checkpoints" /
              (ctx.point().key + ".resume.pt")),
        steps_(steps),
        every_s_(ctx.run().train.checkpoint_minutes * 60.0),
        last_(std::chrono::steady_clock::now()) {}

  bool enabled() const { return every_s_ > 0; }
  bool due() const {
    return enabled() &&
           std::chrono::duration<double>(std::chrono::steady_clock::now() - last_).count() >=
               every_s_;
  }

  void save(torch::nn::Module& module, const TrainSession& train, const std::vector<double>& tail,
            const Curve& curve) {
    namespace fs = std::filesystem;
    torch::serialize::OutputArchive a, weights, session;
    module.save(weights);
    train.save(session);
    a.write("model", weights);
    a.write("session", session);
    a.write("total_steps", torch::tensor(steps_, torch::kLong));
    at::Generator gen = at::detail::getDefaultCPUGenerator();  // shares the default state
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      a.write("rng", gen.get_state());
    }
    a.write("tail", torch::tensor(tail, torch::kFloat64));
    ojson rows = curve.rows;
    const std::string text = rows.dump();
    a.write("curve", torch::from_blob(const_cast<char*>(text.data()),
                                      {static_cast<int64_t>(text.size())}, torch::kUInt8)
                         .clone());
    fs::create_directories(path_.parent_path());
    const fs::path tmp = path_.string() + ".tmp";
    a.save_to(tmp.string());
    fs::rename(tmp, path_);
    last_ = std::chrono::steady_clock::now();
  }

  /// Loads the state into the module and the session when a file for this point exists: the
  /// step to go on from (0 without one). Throws when the file cannot be read or does not fit.
  int64_t load(torch::nn::Module& module, TrainSession& train, std::vector<double>& tail,
               Curve& curve) {
    if (!std::filesystem::exists(path_)) return 0;
    torch::serialize::InputArchive a, weights, session;
    a.load_from(path_.string());
    torch::Tensor total, rng, losses, rows;
    a.read("total_steps", total);
    if (total.item<int64_t>() != steps_) {
      throw std::runtime_error("it was saved for " + std::to_string(total.item<int64_t>()) +
                               " steps, this training has " + std::to_string(steps_));
    }
    a.read("model", weights);
    module.load(weights);
    a.read("session", session);
    train.load(session);
    a.read("rng", rng);
    a.read("tail", losses);
    a.read("curve", rows);
    at::Generator gen = at::detail::getDefaultCPUGenerator();  // shares the default state
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(rng);
    }
    losses = losses.contiguous();
    tail.assign(losses.data_ptr<double>(), losses.data_ptr<double>() + losses.numel());
    rows = rows.contiguous();
    const std::string text(static_cast<const char*>(rows.data_ptr()),
                           static_cast<size_t>(rows.numel()));
    curve.rows.clear();
    for (const auto& r : ojson::parse(text)) curve.rows.push_back(r);
    return train.steps();
  }

  /// Moves an unusable file aside (kept for a look), so the next run starts afresh.
  std::string set_aside() {
    const auto bad = path_.string() + ".unusable";
    std::error_code ec;
    std::filesystem::rename(path_, bad, ec);
    return bad;
  }
  void remove() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }

 private:
  std::filesystem::path path_;
  int64_t steps_;
  double every_s_;
  std::chrono::steady_clock::time_point last_;
};

// Test hook for the resume test: MEGABENCH_FAULT_KILL_AFTER_STEP=N kills the process with SIGKILL
// once step N has been taken (and saved, when a save was due), as a power cut would.
int64_t kill_after_step() {
  const char* v = std::getenv("MEGABENCH_FAULT_KILL_AFTER_STEP");
  return v ? std::atoll(v) : -1;
}

// Where a training starts: the saved state of the point when there is a usable one, else step 0
// (an unusable file is set aside with a warning, and the model rebuilt from the seed, since its
// weights may be half loaded).
struct Start {
  ByteModel* model;
  std::unique_ptr<TrainSession> train;
  int64_t step = 0;
};

Start start_training(MetricContext& ctx, ResumeFile& resume, int64_t steps,
                     std::vector<double>& tail, Curve& curve) {
  Start st{&ctx.model(), nullptr, 0};
  st.model->module().train();
  st.train = std::make_unique<TrainSession>(*st.model, ctx.run(), steps);
  try {
    st.step = resume.load(st.model->module(), *st.train, tail, curve);
    if (st.step > 0) ctx.record().extra["resumed_from_step"] = st.step;
  } catch (const std::exception& e) {
    const std::string bad = resume.set_aside();
    ctx.record().warnings.push_back("resume: cannot resume from the saved state (" +
                                    std::string(e.what()) + "); moved to " + bad +
                                    ", trained from step 0");
    st.model = &ctx.fresh_model();
    if (ctx.run().train.init_std) reinitialize(*st.model, *ctx.run().train.init_std);
    st.model->module().train();
    st.train = std::make_unique<TrainSession>(*st.model, ctx.run(), steps);
    st.step = 0;
    tail.clear();
    curve.rows.clear();
  }
  return st;
}

// Trains `steps` steps on random windows; the mean loss of the last 10 steps, in bits per byte.
// Resumes from the point's resume file when there is one.
double train_bpb(MetricContext& ctx, const data::ByteData& data, int64_t steps,
                 double flops_per_step, int64_t predicted, Curve& curve) {
  const int64_t B = ctx.run().train.batch, T = ctx.model().seq_len();
  const int64_t every = ctx.run().train.curve_every;
  curve.every = every > 0 ? every : std::max<int64_t>(1, steps / 10);
  const int64_t stride = std::max<int64_t>(1, steps / 1000);  // at most ~1000 rows a curve
  std::vector<double> tail;
  ResumeFile resume(ctx, steps);
  Start start = start_training(ctx, resume, steps, tail, curve);
  ByteModel* model = start.model;
  auto& train = start.train;
  const int64_t kill_after = kill_after_step();
  double step_s = 0;  // the steps' own time: sampling, forward, backward, optimizer
  for (int64_t s = start.step; s < steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    auto x = sample_windows(data.train, B, T).to(ctx.device());
    // A NaN / Inf loss fails the point in the session, naming the step (unless
    // train.stop_on_nonfinite is false: then the figures become null with a warning).
    const double v = train->step(x).item<double>();
    step_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    tail.push_back(v);
    if (tail.size() > 10) tail.erase(tail.begin());
    const bool held_out = (s + 1) % curve.every == 0 || s + 1 == steps;
    if (held_out || (s + 1) % stride == 0) {
      ojson row = {{"step", s + 1},
                   {"train_flops", flops_per_step * static_cast<double>(s + 1)},
                   {"train_loss_bpb", v / std::log(2.0)}};
      if (held_out) row["held_out_bpb"] = quick_held_out_bpb(ctx, data, predicted);
      curve.rows.push_back(std::move(row));
    }
    if (resume.due() && s + 1 < steps) resume.save(model->module(), *train, tail, curve);
    if (s + 1 == kill_after) std::raise(SIGKILL);
  }
  // Training throughput of the steps this run took, against the calibrated matmul peak.
  if (steps > start.step && step_s > 0) {
    auto& m = ctx.metrics();
    const double achieved = flops_per_step * static_cast<double>(steps - start.step) / step_s;
    m["train_s"] = step_s;
    m["train_flops_per_s"] = achieved;
    m["train_flops_utilization"] =
        achieved / matmul_peak(ctx.calibration(), ctx.device(), ctx.dtype());
  }
  return std::accumulate(tail.begin(), tail.end(), 0.0) / static_cast<double>(tail.size()) /
         std::log(2.0);
}

// Held-out bits per byte in each eval.mode (held_out.h): the first mode is `bpb`; with eval
// settings each mode's bpb_<mode> and eval_cost_<mode>; loss_by_position follows the first mode.
void held_out_bpb(MetricContext& ctx, const data::ByteData& data, int64_t N) {
  ByteModel& model = ctx.model();
  const auto& ev = ctx.run().eval;
  HeldOutScores scores;
  {
    EvalScope scope(model, ctx.run());
    scores = score_held_out(model, data, ev, ctx.run().train.eval_bytes, ctx.run().train.batch, N,
                            ctx.device(), ctx.run().data.source);
  }
  if (!std::isfinite(scores.results[0].nats) && ctx.run().train.stop_on_nonfinite)
    throw std::runtime_error(
        "bpb: held-out loss is not finite (train.stop_on_nonfinite: false "
        "keeps going)");
  auto& m = ctx.metrics();
  m["bpb"] = scores.results[0].bpb();
  ctx.record().extra["data"]["eval_bytes"] = scores.results[0].scored;
  for (size_t i = 0; i < scores.modes.size() && !ev.is_default(); ++i) {
    std::string key = scores.modes[i];
    std::replace(key.begin(), key.end(), '+', '_');
    m["bpb_" + key] = scores.results[i].bpb();
    m["eval_cost_" + key] = scores.results[i].cost();
  }
  if (scores.positions) {
    ctx.record().extra["loss_by_position"] = {
        {"mode", ev.modes[0]},
        {"patch", optional_array(scores.positions->by_patch_position())},
        {"context", optional_array(scores.positions->by_bucket())},
        {"context_start", scores.positions->bucket_starts()}};
  }
}

// The greedy sample in the record, for reading; a model that cannot sample (NaN weights) keeps its
// figures, with a warning.
void keep_sample(MetricContext& ctx, const data::ByteData& data) {
  ByteModel& model = ctx.model();
  EvalScope scope(model, ctx.run());
  try {
    ctx.record().extra["sample"] = greedy_sample(model, data, ctx.device());
  } catch (const std::exception& e) {
    ctx.record().warnings.push_back(std::string("sample: ") + e.what());
  }
}

// What a training leaves beside the record: curves/<key>.jsonl, checkpoints/<key>.safetensors
// (unless train.save is false) and a greedy sample in the record. Paths relative to the folder.
void keep_training(MetricContext& ctx, const data::ByteData& data, const Curve& curve) {
  namespace fs = std::filesystem;
  const Point& p = ctx.point();
  const fs::path out(ctx.out_dir());
  fs::create_directories(out / "curves");
  const std::string curve_file = "curves/" + p.key + ".jsonl";
  {
    std::ofstream f(out / curve_file, std::ios::binary | std::ios::trunc);
    for (const auto& row : curve.rows) {
      ojson line = {{"key", p.key}};
      line.update(row);
      f << line.dump(-1, ' ', false, ojson::error_handler_t::replace) << "\n";
    }
    if (!f.flush()) throw std::runtime_error("bpb: cannot write " + (out / curve_file).string());
  }
  ctx.record().extra["curve_file"] = curve_file;
  ByteModel& model = ctx.model();
  if (ctx.run().train.save) {
    const std::string ckpt = "checkpoints/" + p.key + ".safetensors";
    fs::create_directories(out / "checkpoints");
    checkpoint::save((out / ckpt).string(), model.module(),
                     {{"model", p.model}, {"config", p.model_config.dump()}, {"point", p.name}});
    ctx.record().extra["checkpoint"] = ckpt;
  }
  keep_sample(ctx, data);
}

// A model that learns by counting (the n-gram baseline): fit on the training split, no steps and
// no training FLOPs, then the same held-out scoring and sample as any model. Nothing to save but
// the counts, which are rebuilt from the data in seconds.
void fit_and_score(MetricContext& ctx, const data::ByteData& data) {
  ByteModel& model = ctx.model();
  const auto t0 = std::chrono::steady_clock::now();
  model.fit(data.train);
  auto& m = ctx.metrics();
  m["train_steps"] = 0;
  m["train_flops"] = 0;
  m["train_bpb_final"] = nullptr;
  m["fit_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  m["stored_counts"] = model.params().groups.empty() ? 0 : model.params().groups[0].second;
  held_out_bpb(ctx, data, model.seq_len());
  keep_sample(ctx, data);
}

void run_bpb(MetricContext& ctx) {
  ByteModel& model = ctx.fresh_model();
  if (ctx.run().train.init_std) reinitialize(model, *ctx.run().train.init_std);
  const auto& data = data::load_cached(ctx.run().data);
  ctx.record().extra["data"] = data.info;
  const int64_t T = model.seq_len(), B = ctx.run().train.batch;
  if (static_cast<int64_t>(data.train.size()) < T) {
    throw std::runtime_error("bpb: the training split has " + std::to_string(data.train.size()) +
                             " bytes, fewer than one window of " + std::to_string(T));
  }
  if (model.learns_by_counting()) return fit_and_score(ctx, data);
  const double train_per_byte = ctx.spec().flops ? 3 * ctx.flops().total() : 0;
  // The analytical FLOPs are per predicted byte, and a window of T predicts `predicted` bytes
  // (T, except for models that predict only part of it, like Perceiver AR's latents).
  int64_t predicted;
  {
    torch::NoGradGuard no_grad;
    model.module().eval();
    predicted = model.byte_nll(sample_windows(data.train, 1, T).to(ctx.device())).size(1);
  }
  const double per_step = train_per_byte * static_cast<double>(B * predicted);
  const int64_t steps = training_steps(ctx.run().train, per_step);
  auto& m = ctx.metrics();
  Curve curve;
  const double final_bpb = train_bpb(ctx, data, steps, per_step, predicted, curve);
  m["train_steps"] = steps;
  m["train_flops"] = per_step * static_cast<double>(steps);
  m["train_bpb_final"] = final_bpb;
  held_out_bpb(ctx, data, predicted);
  keep_training(ctx, data, curve);
  ResumeFile(ctx, steps).remove();  // the training is over: its weights are in the checkpoint
}

}  // namespace

MEGABENCH_REGISTER_METRIC(bpb, MetricSpec{
                                   .name = "bpb",
                                   .unit = "bits/byte",
                                   .help = "trains (train.*) on the run's data, then held-out bpb "
                                           "in eval.mode (first mode); also train_bpb_final, "
                                           "train_steps, train_flops; with eval settings "
                                           "bpb_<mode> and eval_cost_<mode> (forward passes per "
                                           "byte) for each mode (Yu et al. 2023, Table 11), and "
                                           "with eval.loss_by_position the record's "
                                           "loss_by_position {patch: bits by position in the "
                                           "patch, context: bits by log-spaced window position "
                                           "bucket, context_start: bucket starts}",
                                   .order = 80,
                                   .needs = kNeedsModel | kNeedsTraining | kNeedsEval | kNeedsData,
                                   .run = run_bpb});

}  // namespace megabench
