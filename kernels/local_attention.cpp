#include "kernels/local_attention.h"

#include <cmath>
#include <limits>

#include "kernels/checks.h"
#include "kernels/cuda_launch.h"

#ifdef MEGABENCH_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace megabench::kernels {

torch::Tensor local_attention_reference(const torch::Tensor& q, const torch::Tensor& k,
                                        const torch::Tensor& v, double scale) {
  TORCH_CHECK(q.dim() == 4 && k.sizes() == q.sizes() && v.sizes() == q.sizes(),
              "local_attention_reference: q, k, v must share a shape (B, H, n, d), got ", q.sizes(),
              ", ", k.sizes(), ", ", v.sizes());
  const int64_t n = q.size(2);
  auto sim = torch::matmul(q, k.transpose(-1, -2)) * scale;  // (B, H, n, n)
  auto future = torch::ones({n, n}, q.options().dtype(torch::kBool)).triu(1);
  sim = sim.masked_fill(future, -std::numeric_limits<double>::infinity());
  return torch::matmul(sim.softmax(-1), v);  // (B, H, n, d)
}

namespace {

void check_inputs(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                  bool need_cuda, bool need_contiguous) {
  constexpr const char* fn = "local_attention";
  TORCH_CHECK(q.defined() && k.defined() && v.defined(), fn, ": q, k and v must be defined");
  TORCH_CHECK(q.dim() == 4, fn, ": q must be (B, H, n, d), got ", q.dim(), " dims ", q.sizes());
  const int64_t b = q.size(0), h = q.size(1), n = q.size(2), d = q.size(3);
  MEGABENCH_CHECK_SHAPE("local_attention", k, b, h, n, d);
  MEGABENCH_CHECK_SHAPE("local_attention", v, b, h, n, d);
  TORCH_CHECK(n >= 1 && n <= kLocalAttentionMaxLen, fn,
              ": sequence length n = q.size(2) must be in [1, ", kLocalAttentionMaxLen, "], got ",
              n, " (longer sequences: use the generic attend())");
  TORCH_CHECK(d == 32 || d == 64 || d == 128, fn,
              ": head dim d = q.size(3) must be 32, 64 or 128, got ", d);
  TORCH_CHECK(is_kernel_dtype(q.scalar_type()), fn,
              ": q must be float32, float16 or bfloat16, got ", q.scalar_type());
  TORCH_CHECK(k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type(), fn,
              ": q, k, v must share a dtype, got ", q.scalar_type(), ", ", k.scalar_type(), ", ",
              v.scalar_type());
  if (need_contiguous) {
    MEGABENCH_CHECK_CONTIGUOUS("local_attention", q);
    MEGABENCH_CHECK_CONTIGUOUS("local_attention", k);
    MEGABENCH_CHECK_CONTIGUOUS("local_attention", v);
  }
  if (need_cuda) {
#ifndef MEGABENCH_WITH_CUDA
    TORCH_CHECK(false, fn,
                ": megabench was built without CUDA (nvcc not found at configure time); "
                "use the generic attend() path");
#endif
    MEGABENCH_CHECK_CUDA("local_attention", q);
    MEGABENCH_CHECK_SAME_DEVICE("local_attention", q, k);
    MEGABENCH_CHECK_SAME_DEVICE("local_attention", q, v);
  }
}

}  // namespace

void check_local_attention_inputs(const torch::Tensor& q, const torch::Tensor& k,
                                  const torch::Tensor& v, bool need_cuda) {
  check_inputs(q, k, v, need_cuda, /*need_contiguous=*/true);
}

bool local_attention_supported(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, std::string* why) {
  try {
    // Contiguity is not required here: local_attention() makes its inputs contiguous.
    check_inputs(q, k, v, /*need_cuda=*/true, /*need_contiguous=*/false);
    return true;
  } catch (const c10::Error& e) {
    if (why) *why = e.what_without_backtrace();
    return false;
  }
}

#ifdef MEGABENCH_WITH_CUDA
namespace {

launch::DType to_launch_dtype(c10::ScalarType t) {
  switch (t) {
    case torch::kFloat16:
      return launch::DType::kFloat16;
    case torch::kBFloat16:
      return launch::DType::kBFloat16;
    default:
      return launch::DType::kFloat32;
  }
}

void* current_stream(const torch::Tensor& t) {
  return c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
}

}  // namespace
#endif

