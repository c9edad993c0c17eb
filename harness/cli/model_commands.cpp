// `megabench logits` and `megabench generate`: run a checkpoint (safetensors, reference names,
// {"model", "config"} in the header metadata) on bytes.
#include "harness/cli/model_commands.h"

#include <CLI/CLI.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "harness/api/format.h"
#include "harness/api/registry.h"
#include "harness/io/checkpoint.h"
#include "harness/io/safetensors.h"

namespace megabench {

LoadedModel load_checkpoint_model(const std::string& path) {
  auto file = safetensors::load(path);
  auto meta = [&](const char* key) {
    auto it = file.metadata.find(key);
    if (it == file.metadata.end()) {
      throw std::runtime_error(path + ": header metadata has no \"" + key +
                               "\" entry (expected {\"model\": NAME, \"config\": JSON})");
    }
    return it->second;
  };
  LoadedModel out;
  out.name = meta("model");
  json config;
  try {
    config = json::parse(meta("config"));
  } catch (const json::exception& e) {
    throw std::runtime_error(path + ": metadata \"config\" is not valid JSON: " + e.what());
  }
  const auto& spec = Registry::instance().get(out.name);
  // The config may use the references' keyword names (max_seq_len, flash_attn, ...).
  out.config = spec.resolve(upgrade_model_config(out.name, config));
  out.model = spec.build(*spec.parse(out.config));
  // Anything in the file decides the dtype: a float64 checkpoint gives a float64 model.
  for (const auto& [name, t] : file.tensors) {
    if (t.is_floating_point()) {
      out.model->module().to(t.scalar_type());
      break;
    }
  }
  checkpoint::load_into(out.model->module(), file, /*strict=*/true);
  out.model->module().eval();
  return out;
}

static std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

static torch::Tensor bytes_tensor(const std::string& s) {
  auto t = torch::empty({1, static_cast<int64_t>(s.size())}, torch::kLong);
  auto a = t.accessor<int64_t, 2>();
  for (size_t i = 0; i < s.size(); ++i) a[0][i] = static_cast<unsigned char>(s[i]);
  return t;
}

namespace {

// megabench logits
void add_logits_command(CLI::App& app) {
  auto* lg = app.add_subcommand("logits", "Write the logits of a checkpoint for a byte file");
  auto logits_args = std::make_shared<std::tuple<std::string, std::string, std::string, bool>>();
  lg->add_option("--checkpoint", std::get<0>(*logits_args), "model checkpoint (.safetensors)")
      ->required();
  lg->add_option("--input", std::get<1>(*logits_args), "file of bytes to score")->required();
  lg->add_option("--out", std::get<2>(*logits_args),
                 "output .safetensors with \"logits\" (1, L, V)")
      ->required();
  lg->add_flag("--json", std::get<3>(*logits_args), "print a JSON summary");
  lg->callback([logits_args] {
    {
      auto& [ckpt, input, out, as_json] = *logits_args;
      auto m = load_checkpoint_model(ckpt);
      auto bytes = read_file(input);
      if (bytes.empty()) throw std::invalid_argument("--input: '" + input + "' is empty");
      torch::NoGradGuard ng;
      auto x = bytes_tensor(bytes);
      auto logits = m.model->logits(x).contiguous();
      // The last row predicts the byte after the input: with one row, no byte is scored (a
      // Perceiver AR input of prefix_len + 1 bytes), and bpb is null.
      const bool scored = logits.size(1) >= 2;
      const json bpb =
          scored ? json(m.model->byte_nll(x).mean().item<double>() / std::log(2.0)) : json(nullptr);
      safetensors::save(out, {{"logits", logits.cpu()}, {"input", x}},
                        {{"model", m.name}, {"config", m.config.dump()}});
      if (as_json) {
        std::cout << json{{"out", out},
                          {"bytes", bytes.size()},
                          {"shape", logits.sizes().vec()},
                          {"bpb", bpb}}
                         .dump()
                  << "\n";
      } else {
        std::cout << "wrote " << out << ": logits " << logits.sizes() << ", " << bytes.size()
                  << " bytes"
                  << (scored ? " at " + format_value(bpb) + " bits per byte"
                             : " (no byte scored: the one logits row predicts the byte after the "
                               "input)")
                  << "\n";
      }
    }
  });
}

struct GenArgs {
  std::string ckpt, prime, prime_file;
  int64_t n = 256, seed = 0;
  double temperature = 1.0, filter_thres = 0.9;
  bool no_cache = false, as_json = false;
};

void print_generated(const GenArgs& ga, const std::string& text, double s) {
  const double rate = static_cast<double>(ga.n) / s;
  if (ga.as_json) {
    std::vector<int> ids(text.begin(), text.end());
    for (auto& v : ids) v &= 0xff;
    std::cout << json{{"bytes", ids},
                      {"text", text},
                      {"generate_bytes_per_s", rate},
                      {"seconds", s},
                      {"cached", !ga.no_cache}}
                     .dump(-1, ' ', false, json::error_handler_t::replace)
              << "\n";
    return;
  }
  std::cout.write(text.data(), static_cast<std::streamsize>(text.size()));
  std::cout << "\n";
  std::cerr << "generated " << ga.n << " bytes in " << s << " s: " << rate << " bytes/s"
            << (ga.no_cache ? " (no cache)" : " (cached)") << "\n";
}

void run_generate(const GenArgs& ga) {
  auto m = load_checkpoint_model(ga.ckpt);
  std::string prime = ga.prime_file.empty() ? ga.prime : read_file(ga.prime_file);
  torch::manual_seed(static_cast<uint64_t>(ga.seed));
  auto x = prime.empty() ? torch::empty({1, 0}, torch::kLong) : bytes_tensor(prime);
  SamplingOptions so;
  so.temperature = ga.temperature;
  so.filter_thres = ga.filter_thres;
  so.use_cache = !ga.no_cache;
  const auto t0 = std::chrono::steady_clock::now();
  auto out = m.model->generate(x, ga.n, so).narrow(1, x.size(1), ga.n);  // the new bytes
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string text(static_cast<size_t>(out.size(1)), '\0');
  auto a = out.accessor<int64_t, 2>();
  for (int64_t i = 0; i < out.size(1); ++i) text[i] = static_cast<char>(a[0][i]);
  print_generated(ga, text, s);
}

// megabench generate
void add_generate_command(CLI::App& app) {
  auto ga = std::make_shared<GenArgs>();
  auto* gen = app.add_subcommand("generate", "Sample bytes from a checkpoint");
  gen->add_option("--checkpoint", ga->ckpt, "model checkpoint (.safetensors)")->required();
  auto* p1 = gen->add_option("--prime", ga->prime, "prime text");
  auto* p2 = gen->add_option("--prime-file", ga->prime_file, "file whose bytes prime the model");
  p1->excludes(p2);
  gen->add_option("--bytes", ga->n, "bytes to generate")->check(CLI::PositiveNumber);
  gen->add_option("--temperature", ga->temperature, "sampling temperature; 0 = greedy")
      ->check(CLI::NonNegativeNumber);
  gen->add_option("--filter-thres", ga->filter_thres,
                  "top-k keeps max(int((1 - thres) * V), 1) logits")
      ->check(CLI::Range(0.0, 1.0));
  gen->add_option("--seed", ga->seed, "random seed");
  gen->add_flag("--no-cache", ga->no_cache,
                "rerun the whole sequence for every byte, as the reference");
  gen->add_flag("--json", ga->as_json, "print JSON instead of raw bytes");
  gen->callback([ga] { run_generate(*ga); });
}

}  // namespace

void add_model_commands(CLI::App& app) {
  add_logits_command(app);
  add_generate_command(app);
}

}  // namespace megabench
