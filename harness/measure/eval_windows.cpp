#include "harness/measure/eval_windows.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace megabench::eval {

const std::vector<std::string>& mode_names() {
  static const std::vector<std::string> names = {"basic", "sliding", "strided", "sliding+strided"};
  return names;
}

Mode parse_mode(const std::string& name, const std::string& where) {
  const auto& names = mode_names();
  auto it = std::find(names.begin(), names.end(), name);
  if (it == names.end()) {
    throw std::invalid_argument(where + ": expected one of basic, sliding, strided, " +
                                "sliding+strided, got \"" + name + "\"");
  }
  return static_cast<Mode>(it - names.begin());
}

std::string mode_name(Mode mode) {
  return mode_names()[static_cast<size_t>(mode)];
}

int nominal_cost(Mode mode) {
  return mode == Mode::kBasic ? 1 : mode == Mode::kSlidingStrided ? 4 : 2;
}

namespace {

bool is_sliding(Mode m) {
  return m == Mode::kSliding || m == Mode::kSlidingStrided;
}
bool is_strided(Mode m) {
  return m == Mode::kStrided || m == Mode::kSlidingStrided;
}

void check_geometry(Mode mode, const Geometry& g) {
  if (g.window < 1 || g.predicted < 1 || g.predicted > g.window) {
    throw std::invalid_argument("eval: a window of " + std::to_string(g.window) + " bytes that " +
                                "predicts " + std::to_string(g.predicted) + " cannot be scored");
  }
  if (is_sliding(mode) && g.predicted % 2 != 0) {
    throw std::invalid_argument("eval.mode " + mode_name(mode) + ": sliding windows overlap by " +
                                "half, which needs an even number of predicted bytes per window, " +
                                "got " + std::to_string(g.predicted));
  }
  if (is_strided(mode) && g.patch < 2) {
    throw std::invalid_argument("eval.mode " + mode_name(mode) + ": strided inference offsets a " +
                                "second pass by half a patch and applies to models with patches " +
                                "(MEGABYTE); this model has none");
  }
  if (is_strided(mode) && g.patch % 2 != 0) {
    throw std::invalid_argument("eval.mode " + mode_name(mode) + ": strided inference needs an " +
                                "even patch size, got " + std::to_string(g.patch));
  }
}

// One pass's windows over [offset, n): `stride` apart, each scoring its last `stride` predicted
// bytes (the first all it predicts); with to_end a last window that ends at n.
void plan_pass(const Geometry& g, int64_t n, int64_t offset, int64_t stride, bool to_end, int pass,
               std::vector<Window>& out) {
  int64_t scored_end = -1;  // end of the bytes this pass scores so far
  for (int64_t start = offset; start + g.window <= n; start += stride) {
    const int64_t first = start + g.window - (scored_end < 0 ? g.predicted : stride);
    out.push_back({start, g.window, first, pass});
    scored_end = start + g.window;
  }
  if (!to_end || scored_end == n) return;
  const int64_t start = std::max(offset, n - g.window), len = n - start;
  const int64_t predicted = g.predicted_in(len);
  if (predicted < 1) return;
  out.push_back({start, len, std::max(scored_end, n - predicted), pass});
}

// Per byte, the window of `windows` that scores it in its pass (-1: none), for `passes` passes.
std::vector<std::vector<int64_t>> coverage(const std::vector<Window>& windows, int64_t n,
                                           int passes) {
  std::vector<std::vector<int64_t>> cover(static_cast<size_t>(passes),
                                          std::vector<int64_t>(static_cast<size_t>(n), -1));
  for (size_t w = 0; w < windows.size(); ++w) {
    const auto& win = windows[w];
    for (int64_t t = win.scored_from; t < win.start + win.len; ++t)
      cover[static_cast<size_t>(win.pass)][static_cast<size_t>(t)] = static_cast<int64_t>(w);
  }
  return cover;
}

std::vector<Window> plan_windows(Mode mode, const Geometry& g, int64_t n, bool to_end) {
  std::vector<Window> windows;
  const int64_t stride = is_sliding(mode) ? g.predicted / 2 : g.predicted;
  plan_pass(g, n, 0, stride, to_end, 0, windows);
  if (is_strided(mode)) plan_pass(g, n, g.patch / 2, stride, to_end, 1, windows);
  return windows;
}

}  // namespace

Plan plan_segment(Mode mode, const Geometry& g, int64_t n, bool to_end) {
  check_geometry(mode, g);
  Plan plan;
  plan.windows = plan_windows(mode, g, n, to_end);
  // The bytes to score are those basic mode scores; each goes to the pass where it sits later in
  // its patch (ties and models without patches: the first pass).
  const auto basic = coverage(plan_windows(Mode::kBasic, g, n, to_end), n, 1)[0];
  const int passes = is_strided(mode) ? 2 : 1;
  const auto cover = coverage(plan.windows, n, passes);
  plan.owner.assign(static_cast<size_t>(n), -1);
  plan.scored_by.assign(static_cast<size_t>(n), -1);
  for (int64_t t = 0; t < n; ++t) {
    if (basic[static_cast<size_t>(t)] < 0) continue;
    int64_t best_pos = -1;
    for (int p = 0; p < passes; ++p) {
      const int64_t w = cover[static_cast<size_t>(p)][static_cast<size_t>(t)];
      if (w < 0) continue;
      const int64_t in_window = t - plan.windows[static_cast<size_t>(w)].start;
      const int64_t pos = g.patch > 0 ? in_window % g.patch : 0;
      if (pos > best_pos) {
        best_pos = pos;
        plan.owner[static_cast<size_t>(t)] = p;
        plan.scored_by[static_cast<size_t>(t)] = w;
      }
    }
    if (best_pos < 0) {
      throw std::logic_error("eval: byte " + std::to_string(t) + " is scored in basic mode but " +
                             "no window of mode " + mode_name(mode) + " scores it");
    }
  }
  return plan;
}

