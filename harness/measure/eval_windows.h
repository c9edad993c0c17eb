#pragma once
// Held-out evaluation in windows, the one place where every model's bpb windows are laid out and
// scored (MEGABYTE paper, Yu et al. 2023, section 7 and Table 11):
//   basic            non-overlapping windows; each scores every byte it predicts
//   sliding          windows overlapping by half; each scores the second half of what it predicts
//                    (the first window scores all of it)
//   strided          (models with patches) a second pass offset by P/2; each byte is scored by the
//                    pass in which it sits later in its patch
//   sliding+strided  both
// With documents, each document is a stream of its own, scored from its first byte, and the last
// window of a document ends at its last byte; no window crosses a boundary.
//
//   auto plan = eval::plan_segment(eval::Mode::kSliding, {/*window=*/T, /*predicted=*/T, 0}, n,
//   false); auto r = eval::evaluate(model, stream, {0}, mode, geometry, batch, device, positions);
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "harness/api/model.h"

namespace megabench::eval {

enum class Mode { kBasic, kSliding, kStrided, kSlidingStrided };

/// "basic" | "sliding" | "strided" | "sliding+strided"; anything else throws std::invalid_argument
/// naming `where` and the accepted names.
Mode parse_mode(const std::string& name, const std::string& where = "eval.mode");
std::string mode_name(Mode mode);
/// The names in order, for messages and `megabench list`.
const std::vector<std::string>& mode_names();
/// The nominal forward passes per byte of a mode: 1, 2, 2, 4.
int nominal_cost(Mode mode);

/// What a window looks like to the planner: `window` bytes in (T), of which the last `predicted`
/// (N) are predicted (N == T except Perceiver AR, whose prefix predicts nothing); a window of
/// len < T bytes predicts its last len - (T - N). `patch`: the global patch P, 0 for models
/// without patches.
struct Geometry {
  int64_t window = 0;
  int64_t predicted = 0;
  int64_t patch = 0;
  /// Bytes a window of `len` bytes predicts (its last ones); <= 0 means the window cannot run.
  int64_t predicted_in(int64_t len) const { return len - (window - predicted); }
};

/// One forward pass: bytes [start, start + len) of the segment; it scores the bytes in
/// [scored_from, start + len) whose owner is its pass.
struct Window {
  int64_t start = 0;
  int64_t len = 0;
  int64_t scored_from = 0;
  int pass = 0;
};

struct Plan {
  std::vector<Window> windows;
  /// Per byte of the segment: the pass that scores it, or -1 when no pass does (the bytes before
  /// the first prediction; without to_end, the tail that no basic window reaches).
  std::vector<int> owner;
  /// Per byte: the window (index into `windows`) that scores it, or -1.
  std::vector<int64_t> scored_by;
};

/// The windows of a segment of n bytes. Without `to_end` the scored bytes are exactly those basic
/// mode scores (whole windows only, as the harness always evaluated); with it (documents) every
/// byte after the first prediction is scored, the last window ending at the segment's end.
/// Throws std::invalid_argument when the mode needs what the geometry lacks (strided without
/// patches, an odd patch or predicted length).
Plan plan_segment(Mode mode, const Geometry& g, int64_t n, bool to_end);

/// Mean loss by position, in bits: within the patch (0..P-1) and in log-spaced buckets of the
/// position within the window.
class PositionLoss {
 public:
  /// `buckets` log-spaced buckets over [0, window): the first starts at 0, the others at the
  /// distinct values of floor(window^(k / buckets)), k = 0..buckets-1.
  PositionLoss(int64_t window, int64_t patch, int64_t buckets);
  void add(int64_t pos_in_window, double nats);
  const std::vector<int64_t>& bucket_starts() const { return starts_; }
  /// Mean bits per bucket / patch position; nullopt where no byte fell.
  std::vector<std::optional<double>> by_bucket() const;
  std::vector<std::optional<double>> by_patch_position() const;

 private:
  int64_t patch_;
  std::vector<int64_t> starts_;
  std::vector<double> bucket_sum_, patch_sum_;
  std::vector<int64_t> bucket_n_, patch_n_;
};

struct Result {
  double nats = 0;        // summed over the scored bytes
  int64_t scored = 0;     // bytes scored
  int64_t predicted = 0;  // bytes predicted by all windows run (the work done)
  int64_t windows = 0;
  double bpb() const;
  /// Forward passes per byte, relative to one pass that predicts every byte once.
  double cost() const { return scored ? static_cast<double>(predicted) / scored : 0.0; }
};

/// Scores `stream` (1-D int64 on the CPU) in the given mode: every segment [starts[i],
/// starts[i + 1]) (the last to the end of the stream) on its own, windows of equal length batched
/// `batch` at a time through model.byte_nll on `device`. Documents: to_end (see plan_segment).
/// positions, when given, receives every scored byte's loss. A non-finite loss is returned as is.
Result evaluate(ByteModel& model, const torch::Tensor& stream, const std::vector<int64_t>& starts,
                Mode mode, const Geometry& g, int64_t batch, const torch::Device& device,
                bool to_end, PositionLoss* positions = nullptr);

}  // namespace megabench::eval
