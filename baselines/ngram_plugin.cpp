// Registers the byte n-gram baseline (baselines/ngram.h) as the model "ngram": it learns by
// counting the training split (ByteModel::fit), and the harness scores it like any other model.
#include <stdexcept>

#include "baselines/ngram.h"
#include "harness/api/registry.h"

namespace megabench {
namespace {

struct NGramConfig {
  int64_t order = 5;
  int64_t seq_len = 4096;
};

const NGramConfig kDefaults;

const std::vector<OptionSpec> kOptions = {
    {"order", "int", kDefaults.order,
     "n, 1 to 6: interpolated modified Kneser-Ney over the n - 1 bytes before each byte (Chen & "
     "Goodman 1998)"},
    {"seq_len", "int", kDefaults.seq_len,
     "the window the harness scores at a time; a byte sees the order - 1 bytes before it "
     "inside its window"},
};

json resolve(const json& config) {
  json c = apply_option_defaults("ngram", kOptions, config);
  const int64_t order = c["order"], seq_len = c["seq_len"];
  if (order < 1 || order > 6) {
    throw OptionError("order", "must be between 1 and 6, got " + c["order"].dump());
  }
  if (seq_len < order) {
    throw OptionError("seq_len", "must be at least the order (" + std::to_string(order) +
                                     "), got " + c["seq_len"].dump());
  }
  return c;
}

// The n-gram model behind the ByteModel interface. It has no tensors: the module is empty, and
// every output is computed from the counts on the CPU, then moved to the input's device.
class NGramAdapter : public ByteModel {
 public:
  explicit NGramAdapter(const NGramConfig& c) : model_(NGramOptions(c.order)), config_(c) {}
  torch::nn::Module& module() override { return module_; }
  int64_t seq_len() const override { return config_.seq_len; }
  bool learns_by_counting() const override { return true; }
  void fit(const std::vector<uint8_t>& train) override { model_.fit(train); }

  torch::Tensor byte_nll(const torch::Tensor& bytes) override {
    const auto rows = host_rows(bytes);
    const int64_t B = bytes.size(0), T = bytes.size(1);
    auto out = torch::empty({B, T}, torch::kFloat64);
    auto acc = out.accessor<double, 2>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) acc[b][t] = model_.nll(rows[b].data(), t);
    return out.to(torch::TensorOptions().dtype(torch::kFloat32).device(bytes.device()));
  }
  torch::Tensor loss(const torch::Tensor& bytes) override { return byte_nll(bytes).mean(); }
  torch::Tensor logits(const torch::Tensor& bytes) override {  // row t: byte t + 1, (B, T, V)
    const auto rows = host_rows(bytes);
    const int64_t B = bytes.size(0), T = bytes.size(1);
    auto out = torch::empty({B, T, 256}, torch::kFloat64);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) out[b][t].copy_(log_distribution(rows[b].data(), t + 1));
    return out.to(torch::TensorOptions().dtype(torch::kFloat32).device(bytes.device()));
  }
  torch::Tensor generate(const torch::Tensor& prime, int64_t n, const SamplingOptions& o) override {
    TORCH_CHECK(prime.dim() == 2 && prime.size(0) > 0, "ngram: prime must be (batch, length)");
    RerunDecoder d([this](const torch::Tensor& seq) {  // (B, L) -> (B, V) log-probabilities
      const auto rows = host_rows(seq);
      std::vector<torch::Tensor> out;
      for (const auto& r : rows) out.push_back(log_distribution(r.data(), seq.size(1)));
      return torch::stack(out).to(torch::kFloat32);
    });
    return decode(d, check_byte_ids(prime, 256, "ngram: prime"), n, o);
  }
  ParamCount params() const override {
    ParamCount pc;  // no tensors; the stored counts are its size
    pc.groups = {{"counts", model_.fitted() ? model_.stored_counts() : 0}};
    return pc;
  }

 private:
  std::vector<std::vector<uint8_t>> host_rows(const torch::Tensor& bytes) const {
    TORCH_CHECK(model_.fitted(),
                "ngram: the model has not been fitted (the bpb metric fits it on "
                "the training split)");
    auto ids = check_byte_ids(bytes, 256, "ngram: bytes").to(torch::kCPU).contiguous();
    TORCH_CHECK(ids.dim() == 2, "ngram: bytes must be (batch, length), got ", ids.sizes());
    std::vector<std::vector<uint8_t>> rows(ids.size(0));
    auto acc = ids.accessor<int64_t, 2>();
    for (int64_t b = 0; b < ids.size(0); ++b)
      for (int64_t t = 0; t < ids.size(1); ++t) rows[b].push_back(static_cast<uint8_t>(acc[b][t]));
    return rows;
  }
  torch::Tensor log_distribution(const uint8_t* context, int64_t len) const {
    return torch::tensor(model_.distribution(context, len), torch::kFloat64).log();
  }

  NGramModel model_;
  NGramConfig config_;
  torch::nn::Module module_;
};

}  // namespace

MEGABENCH_REGISTER_MODEL(
    ngram, TypedModelSpec<NGramConfig>{
               .name = "ngram",
               .description = "byte n-gram with interpolated modified Kneser-Ney smoothing, "
                              "orders 1-6: learns by counting the training split (bpb only)",
               .options = kOptions,
               .resolve = resolve,
               .parse =
                   [](const json& c) {
                     return NGramConfig{c["order"], c["seq_len"]};
                   },
               .build = [](const NGramConfig& c) -> std::unique_ptr<ByteModel> {
                 return std::make_unique<NGramAdapter>(c);
               },
               .tiny_config = json{{"order", 3}, {"seq_len", 32}}});

}  // namespace megabench