std::pair<torch::Tensor, torch::Tensor> local_attention_forward(const torch::Tensor& q,
                                                                const torch::Tensor& k,
                                                                const torch::Tensor& v,
                                                                double scale) {
  check_local_attention_inputs(q, k, v, true);
#ifdef MEGABENCH_WITH_CUDA
  const c10::cuda::CUDAGuard guard(q.device());
  auto out = torch::empty_like(q);  // (B, H, n, d)
  auto lse = torch::empty({q.size(0), q.size(1), q.size(2)}, q.options().dtype(torch::kFloat32));
  const std::string err = launch::local_attention_fwd(
      to_launch_dtype(q.scalar_type()), q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(),
      lse.data_ptr<float>(), q.size(0) * q.size(1), static_cast<int>(q.size(2)),
      static_cast<int>(q.size(3)), static_cast<float>(scale), current_stream(q));
  TORCH_CHECK(err.empty(), "local_attention: forward kernel failed: ", err);
  return {out, lse};
#else
  (void)scale;
  throw std::runtime_error("local_attention: megabench was built without CUDA");
#endif
}

std::vector<torch::Tensor> local_attention_backward(const torch::Tensor& dout,
                                                    const torch::Tensor& q, const torch::Tensor& k,
                                                    const torch::Tensor& v,
                                                    const torch::Tensor& lse, double scale) {
  check_local_attention_inputs(q, k, v, true);
  MEGABENCH_CHECK_SHAPE("local_attention_backward", dout, q.size(0), q.size(1), q.size(2),
                        q.size(3));
  TORCH_CHECK(dout.scalar_type() == q.scalar_type(), "local_attention_backward: dout must be ",
              q.scalar_type(), ", got ", dout.scalar_type());
  MEGABENCH_CHECK_CONTIGUOUS("local_attention_backward", dout);
  MEGABENCH_CHECK_SAME_DEVICE("local_attention_backward", q, dout);
  MEGABENCH_CHECK_SHAPE("local_attention_backward", lse, q.size(0), q.size(1), q.size(2));
  TORCH_CHECK(
      lse.scalar_type() == torch::kFloat32 && lse.is_contiguous(),
      "local_attention_backward: lse must be contiguous float32, as the forward returns it");
  MEGABENCH_CHECK_SAME_DEVICE("local_attention_backward", q, lse);
#ifdef MEGABENCH_WITH_CUDA
  const c10::cuda::CUDAGuard guard(q.device());
  auto dq = torch::empty_like(q), dk = torch::empty_like(k), dv = torch::empty_like(v);
  const std::string err = launch::local_attention_bwd(
      to_launch_dtype(q.scalar_type()), dout.data_ptr(), q.data_ptr(), k.data_ptr(), v.data_ptr(),
      lse.data_ptr<float>(), dq.data_ptr(), dk.data_ptr(), dv.data_ptr(), q.size(0) * q.size(1),
      static_cast<int>(q.size(2)), static_cast<int>(q.size(3)), static_cast<float>(scale),
      current_stream(q));
  TORCH_CHECK(err.empty(), "local_attention: backward kernel failed: ", err);
  return {dq, dk, dv};
#else
  (void)scale;
  throw std::runtime_error("local_attention: megabench was built without CUDA");
#endif
}

namespace {

class LocalAttentionFunction : public torch::autograd::Function<LocalAttentionFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q,
                               const torch::Tensor& k, const torch::Tensor& v, double scale) {
    auto [out, lse] = local_attention_forward(q, k, v, scale);
    ctx->save_for_backward({q, k, v, lse});
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const double scale = ctx->saved_data["scale"].toDouble();
    auto g = local_attention_backward(grads[0].contiguous(), saved[0], saved[1], saved[2], saved[3],
                                      scale);
    return {g[0], g[1], g[2], torch::Tensor()};
  }
};

}  // namespace

torch::Tensor local_attention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, double scale) {
  return LocalAttentionFunction::apply(q.contiguous(), k.contiguous(), v.contiguous(), scale);
}

}  // namespace megabench::kernels
