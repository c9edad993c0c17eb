// Microbenchmarks of the blocks MEGABYTE spends its time in, on CPU and (when present) CUDA:
// global attention (SDPA), local attention (SDPA vs the custom kernel), feedforward, patch
// embedding, sampling (LibTorch ops vs the fused kernel), RMSNorm (ops vs the fused CPU kernel)
// the batch-1 bf16 GEMV of decoding (at::mv in bf16 and fp32 vs the kernel), and a Linear over
// (B, T, D) input, forward and backward, as LibTorch's functional linear and as ATen's linear, and
// a windowed KV cache's append (a concatenation per step vs LayerCache), and causal attention over
// short key ranges on the CPU (the references' unfused ops, LibTorch's flash kernel, the
// short-attention kernel).
// Each reports FLOP/s and bytes/s.
//
//   build/default/megabench_micro --benchmark_min_time=0.05 --benchmark_out=micro.json
//
// CUDA variants are timed with CUDA events (manual time); without a GPU they are skipped with an
// error row. To add one: write a BM_* function that builds its inputs, calls time_it() with the
// work, its FLOPs and bytes, and register it in register_all().
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "harness/measure/precision.h"
#include "kernels/cross_entropy.h"
#include "kernels/decode_attention.h"
#include "kernels/embedding.h"
#include "kernels/gemv.h"
#include "kernels/local_attention.h"
#include "kernels/rms_norm.h"
#include "kernels/sampling.h"
#include "kernels/short_attention.h"
#include "models/layers.h"

#ifdef MEGABENCH_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#endif

namespace {

namespace mk = megabench::kernels;

enum class Dev { kCpu, kCuda };

torch::TensorOptions options(Dev dev) {
  // CUDA runs in bf16, the precision MEGABYTE trains in; CPU in fp32.
  return dev == Dev::kCuda ? torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16)
                           : torch::TensorOptions().dtype(torch::kFloat32);
}

bool skip_without_cuda(benchmark::State& state, Dev dev) {
  if (dev == Dev::kCuda && !torch::cuda::is_available()) {
    state.SkipWithError("no CUDA device");
    return true;
  }
  return false;
}