// ---------------------------------------------------------------------------------------------
// Loss by position

PositionLoss::PositionLoss(int64_t window, int64_t patch, int64_t buckets) : patch_(patch) {
  if (window < 1 || buckets < 1) {
    throw std::invalid_argument("eval.buckets: expected a positive number of buckets and a " +
                                std::string("positive window"));
  }
  starts_.push_back(0);
  for (int64_t k = 0; k < buckets; ++k) {
    const auto edge = static_cast<int64_t>(
        std::floor(std::pow(static_cast<double>(window), static_cast<double>(k) / buckets) + 1e-9));
    if (edge > starts_.back() && edge < window) starts_.push_back(edge);
  }
  bucket_sum_.assign(starts_.size(), 0.0);
  bucket_n_.assign(starts_.size(), 0);
  patch_sum_.assign(static_cast<size_t>(std::max<int64_t>(patch, 0)), 0.0);
  patch_n_.assign(patch_sum_.size(), 0);
}

void PositionLoss::add(int64_t pos, double nats) {
  const double bits = nats / std::log(2.0);
  auto it = std::upper_bound(starts_.begin(), starts_.end(), pos);
  const auto b = static_cast<size_t>(it - starts_.begin() - 1);
  bucket_sum_[b] += bits;
  bucket_n_[b] += 1;
  if (patch_ > 0) {
    patch_sum_[static_cast<size_t>(pos % patch_)] += bits;
    patch_n_[static_cast<size_t>(pos % patch_)] += 1;
  }
}

namespace {
std::vector<std::optional<double>> means(const std::vector<double>& sum,
                                         const std::vector<int64_t>& n) {
  std::vector<std::optional<double>> out(sum.size());
  for (size_t i = 0; i < sum.size(); ++i)
    if (n[i] > 0) out[i] = sum[i] / static_cast<double>(n[i]);
  return out;
}
}  // namespace

std::vector<std::optional<double>> PositionLoss::by_bucket() const {
  return means(bucket_sum_, bucket_n_);
}
std::vector<std::optional<double>> PositionLoss::by_patch_position() const {
  return means(patch_sum_, patch_n_);
}

// ---------------------------------------------------------------------------------------------
// Scoring

double Result::bpb() const {
  return scored ? nats / static_cast<double>(scored) / std::log(2.0) : 0.0;
}

namespace {

// Runs windows [first, last) of one segment (all of one length) and adds what they score.
void score_batch(ByteModel& model, const torch::Tensor& segment, const Plan& plan, size_t first,
                 size_t last, const Geometry& g, const torch::Device& device, Result& r,
                 PositionLoss* positions) {
  const int64_t len = plan.windows[first].len, predicted = g.predicted_in(len);
  std::vector<torch::Tensor> rows;
  for (size_t w = first; w < last; ++w)
    rows.push_back(segment.slice(0, plan.windows[w].start, plan.windows[w].start + len));
  auto nll = model.byte_nll(torch::stack(rows).to(device)).to(torch::kCPU, torch::kDouble);
  if (nll.size(1) != predicted) {
    throw std::runtime_error("eval: a window of " + std::to_string(len) + " bytes should predict " +
                             "its last " + std::to_string(predicted) + ", but the model scored " +
                             std::to_string(nll.size(1)));
  }
  auto acc = nll.accessor<double, 2>();
  for (size_t w = first; w < last; ++w) {
    const auto& win = plan.windows[w];
    r.predicted += predicted;
    r.windows += 1;
    for (int64_t t = win.scored_from; t < win.start + len; ++t) {
      if (plan.scored_by[static_cast<size_t>(t)] != static_cast<int64_t>(w)) continue;
      const double v = acc[static_cast<int64_t>(w - first)][t - (win.start + len - predicted)];
      r.nats += v;
      r.scored += 1;
      if (positions) positions->add(t - win.start, v);
    }
  }
}

}  // namespace

Result evaluate(ByteModel& model, const torch::Tensor& stream, const std::vector<int64_t>& starts,
                Mode mode, const Geometry& g, int64_t batch, const torch::Device& device,
                bool to_end, PositionLoss* positions) {
  Result r;
  const int64_t total = stream.size(0);
  for (size_t i = 0; i < starts.size(); ++i) {
    const int64_t begin = starts[i], end = i + 1 < starts.size() ? starts[i + 1] : total;
    auto segment = stream.slice(0, begin, end);
    const Plan plan = plan_segment(mode, g, end - begin, to_end);
    size_t first = 0;
    while (first < plan.windows.size()) {
      size_t last = first + 1;
      while (last < plan.windows.size() && last - first < static_cast<size_t>(batch) &&
             plan.windows[last].len == plan.windows[first].len)
        ++last;
      score_batch(model, segment, plan, first, last, g, device, r, positions);
      first = last;
    }
  }
  return r;  // a non-finite loss is the caller's to judge (bpb: train.stop_on_nonfinite)
}

}  // namespace megabench::eval
