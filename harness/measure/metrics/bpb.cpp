// "bpb": trains for train.steps (or train.flop_budget) on the run's data, then measures bits per
// byte on the held-out split. It changes the weights, so it runs after every timed metric.
#include <cmath>
#include <numeric>

#include "harness/io/data.h"
#include "harness/measure/context.h"
#include "harness/measure/session.h"

namespace megabench {
namespace {

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
    const double v = train.step(x).item<double>();
    if (!std::isfinite(v)) {
      throw std::runtime_error("bpb: training loss is " + std::to_string(v) + " at step " +
                               std::to_string(s));
    }
    tail.push_back(v);
    if (tail.size() > 10) tail.erase(tail.begin());
  }
  return std::accumulate(tail.begin(), tail.end(), 0.0) / static_cast<double>(tail.size()) /
         std::log(2.0);
}

// Held-out bits per byte: windows of T advance by N, the bytes each window predicts (N == T except
// for models that predict only the tail of their window), so every evaluated byte counts once.
double held_out_bpb(MetricContext& ctx, const data::ByteData& data, int64_t N) {
  ByteModel& model = ctx.model();
  const int64_t B = ctx.run().train.batch, T = model.seq_len();
  EvalScope eval(model, ctx.run());
  const auto held =
      std::min<int64_t>(ctx.run().train.eval_bytes, static_cast<int64_t>(data.held_out.size()));
  if (held < T) {
    throw std::runtime_error("bpb: " + std::to_string(held) +
                             " held-out bytes are fewer than one window of " + std::to_string(T));
  }
  auto stream = torch::from_blob(const_cast<uint8_t*>(data.held_out.data()), {held}, torch::kUInt8)
                    .to(torch::kLong);
  const int64_t windows = (held - (T - N)) / N;
  double nats = 0;
  for (int64_t w0 = 0; w0 < windows; w0 += B) {
    std::vector<torch::Tensor> rows;
    for (int64_t w = w0; w < std::min(windows, w0 + B); ++w)
      rows.push_back(stream.slice(0, w * N, w * N + T));
    auto nll = model.byte_nll(torch::stack(rows).to(ctx.device()));  // (b, N)
    nats += nll.to(torch::kDouble).sum().item<double>();
  }
  if (!std::isfinite(nats)) throw std::runtime_error("bpb: held-out loss is not finite");
  ctx.record().extra["data"]["eval_bytes"] = windows * N;
  return nats / static_cast<double>(windows * N) / std::log(2.0);
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
  m["bpb"] = held_out_bpb(ctx, data, predicted);
}

}  // namespace

MEGABENCH_REGISTER_METRIC(bpb, MetricSpec{
                                   .name = "bpb",
                                   .unit = "bits/byte",
                                   .help = "trains (train.*) on the run's data, then held-out bpb; "
                                           "also train_bpb_final, train_steps, train_flops",
                                   .order = 80,
                                   .needs = kNeedsModel | kNeedsTraining | kNeedsEval | kNeedsData,
                                   .run = run_bpb});

}  // namespace megabench
