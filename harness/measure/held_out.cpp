#include "harness/measure/held_out.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace megabench {

HeldOutScores score_held_out(ByteModel& model, const data::ByteData& data, const EvalSettings& ev,
                             int64_t eval_bytes, int64_t batch, int64_t predicted,
                             const torch::Device& device, const std::string& source) {
  const int64_t T = model.seq_len();
  const eval::Geometry g{T, predicted, model.patch_size()};
  for (const auto& m : ev.modes) eval::plan_segment(eval::parse_mode(m), g, 0, false);  // checks
  const auto held = std::min<int64_t>(eval_bytes, static_cast<int64_t>(data.held_out.size()));
  std::vector<int64_t> starts = {0};
  if (ev.per_document) {
    if (data.held_out_docs.empty()) {
      throw std::runtime_error(
          "eval.per_document needs a data source with document boundaries (data.source "
          "\"builtin\"), not \"" +
          source + "\"");
    }
    starts.clear();
    for (auto s : data.held_out_docs)
      if (s < held) starts.push_back(s);
  } else if (held < T) {
    throw std::runtime_error(std::to_string(held) +
                             " held-out bytes are fewer than one window of " + std::to_string(T));
  }
  const auto stream =
      torch::from_blob(const_cast<uint8_t*>(data.held_out.data()), {held}, torch::kUInt8)
          .to(torch::kLong);
  HeldOutScores out;
  if (ev.loss_by_position) out.positions.emplace(T, g.patch, ev.buckets);
  for (size_t i = 0; i < ev.modes.size(); ++i) {
    out.modes.push_back(ev.modes[i]);
    out.results.push_back(eval::evaluate(model, stream, starts, eval::parse_mode(ev.modes[i]), g,
                                         batch, device, ev.per_document,
                                         i == 0 && out.positions ? &*out.positions : nullptr));
    if (out.results.back().scored == 0) throw std::runtime_error("no held-out byte was scored");
  }
  return out;
}

std::string printable_bytes(const std::vector<uint8_t>& bytes) {
  std::string out;
  for (uint8_t b : bytes) {
    if ((b >= 0x20 && b < 0x7f) || b == '\n' || b == '\t') {
      out += static_cast<char>(b);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", b);
      out += buf;
    }
  }
  return out;
}

json greedy_sample(ByteModel& model, const data::ByteData& data, const torch::Device& device) {
  const int64_t T = model.seq_len();
  const int64_t prime_len =
      std::min<int64_t>({32, T / 4, static_cast<int64_t>(data.held_out.size())});
  const int64_t n = std::min<int64_t>(64, T - prime_len);
  if (prime_len < 1 || n < 1) return nullptr;
  const std::vector<uint8_t> prime_bytes(data.held_out.begin(), data.held_out.begin() + prime_len);
  auto prime = torch::tensor(std::vector<int64_t>(prime_bytes.begin(), prime_bytes.end()))
                   .view({1, prime_len})
                   .to(device);
  SamplingOptions greedy;
  greedy.temperature = 0;
  const auto out = model.generate(prime, n, greedy).to(torch::kCPU);  // (1, prime_len + n)
  std::vector<uint8_t> continuation;
  for (int64_t i = prime_len; i < out.size(1); ++i)
    continuation.push_back(static_cast<uint8_t>(out[0][i].item<int64_t>()));
  return {{"prime", printable_bytes(prime_bytes)}, {"continuation", printable_bytes(continuation)}};
}

}  // namespace megabench
