// "bpb": trains for train.steps (or train.flop_budget) on the run's data, then measures bits per
// byte on the held-out split. It changes the weights, so it runs after every timed metric.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

#include "harness/io/data.h"
#include "harness/measure/context.h"
#include "harness/measure/eval_windows.h"
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

// Trains `steps` steps on random windows; the mean loss of the last 10 steps, in bits per byte.
double train_bpb(MetricContext& ctx, const data::ByteData& data, int64_t steps) {
  ByteModel& model = ctx.model();
  const int64_t B = ctx.run().train.batch, T = model.seq_len();
  model.module().train();
  TrainSession train(model, ctx.run());
  std::vector<double> tail;
  for (int64_t s = 0; s < steps; ++s) {
    auto x = sample_windows(data.train, B, T).to(ctx.device());
    // A NaN / Inf loss fails the point in the session, naming the step (unless
    // train.stop_on_nonfinite is false: then the figures become null with a warning).
    const double v = train.step(x).item<double>();
    tail.push_back(v);
    if (tail.size() > 10) tail.erase(tail.begin());
  }
  return std::accumulate(tail.begin(), tail.end(), 0.0) / static_cast<double>(tail.size()) /
         std::log(2.0);
}

// The held-out bytes (at most train.eval_bytes), and where its documents start: {0} unless
// eval.per_document, which needs a source with document boundaries.
torch::Tensor held_out_stream(MetricContext& ctx, const data::ByteData& data,
                              std::vector<int64_t>& starts) {
  const auto held =
      std::min<int64_t>(ctx.run().train.eval_bytes, static_cast<int64_t>(data.held_out.size()));
  starts = {0};
  if (ctx.run().eval.per_document) {
    if (data.held_out_docs.empty()) {
      throw std::runtime_error(
          "bpb: eval.per_document needs a data source with document "
          "boundaries (data.source \"builtin\"), not \"" +
          ctx.run().data.source + "\"");
    }
    starts.clear();
    for (auto s : data.held_out_docs)
      if (s < held) starts.push_back(s);
  }
  return torch::from_blob(const_cast<uint8_t*>(data.held_out.data()), {held}, torch::kUInt8)
      .to(torch::kLong);
}

ojson optional_array(const std::vector<std::optional<double>>& xs) {
  ojson out = ojson::array();
  for (const auto& x : xs) out.push_back(x ? ojson(*x) : ojson());
  return out;
}

// Held-out bits per byte in each eval.mode (eval_windows.h): windows of T, each predicting N bytes
// (N == T except for models that predict only the tail of their window), every byte that basic mode
// scores counted once. The first mode is `bpb`; loss_by_position follows the first mode.
void held_out_bpb(MetricContext& ctx, const data::ByteData& data, int64_t N) {
  ByteModel& model = ctx.model();
  const auto& ev = ctx.run().eval;
  const int64_t B = ctx.run().train.batch, T = model.seq_len();
  const eval::Geometry g{T, N, model.patch_size()};
  for (const auto& m : ev.modes) eval::plan_segment(eval::parse_mode(m), g, 0, false);  // checks
  EvalScope scope(model, ctx.run());
  std::vector<int64_t> starts;
  auto stream = held_out_stream(ctx, data, starts);
  if (!ev.per_document && stream.size(0) < T) {
    throw std::runtime_error("bpb: " + std::to_string(stream.size(0)) +
                             " held-out bytes are fewer than one window of " + std::to_string(T));
  }
  std::optional<eval::PositionLoss> positions;
  if (ev.loss_by_position) positions.emplace(T, g.patch, ev.buckets);
  auto& m = ctx.metrics();
  for (size_t i = 0; i < ev.modes.size(); ++i) {
    const auto mode = eval::parse_mode(ev.modes[i]);
    auto r = eval::evaluate(model, stream, starts, mode, g, B, ctx.device(), ev.per_document,
                            i == 0 && positions ? &*positions : nullptr);
    if (r.scored == 0) throw std::runtime_error("bpb: no held-out byte was scored");
    if (i == 0) {
      m["bpb"] = r.bpb();
      ctx.record().extra["data"]["eval_bytes"] = r.scored;
    }
    if (!ev.is_default()) {
      std::string key = ev.modes[i];
      std::replace(key.begin(), key.end(), '+', '_');
      m["bpb_" + key] = r.bpb();
      m["eval_cost_" + key] = r.cost();
    }
  }
  if (positions) {
    ctx.record().extra["loss_by_position"] = {
        {"mode", ev.modes[0]},
        {"patch", optional_array(positions->by_patch_position())},
        {"context", optional_array(positions->by_bucket())},
        {"context_start", positions->bucket_starts()}};
  }
}

void run_bpb(MetricContext& ctx) {
  ByteModel& model = ctx.fresh_model();
  const auto& data = data::load_cached(ctx.run().data);
  ctx.record().extra["data"] = data.info;
  const int64_t T = model.seq_len(), B = ctx.run().train.batch;
  if (static_cast<int64_t>(data.train.size()) < T) {
    throw std::runtime_error("bpb: the training split has " + std::to_string(data.train.size()) +
                             " bytes, fewer than one window of " + std::to_string(T));
  }
  const double train_per_byte = ctx.spec().flops ? 3 * ctx.flops().total() : 0;
  // The analytical FLOPs are per predicted byte, and a window of T predicts `predicted` bytes
  // (T, except for models that predict only part of it, like Perceiver AR's latents).
  int64_t predicted;
  {
    torch::NoGradGuard no_grad;
    model.module().eval();
    predicted = model.byte_nll(sample_windows(data.train, 1, T).to(ctx.device())).size(1);
  }
  const int64_t steps =
      training_steps(ctx.run().train, train_per_byte * static_cast<double>(B * predicted));
  auto& m = ctx.metrics();
  const double final_bpb = train_bpb(ctx, data, steps);
  m["train_steps"] = steps;
  m["train_flops"] = train_per_byte * static_cast<double>(steps * B * predicted);
  m["train_bpb_final"] = final_bpb;
  held_out_bpb(ctx, data, predicted);
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
