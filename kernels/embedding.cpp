#include "kernels/embedding.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>

namespace megabench::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kRowGrain = 256;  // output rows per parallel task (forward)

struct EmbeddingFunction : public torch::autograd::Function<EmbeddingFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& weight_in,
                               const torch::Tensor& ids_in) {
    auto w = weight_in.contiguous();
    auto ids = ids_in.contiguous();
    const int64_t V = w.size(0), D = w.size(1), N = ids.numel();
    const int64_t* id = ids.data_ptr<int64_t>();
    const auto [lo, hi] = N > 0 ? std::minmax_element(id, id + N) : std::pair{id, id};
    TORCH_CHECK(N == 0 || (*lo >= 0 && *hi < V), "embedding: ids must lie in [0, ", V, "), got ",
                N == 0 ? 0 : (*lo < 0 ? *lo : *hi));
    auto shape = ids.sizes().vec();
    shape.push_back(D);
    auto out = torch::empty(shape, w.options());
    const size_t row_bytes = static_cast<size_t>(D) * w.element_size();
    const auto* src = static_cast<const char*>(w.data_ptr());
    auto* dst = static_cast<char*>(out.data_ptr());
    at::parallel_for(0, N, kRowGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        std::memcpy(dst + i * row_bytes, src + id[i] * row_bytes, row_bytes);
    });
    ctx->save_for_backward({ids});
    ctx->saved_data["V"] = V;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto ids = ctx->get_saved_variables()[0];
    const int64_t V = ctx->saved_data["V"].toInt();
    auto dy = grads[0].contiguous();
    const int64_t D = dy.size(-1), N = ids.numel();
    auto dw = torch::zeros({V, D}, dy.options());
    const int64_t* id = ids.data_ptr<int64_t>();
    AT_DISPATCH_FLOATING_TYPES(dy.scalar_type(), "embedding_backward", [&] {
      const scalar_t* g = dy.data_ptr<scalar_t>();
      scalar_t* out = dw.data_ptr<scalar_t>();
      // Each task owns table rows [v0, v1) and scans every id: no two tasks write one row.
      const int64_t threads = at::get_num_threads();
      at::parallel_for(0, V, (V + threads - 1) / threads, [&](int64_t v0, int64_t v1) {
        for (int64_t i = 0; i < N; ++i) {
          const int64_t v = id[i];
          if (v < v0 || v >= v1) continue;
          scalar_t* o = out + v * D;
          const scalar_t* gi = g + i * D;
          for (int64_t d = 0; d < D; ++d) o[d] += gi[d];
        }
      });
    });
    return {dw, torch::Tensor()};
  }
};

}  // namespace

bool embedding_supported(const torch::Tensor& weight, const torch::Tensor& ids) {
  const auto t = weight.scalar_type();
  return weight.device().is_cpu() && ids.device().is_cpu() &&
         (t == torch::kFloat || t == torch::kDouble) && weight.dim() == 2 &&
         ids.scalar_type() == torch::kLong;
}

torch::Tensor embedding(const torch::Tensor& weight, const torch::Tensor& ids) {
  if (!embedding_supported(weight, ids)) return embedding_reference(weight, ids);
  return EmbeddingFunction::apply(weight, ids);
}

torch::Tensor embedding_reference(const torch::Tensor& weight, const torch::Tensor& ids) {
  return torch::nn::functional::embedding(ids, weight);
}

}  // namespace megabench::kernels