// Runs `work` once to warm up, then times each iteration: CUDA events on the current stream for
// CUDA, the steady clock for CPU (manual time either way, so both report the same thing).
// Autograd is off unless `grad` (benchmarks that time a backward pass).
template <typename Fn>
void time_it(benchmark::State& state, Dev dev, Fn&& work, double flops, double bytes,
             bool grad = false) {
  std::optional<torch::NoGradGuard> no_grad;
  if (!grad) no_grad.emplace();
  work();
#ifdef MEGABENCH_WITH_CUDA
  cudaEvent_t start = nullptr, stop = nullptr;
  if (dev == Dev::kCuda) {
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
  }
#endif
  for (auto _ : state) {
    if (dev == Dev::kCuda) {
#ifdef MEGABENCH_WITH_CUDA
      auto stream = c10::cuda::getCurrentCUDAStream().stream();
      cudaEventRecord(start, stream);
      work();
      cudaEventRecord(stop, stream);
      cudaEventSynchronize(stop);
      float ms = 0;
      cudaEventElapsedTime(&ms, start, stop);
      state.SetIterationTime(static_cast<double>(ms) * 1e-3);
#endif
    } else {
      const auto t0 = std::chrono::steady_clock::now();
      work();
      state.SetIterationTime(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  }
#ifdef MEGABENCH_WITH_CUDA
  if (dev == Dev::kCuda) {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
#endif
  state.counters["FLOP/s"] =
      benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["bytes/s"] =
      benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
}

constexpr int64_t kHeads = 8, kDimHead = 64;

// Global attention: causal SDPA over seq_len / patch patch embeddings (B = 1).
void BM_GlobalAttention(benchmark::State& state, Dev dev) {
  if (skip_without_cuda(state, dev)) return;
  const int64_t t = state.range(0) / state.range(1);
  auto q = torch::randn({1, kHeads, t, kDimHead}, options(dev));
  auto k = torch::randn_like(q), v = torch::randn_like(q);
  megabench::AttendOptions o;
  o.attention = megabench::AttentionPath::kSdpa;
  const double flops = 4.0 * kHeads * t * t * kDimHead / 2;  // causal: half the score matrix
  const double bytes = 4.0 * q.numel() * q.element_size();
  time_it(
      state, dev, [&] { megabench::attend(q, k, v, o); }, flops, bytes);
}

// Local attention: seq_len / patch sequences of patch + 1 positions, generic SDPA or the kernel;
// forward only, or (train) forward and backward, the gradients of q, k and v.
void BM_LocalAttention(benchmark::State& state, Dev dev, bool kernel, bool train) {
  if (skip_without_cuda(state, dev)) return;
  if (kernel && dev != Dev::kCuda) {
    state.SkipWithError("the local attention kernel is CUDA-only");
    return;
  }
  const int64_t seqs = state.range(0) / state.range(1), n = state.range(1) + 1;
  auto q = torch::randn({seqs, kHeads, n, kDimHead}, options(dev)).requires_grad_(train);
  auto k = torch::randn_like(q).requires_grad_(train),
       v = torch::randn_like(q).requires_grad_(train);
  megabench::AttendOptions o;
  o.attention = megabench::AttentionPath::kSdpa;
  o.kernel = kernel ? megabench::AttentionKernel::kLocalCuda : megabench::AttentionKernel::kGeneric;
  const double forward_flops = 4.0 * seqs * kHeads * n * n * kDimHead / 2;
  const double io = 4.0 * q.numel() * q.element_size();
  if (!train) {
    time_it(
        state, dev, [&] { megabench::attend(q, k, v, o); }, forward_flops, io);
    return;
  }
  // Backward: dV, dP, dQ, dK, each as large as a forward product -> 3x the forward FLOPs.
  auto grad = torch::randn_like(q);
  time_it(
      state, dev, [&] { megabench::attend(q, k, v, o).backward(grad); }, 3 * forward_flops, 2 * io,
      /*grad=*/true);
}

// Causal attention over `seqs` sequences of n positions on the CPU, fp32, forward + backward, with
// q, k, v the split heads of one (seqs, n, 3 H d) projection as in the models: "explicit" (the
// references' einsum / masked_fill / softmax / einsum, attend()'s explicit path), "flash"
// (at::scaled_dot_product_attention, LibTorch's CPU flash kernel) or "kernel" (short_attention).
void BM_ShortAttention(benchmark::State& state, const std::string& variant) {
  const int64_t seqs = state.range(0), n = state.range(1), d = kDimHead, h = kHeads;
  auto proj = torch::randn({seqs, n, 3 * h * d}).requires_grad_();
  auto grad = torch::randn({seqs, n, h * d});
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const double forward_flops = 4.0 * seqs * h * n * n * d / 2;
  time_it(
      state, Dev::kCpu,
      [&] {
        auto parts = proj.chunk(3, -1);
        std::vector<torch::Tensor> qkv;
        for (auto& t : parts) qkv.push_back(t.view({seqs, n, h, d}).transpose(1, 2));
        torch::Tensor out;
        if (variant == "kernel") {
          out = mk::short_attention(qkv[0], qkv[1], qkv[2], scale, true);
        } else if (variant == "flash") {
          out = at::scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], {}, 0.0, true, scale);
        } else {
          megabench::AttendOptions o;
          o.attention = megabench::AttentionPath::kExplicit;
          out = megabench::attend(qkv[0], qkv[1], qkv[2], o);
        }
        out.transpose(1, 2).reshape({seqs, n, h * d}).backward(grad);
      },
      4 * forward_flops, 8.0 * proj.numel() / 3 * 4, /*grad=*/true);
}

// The short-attention kernel alone (no projection, split or merge around it) on `seqs` sequences
// of n positions, 8 heads of 64, fp32, the heads strided as the models pass them: forward, or
// forward and the backward of q, k and v. The kernel's own cost, where short_attention_train above
// also times the chunk, transposes and the cat of the gradients.
void BM_ShortAttentionKernel(benchmark::State& state, bool train) {
  const int64_t seqs = state.range(0), n = state.range(1), d = kDimHead, h = kHeads;
  auto proj = torch::randn({seqs, n, 3 * h * d});
  std::vector<torch::Tensor> qkv;
  for (auto& t : proj.chunk(3, -1)) {
    qkv.push_back(t.view({seqs, n, h, d}).transpose(1, 2).detach().requires_grad_(train));
  }
  auto grad = torch::randn({seqs, h, n, d});
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const double forward_flops = 4.0 * seqs * h * n * n * d / 2;
  const double io = 4.0 * qkv[0].numel() * 4;  // q, k, v, out (forward); twice that with backward
  time_it(
      state, Dev::kCpu,
      [&] {
        auto out = mk::short_attention(qkv[0], qkv[1], qkv[2], scale, true);
        if (train) torch::autograd::grad({out}, {qkv[0], qkv[1], qkv[2]}, {grad});
      },
      train ? 4 * forward_flops : forward_flops, train ? 2 * io : io, /*grad=*/train);
}

// One decoding step's attention on the CPU (no gradients): q (1, 16, n, 64) against the first
// `keys` rows of a (1, 16, 2048, 64) KV-cache buffer (a view, as the layer cache hands them out),
// causal, in bf16 or fp32: "sdpa" (at::scaled_dot_product_attention, what attend() ran before) or
// "kernel" (attend()'s path now). bytes/s counts the keys and values read once.
void BM_DecodeAttention(benchmark::State& state, const std::string& variant, bool bf16) {
  const int64_t keys = state.range(0), n = state.range(1), h = 16, d = kDimHead;
  const auto opts = torch::TensorOptions().dtype(bf16 ? torch::kBFloat16 : torch::kFloat32);
  auto q = torch::randn({1, h, n, d}, opts);
  auto k = torch::randn({1, h, 2048, d}, opts).narrow(2, 0, keys);
  auto v = torch::randn({1, h, 2048, d}, opts).narrow(2, 0, keys);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const double flops = 4.0 * h * n * keys * d, bytes = 2.0 * h * keys * d * q.element_size();
  time_it(
      state, Dev::kCpu,
      [&] {
        if (variant == "kernel") {
          mk::decode_attention(q, k, v, scale, true);
        } else {
          at::scaled_dot_product_attention(q, k, v, {}, 0.0, n > 1, scale);
        }
      },
      flops, bytes);
}

// Feedforward (norm, dim -> 4 dim -> dim) over seq_len positions.
void BM_FeedForward(benchmark::State& state, Dev dev) {
  if (skip_without_cuda(state, dev)) return;
  const int64_t t = state.range(0), dim = state.range(1);
  auto ff = megabench::make_feedforward(megabench::FeedForwardOptions(dim));
  ff->to(options(dev).device(), options(dev).dtype().toScalarType());
  auto x = torch::randn({1, t, dim}, options(dev));
  const double flops = 2.0 * 2 * t * dim * 4 * dim;
  const double bytes = 2.0 * x.numel() * x.element_size() + 8.0 * dim * dim * x.element_size();
  time_it(
      state, dev, [&] { ff->forward(x); }, flops, bytes);
}

// Patch embedding: byte embedding (T, D_local), then patches of P bytes -> Linear(P * D_local,
// D_global).
void BM_PatchEmbed(benchmark::State& state, Dev dev) {
  if (skip_without_cuda(state, dev)) return;
  const int64_t t = state.range(0), p = state.range(1), d_local = 256, d_global = 512;
  torch::nn::Embedding emb(256, d_local);
  torch::nn::Linear proj(p * d_local, d_global);
  const auto dtype = options(dev).dtype().toScalarType();
  emb->to(options(dev).device(), dtype);
  proj->to(options(dev).device(), dtype);
  auto bytes_in = torch::randint(
      0, 256, {1, t}, torch::TensorOptions().device(options(dev).device()).dtype(torch::kLong));
  const double flops = 2.0 * (t / p) * (p * d_local) * d_global;
  const double bytes = static_cast<double>(t) * d_local * 2 * 2 + p * d_local * d_global * 2.0;
  time_it(
      state, dev,
      [&] {
        proj(emb(bytes_in).view({1, t / p, p * d_local}));
      },
      flops, bytes);
}

// Sampling one byte per row of (batch, 256) logits: LibTorch ops vs the fused kernel.
void BM_Sampling(benchmark::State& state, Dev dev, bool kernel) {
  if (skip_without_cuda(state, dev)) return;
  if (kernel && dev != Dev::kCuda) {
    state.SkipWithError("the fused sampling kernel is CUDA-only");
    return;
  }
  const int64_t batch = state.range(0);
  auto opts = options(dev).dtype(torch::kFloat32);
  auto logits = torch::randn({batch, 256}, opts);
  auto noise = torch::rand({batch, 256}, opts);
  const double flops = batch * 256.0 * 256;  // the kernel's rank comparisons; ops: topk + argmax
  const double bytes = 2.0 * logits.numel() * 4;
  if (kernel) {
    time_it(
        state, dev, [&] { mk::fused_sample(logits, 1.0, 0.9, noise); }, flops, bytes);
  } else {
    time_it(
        state, dev, [&] { mk::fused_sample_reference(logits, 1.0, 0.9, noise); }, flops, bytes);
  }
}

// RMSNorm forward and backward over (rows, dim) fp32 on the CPU: the fused kernel or the composite
// ATen expression it replaces.
void BM_RMSNorm(benchmark::State& state, bool fused) {
  const int64_t rows = state.range(0), dim = state.range(1);
  auto x = torch::randn({rows, dim}).requires_grad_();
  auto g = torch::ones({dim}).requires_grad_();
  auto dy = torch::randn({rows, dim});
  const double bytes = 5.0 * x.numel() * 4;  // x read twice, y written, dy read, dx written
  time_it(
      state, Dev::kCpu,
      [&] {
        auto y = fused ? mk::rms_norm(x, g, 1e-8) : mk::rms_norm_reference(x, g, 1e-8);
        y.backward(dy);
      },
      8.0 * x.numel(), bytes, /*grad=*/true);
}

// Mean cross-entropy forward + backward of (rows, 256) logits: LibTorch's (log_softmax + nll_loss)
// or the fused kernel. bytes: the logits read forward, read and the gradient written backward.
void BM_CrossEntropy(benchmark::State& state, bool fused) {
  const int64_t rows = state.range(0), V = 256;
  auto x = torch::randn({rows, V}).requires_grad_();
  auto t = torch::randint(0, V, {rows}, torch::kLong);
  time_it(
      state, Dev::kCpu,
      [&] {
        auto loss = fused ? mk::cross_entropy(x, t) : mk::cross_entropy_reference(x, t);
        loss.backward();
      },
      4.0 * x.numel(), 3.0 * x.numel() * 4, /*grad=*/true);
}

// The logits projection + loss, forward + backward, of `rows` (rows, dim) hidden states into 256
// classes with a bias: at::linear then the fused cross-entropy ("unfused"), or
// linear_cross_entropy ("fused"). flops: the three products; bytes: the unfused logits' passes.
void BM_LinearCrossEntropy(benchmark::State& state, bool fused) {
  const int64_t rows = state.range(0), dim = state.range(1), V = 256;
  auto h = torch::randn({rows, dim}).requires_grad_();
  auto w = (torch::randn({V, dim}) * 0.1).requires_grad_();
  auto b = torch::zeros({V}).requires_grad_();
  auto t = torch::randint(0, V, {rows}, torch::kLong);
  time_it(
      state, Dev::kCpu,
      [&] {
        auto loss = fused ? mk::linear_cross_entropy(h, w, b, t)
                          : mk::linear_cross_entropy_reference(h, w, b, t);
        loss.backward();
      },
      6.0 * rows * dim * V, 5.0 * rows * V * 4, /*grad=*/true);
}

// Embedding lookup forward + backward of 8 x 2048 byte ids into a (256, dim) table: LibTorch's
// or the kernel. bytes: the rows written forward, read backward.
void BM_Embedding(benchmark::State& state, bool fused) {
  const int64_t dim = state.range(0);
  auto w = torch::randn({256, dim}).requires_grad_();
  auto ids = torch::randint(0, 256, {8, 2048}, torch::kLong);
  auto dy = torch::randn({8, 2048, dim});
  time_it(
      state, Dev::kCpu,
      [&] {
        auto y = fused ? mk::embedding(w, ids) : mk::embedding_reference(w, ids);
        y.backward(dy);
      },
      1.0 * dy.numel(), 2.0 * dy.numel() * 4, /*grad=*/true);
}

// One decoding row through an (out, in) weight on the CPU: "mv_f32" (at::mv, fp32 weights),
// "mv_bf16" (at::mv, bf16 weights: what Linear ran before the kernel) or "kernel" (gemv_bf16).
// bytes/s counts the weights read.
void BM_Gemv(benchmark::State& state, const std::string& variant) {
  const int64_t out = state.range(0), in = state.range(1);
  const auto dtype = variant == "mv_f32" ? torch::kFloat32 : torch::kBFloat16;
  auto w = torch::randn({out, in}).to(dtype);
  auto x = torch::randn({in}).to(dtype);
  time_it(
      state, Dev::kCpu,
      [&] {
        auto y = variant == "kernel" ? mk::gemv_bf16(w, x) : at::mv(w, x);
        benchmark::DoNotOptimize(y.data_ptr());
      },
      2.0 * w.numel(), static_cast<double>(w.nbytes()));
}

// The same from main memory, as in decoding a model whose weights exceed the last-level cache:
// each iteration reads the next of enough (out, in) matrices to fill 512 MB, so no weight is in
// cache when it is read. bf16: "kernel" (gemv_bf16) and "mv_bf16" (at::mv); float32: "kernel_f32"
// (gemv_f32), "mv_f32" (at::mv: the BLAS sgemv) and "amax_f32" (at::amax over the same matrix: one
// of the calibration's read-roof readers).
void BM_GemvStream(benchmark::State& state, const std::string& variant) {
  const int64_t out = state.range(0), in = state.range(1);
  const bool f32 = variant.size() > 4 && variant.compare(variant.size() - 4, 4, "_f32") == 0;
  const auto dtype = f32 ? torch::kFloat32 : torch::kBFloat16;
  const int64_t bytes = out * in * (f32 ? 4 : 2);
  const int64_t count = std::max<int64_t>(2, (int64_t{512} << 20) / bytes);
  std::vector<torch::Tensor> ws;
  for (int64_t i = 0; i < count; ++i) ws.push_back(torch::ones({out, in}, dtype));
  auto x = torch::randn({in}).to(dtype);
  size_t next = 0;
  time_it(
      state, Dev::kCpu,
      [&] {
        const auto& w = ws[next];
        next = (next + 1) % ws.size();
        auto y = variant == "kernel"       ? mk::gemv_bf16(w, x)
                 : variant == "kernel_f32" ? mk::gemv_f32(w, x)
                 : variant == "amax_f32"   ? at::amax(w)
                                           : at::mv(w, x);
        benchmark::DoNotOptimize(y.data_ptr());
      },
      2.0 * out * in, static_cast<double>(bytes));
}

// A Linear over (B, T, in) input, forward + backward, fp32 or under bf16 autocast (fp32 weights):
// "functional" is LibTorch's torch::nn::functional::linear (matmul, then the bias in a second
// pass), "aten" is at::linear (one addmm over the folded batch), which megabench::Linear runs.
void BM_LinearTrain(benchmark::State& state, bool aten, bool bf16) {
  const int64_t rows = state.range(0), in = state.range(1), out = state.range(2);
  auto x = torch::randn({rows / 8, 8, in}).requires_grad_();
  auto w = (torch::randn({out, in}) / std::sqrt(static_cast<double>(in))).requires_grad_();
  auto b = torch::zeros({out}).requires_grad_();
  auto dy = torch::randn({rows / 8, 8, out});
  time_it(
      state, Dev::kCpu,
      [&] {
        megabench::AutocastGuard autocast(torch::kCPU, bf16 ? torch::kBFloat16 : torch::kFloat32);
        auto y = aten ? at::linear(x, w, b) : torch::nn::functional::linear(x, w, b);
        y.backward(dy.to(y.scalar_type()));
      },
      6.0 * rows * in * out, 4.0 * rows * (in + out) * (bf16 ? 2 : 4), /*grad=*/true);
}

// One decoding step's append to a windowed KV cache, (1, heads, window, 64) fp32 keys and values:
// "cat" concatenates and keeps the window's tail (what LayerCache did before: a copy of the whole
// window per step), "layer_cache" is LayerCache::append (new keys written after the kept ones,
// copied only when the buffer's end is reached). bytes/s counts the keys/values kept.
void BM_KVWindowAppend(benchmark::State& state, bool layer_cache) {
  const int64_t window = state.range(0), heads = state.range(1);
  auto step = torch::randn({1, heads, 1, 64});
  megabench::LayerCache cache;
  cache.window = window;
  torch::Tensor k, v;
  for (int64_t t = 0; t < window; ++t) {
    if (layer_cache) cache.append(step, step);
  }
  if (!layer_cache) k = v = torch::randn({1, heads, window, 64});
  time_it(
      state, Dev::kCpu,
      [&] {
        if (layer_cache) {
          auto kv = cache.append(step, step);
          benchmark::DoNotOptimize(kv.first.data_ptr());
          return;
        }
        auto k_all = torch::cat({k, step}, 2), v_all = torch::cat({v, step}, 2);
        k = k_all.narrow(2, 1, window);
        v = v_all.narrow(2, 1, window);
        benchmark::DoNotOptimize(k_all.data_ptr());
      },
      0.0, 2.0 * heads * window * 64 * 4);
}

int register_all() {
  auto reg = [](const std::string& name, auto fn) {
    return benchmark::RegisterBenchmark(name.c_str(), fn)
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  };
  for (Dev dev : {Dev::kCpu, Dev::kCuda}) {
    const std::string d = dev == Dev::kCuda ? "cuda" : "cpu";
    reg("global_attention/sdpa/" + d, [dev](benchmark::State& s) { BM_GlobalAttention(s, dev); })
        ->ArgNames({"seq_len", "patch"})
        ->Args({1024, 8})
        ->Args({8192, 8})
        ->Args({65536, 16});
    for (bool kernel : {false, true}) {
      // MEGABYTE's local shapes: P = 4..16 (the kernel's target range), and 32.
      reg(std::string("local_attention/") + (kernel ? "kernel/" : "sdpa/") + d,
          [dev, kernel](benchmark::State& s) {
            BM_LocalAttention(s, dev, kernel, /*train=*/false);
          })
          ->ArgNames({"seq_len", "patch"})
          ->Args({1024, 8})
          ->Args({65536, 4})
          ->Args({65536, 8})
          ->Args({65536, 16})
          ->Args({8192, 32});
      reg(std::string("local_attention_train/") + (kernel ? "kernel/" : "sdpa/") + d,
          [dev, kernel](benchmark::State& s) { BM_LocalAttention(s, dev, kernel, /*train=*/true); })
          ->ArgNames({"seq_len", "patch"})
          ->Args({65536, 4})
          ->Args({65536, 8})
          ->Args({65536, 16});
      reg(std::string("sampling/") + (kernel ? "fused/" : "ops/") + d,
          [dev, kernel](benchmark::State& s) { BM_Sampling(s, dev, kernel); })
          ->ArgNames({"batch"})
          ->Arg(1)
          ->Arg(64)
          ->Arg(1024);
    }
    reg("feedforward/" + d, [dev](benchmark::State& s) { BM_FeedForward(s, dev); })
        ->ArgNames({"seq_len", "dim"})
        ->Args({1024, 512})
        ->Args({8192, 512});
    reg("patch_embed/" + d, [dev](benchmark::State& s) { BM_PatchEmbed(s, dev); })
        ->ArgNames({"seq_len", "patch"})
        ->Args({8192, 8})
        ->Args({65536, 16});
  }
  for (bool fused : {false, true}) {
    reg(std::string("rms_norm_train/") + (fused ? "fused" : "ops"),
        [fused](benchmark::State& s) { BM_RMSNorm(s, fused); })
        ->ArgNames({"rows", "dim"})
        ->Args({2048, 1024})
        ->Args({2048, 512});
  }
  for (const bool fused : {false, true}) {
    reg(std::string("embedding_train/") + (fused ? "fused" : "aten"),
        [fused](benchmark::State& s) { BM_Embedding(s, fused); })
        ->ArgNames({"dim"})
        ->Args({32})
        ->Args({256});
  }
  for (const bool fused : {false, true}) {
    // A small MEGABYTE's local model (8 x 2048 bytes with the start positions, x 9/8), and a
    // Transformer's 2048 bytes at width 512.
    reg(std::string("linear_cross_entropy_train/") + (fused ? "fused" : "unfused"),
        [fused](benchmark::State& s) { BM_LinearCrossEntropy(s, fused); })
        ->ArgNames({"rows", "dim"})
        ->Args({18432, 32})
        ->Args({16384, 128})
        ->Args({16384, 512})
        ->Args({2048, 512});
  }
  for (const bool fused : {false, true}) {
    // A small MEGABYTE's 8 x 2048 bytes with the start positions (x 9/8), and 2048 bytes.
    reg(std::string("cross_entropy_train/") + (fused ? "fused" : "aten"),
        [fused](benchmark::State& s) { BM_CrossEntropy(s, fused); })
        ->ArgNames({"rows"})
        ->Args({18432})
        ->Args({2048});
  }
  for (const bool bf16 : {false, true}) {
    for (const bool aten : {false, true}) {
      reg(std::string("linear_train/") + (aten ? "aten/" : "functional/") +
              (bf16 ? "bf16" : "fp32"),
          [aten, bf16](benchmark::State& s) { BM_LinearTrain(s, aten, bf16); })
          ->ArgNames({"rows", "in", "out"})
          ->Args({2048, 1024, 4096})
          ->Args({16384, 64, 256})
          ->Args({16384, 32, 128});
    }
  }
  for (const bool train : {false, true}) {
    // Cache-resident (16 sequences) and a 3-stage MEGABYTE's finest stage (512 patches of 4 + 1).
    reg(std::string("short_attention_kernel/") + (train ? "train" : "forward"),
        [train](benchmark::State& s) { BM_ShortAttentionKernel(s, train); })
        ->ArgNames({"seqs", "n"})
        ->Args({16, 5})
        ->Args({512, 5})
        ->Args({64, 9});
  }
  for (const std::string variant : {"explicit", "flash", "kernel"}) {
    // MEGABYTE's local stages (P + 1 = 5, 9, 17), a 3-stage model's middle and global ones, and
    // the kernel's limit.
    reg("short_attention_train/" + variant,
        [variant](benchmark::State& s) { BM_ShortAttention(s, variant); })
        ->ArgNames({"seqs", "n"})
        ->Args({1024, 5})
        ->Args({512, 9})
        ->Args({256, 17})
        ->Args({64, 33})
        ->Args({16, 65});
  }
  for (const bool bf16 : {false, true}) {
    for (const std::string variant : {"sdpa", "kernel"}) {
      // A byte Transformer's decoding step over 256 and 2048 cached positions; a patch's 8
      // queries at once.
      reg("decode_attention/" + variant + (bf16 ? "/bf16" : "/fp32"),
          [variant, bf16](benchmark::State& s) { BM_DecodeAttention(s, variant, bf16); })
          ->ArgNames({"keys", "n"})
          ->Args({256, 1})
          ->Args({2048, 1})
          ->Args({2048, 2})
          ->Args({2048, 4})
          ->Args({2048, 8});
    }
  }
  for (const bool layer_cache : {false, true}) {
    reg(std::string("kv_window_append/") + (layer_cache ? "layer_cache" : "cat"),
        [layer_cache](benchmark::State& s) { BM_KVWindowAppend(s, layer_cache); })
        ->ArgNames({"window", "heads"})
        ->Args({1024, 16})
        ->Args({512, 8});
  }
  for (const std::string variant : {"mv_f32", "mv_bf16", "kernel"}) {
    reg("gemv/" + variant, [variant](benchmark::State& s) { BM_Gemv(s, variant); })
        ->ArgNames({"out", "in"})
        ->Args({4096, 1024})
        ->Args({8192, 2048})
        ->Args({1024, 4096});
  }
  for (const std::string variant : {"mv_bf16", "kernel", "amax_f32", "mv_f32", "kernel_f32"}) {
    reg("gemv_stream/" + variant, [variant](benchmark::State& s) { BM_GemvStream(s, variant); })
        ->ArgNames({"out", "in"})
        ->Args({4096, 1024})
        ->Args({1024, 1024})
        ->Args({1024, 4096});
  }
  return 0;
}

const int kRegistered = register_all();

}  // namespace

BENCHMARK_MAIN();
