#pragma once
// Held-out scoring shared by the bpb metric and `megabench eval`: the held-out bytes of a data
// source (at most eval_bytes, split by document when asked) scored in each eval mode
// (eval_windows.h), and a short greedy sample, the first thing a researcher reads before trusting
// a bpb.
//
//   HeldOutScores s = score_held_out(model, data, run.eval, 65536, /*batch=*/4, N, device);
//   s.results[0].bpb();                 // the first mode's bits per byte
//   json sample = greedy_sample(model, data, device);   // {"prime", "continuation"}
#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "harness/api/model.h"
#include "harness/config/run_settings.h"
#include "harness/io/data.h"
#include "harness/measure/eval_windows.h"

namespace megabench {

struct HeldOutScores {
  std::vector<std::string> modes;               // ev.modes
  std::vector<eval::Result> results;            // one per mode
  std::optional<eval::PositionLoss> positions;  // of the first mode, with ev.loss_by_position
};

/// Scores the first `eval_bytes` held-out bytes of `data` in every mode of `ev`; `predicted` is
/// the bytes a window of model.seq_len() predicts (byte_nll's width). The model should be in eval
/// mode (EvalScope). Throws std::runtime_error when the held-out split is shorter than one window
/// or per_document is asked of a source without documents (named by `source`).
HeldOutScores score_held_out(ByteModel& model, const data::ByteData& data, const EvalSettings& ev,
                             int64_t eval_bytes, int64_t batch, int64_t predicted,
                             const torch::Device& device, const std::string& source);

/// Greedy (temperature 0) continuation of the held-out split's first bytes: a prime of
/// min(32, seq_len / 4) bytes and min(64, seq_len - prime) new ones. As text, bytes outside
/// printable ASCII (but \n and \t) written \xNN: {"prime": ..., "continuation": ...}.
json greedy_sample(ByteModel& model, const data::ByteData& data, const torch::Device& device);

/// Bytes as readable ASCII: printable ASCII, \n and \t kept; others as \xNN.
std::string printable_bytes(const std::vector<uint8_t>& bytes);

}  // namespace megabench
