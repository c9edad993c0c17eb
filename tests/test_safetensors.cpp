// safetensors reading/writing and checkpoint loading. Corrupt files are built byte by byte here, so
// each check hits exactly one validation; the interop test reads a file written by the reference
// Python package (tests/fixtures/gen_safetensors_sample.py).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "harness/io/checkpoint.h"
#include "harness/io/safetensors.h"
#include "tests/support.h"

namespace st = megabench::safetensors;
namespace ckpt = megabench::checkpoint;
using Catch::Contains;

namespace {

/// The 8-byte little-endian length prefix.
std::string length_prefix(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}

/// A file from a header (JSON text) and a data buffer, the header length taken from the text.
std::string make_file(const std::string& header, const std::string& data = "") {
  return length_prefix(header.size()) + header + data;
}

/// `n` zero bytes of data.
std::string zeros(size_t n) {
  return std::string(n, '\0');
}

/// A temporary path removed when the object goes away.
struct TempPath {
  std::filesystem::path path;
  explicit TempPath(const std::string& stem) {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("megabench_" + stem + "_" + std::to_string(::getpid()) + "_" +
            std::to_string(counter++) + ".safetensors");
  }
  ~TempPath() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  std::string str() const { return path.string(); }
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// Sequential(Linear(3, 4), BatchNorm1d(4), Linear(4, 2)): parameters plus float and int64 buffers.
torch::nn::Sequential small_model() {
  return torch::nn::Sequential(torch::nn::Linear(3, 4), torch::nn::BatchNorm1d(4),
                               torch::nn::Linear(4, 2));
}

/// The model's state as a File, as the loader would return it (values cloned).
st::File file_of(const torch::nn::Module& module) {
  st::File file;
  for (const auto& item : module.named_parameters()) {
    file.names.push_back(item.key());
    file.tensors[item.key()] = item.value().detach().clone();
  }
  for (const auto& item : module.named_buffers()) {
    file.names.push_back(item.key());
    file.tensors[item.key()] = item.value().detach().clone();
  }
  return file;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Round trips

TEST_CASE("safetensors round-trips every dtype", "[safetensors]") {
  const std::vector<torch::ScalarType> dtypes = {
      torch::kFloat32, torch::kFloat64, torch::kFloat16, torch::kBFloat16, torch::kInt64,
      torch::kInt32,   torch::kInt16,   torch::kInt8,    torch::kUInt8,    torch::kBool};
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto dtype : dtypes) {
    // Values exact in every dtype; a distinct shape per tensor catches mixed-up offsets.
    torch::Tensor t = torch::arange(0, 12, torch::kFloat64).reshape({3, 4}).sub(4.0);
    if (dtype == torch::kUInt8) t = t.add(4.0);
    if (dtype == torch::kBool) t = t.remainder(3).eq(0);
    tensors.emplace_back(std::string("t_") + c10::toString(dtype), t.to(dtype));
  }
  // A non-contiguous view is stored as its logical (contiguous) values.
  tensors.emplace_back("transposed", torch::arange(6, torch::kFloat32).reshape({2, 3}).t());

  const auto check = [&](const st::File& file) {
    std::vector<std::string> expected_names;
    for (const auto& [name, _] : tensors) expected_names.push_back(name);
    REQUIRE(file.names == expected_names);
    for (const auto& [name, t] : tensors) {
      INFO(name);
      const torch::Tensor& got = file.tensors.at(name);
      REQUIRE(got.scalar_type() == t.scalar_type());
      REQUIRE(got.sizes() == t.sizes());
      REQUIRE(got.device().is_cpu());
      REQUIRE(torch::equal(got, t));
    }
  };
  check(st::parse(st::serialize(tensors)));

  TempPath tmp("roundtrip");
  st::save(tmp.str(), tensors);
  check(st::load(tmp.str()));
}

TEST_CASE("safetensors round-trips a 0-d and an empty tensor", "[safetensors]") {
  const torch::Tensor scalar = torch::tensor(3.5, torch::kFloat64);
  const torch::Tensor empty = torch::zeros({0, 5}, torch::kFloat32);
  const torch::Tensor after = torch::tensor({7, 8}, torch::kInt32);  // data after the empty one
  const st::File file =
      st::parse(st::serialize({{"scalar", scalar}, {"empty", empty}, {"after", after}}));
  REQUIRE(file.tensors.at("scalar").dim() == 0);
  REQUIRE(file.tensors.at("scalar").item<double>() == 3.5);
  REQUIRE(file.tensors.at("empty").sizes() == torch::IntArrayRef({0, 5}));
  REQUIRE(torch::equal(file.tensors.at("after"), after));
}

TEST_CASE("safetensors round-trips metadata and lays out bytes as the format says",
          "[safetensors]") {
  const std::map<std::string, std::string> metadata = {
      {"model", "megabyte"}, {"config", R"({"dim": 64, "name": "x\"y"})"}, {"empty", ""}};
  const torch::Tensor t = torch::tensor({1.0f, -2.0f, 0.5f});
  const std::string bytes = st::serialize({{"w", t}}, metadata);
  REQUIRE(st::parse(bytes).metadata == metadata);

  // Read the layout back independently of the parser.
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  REQUIRE(header_len % 8 == 0);  // padded so the data buffer is 8-byte aligned
  const auto header = nlohmann::json::parse(bytes.substr(8, header_len));
  REQUIRE(header["w"]["dtype"] == "F32");
  REQUIRE(header["w"]["shape"] == nlohmann::json::array({3}));
  REQUIRE(header["w"]["data_offsets"] == nlohmann::json::array({0, 12}));
  REQUIRE(header["__metadata__"]["model"] == "megabyte");
  REQUIRE(bytes.size() == 8 + header_len + 12);
  float values[3];
  std::memcpy(values, bytes.data() + 8 + header_len, sizeof(values));
  REQUIRE(values[0] == 1.0f);
  REQUIRE(values[1] == -2.0f);
  REQUIRE(values[2] == 0.5f);

  // Without metadata there is no "__metadata__" entry.
  const std::string plain = st::serialize({{"w", t}});
  REQUIRE(plain.find("__metadata__") == std::string::npos);
  REQUIRE(st::parse(plain).metadata.empty());
}

TEST_CASE("safetensors save rejects bad names and dtypes", "[safetensors]") {
  const torch::Tensor t = torch::ones({2});
  REQUIRE_THROWS_WITH(st::serialize({{"a", t}, {"a", t}}), Contains("'a'") && Contains("twice"));
  REQUIRE_THROWS_WITH(st::serialize({{"__metadata__", t}}), Contains("reserved"));
  REQUIRE_THROWS_WITH(st::serialize({{"", t}}), Contains("empty name"));
  REQUIRE_THROWS_WITH(st::serialize({{"c", torch::ones({2}, torch::kComplexFloat)}}),
                      Contains("'c'") && Contains("cannot be stored"));
}

TEST_CASE("safetensors save replaces the file atomically and leaves no temporary",
          "[safetensors]") {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("megabench_atomic_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "model.safetensors").string();
  st::save(path, {{"a", torch::ones({4})}});
  st::save(path, {{"b", torch::zeros({2})}});
  REQUIRE(st::load(path).names == std::vector<std::string>{"b"});
  // A failed save (unstorable dtype) leaves the previous file intact.
  REQUIRE_THROWS(st::save(path, {{"c", torch::ones({2}, torch::kComplexFloat)}}));
  REQUIRE(st::load(path).names == std::vector<std::string>{"b"});
  // Only the final file remains: no temporary from either the good or the failed save.
  // (fs::remove_all is avoided: libtorch.so exports a copy of it that crashes when bound here.)
  const auto entries = std::distance(fs::directory_iterator(dir), fs::directory_iterator());
  fs::remove(path);
  fs::remove(dir);
  REQUIRE(entries == 1);
}

TEST_CASE("safetensors reads a file written by the Python safetensors package", "[safetensors]") {
  const st::File file =
      st::load(megabench::test::source_path("tests/fixtures/safetensors_sample.safetensors"));
  REQUIRE(file.metadata ==
          std::map<std::string, std::string>{{"model", "sample"}, {"config", R"({"dim": 3})"}});
  REQUIRE(file.names.size() == 13);
  REQUIRE(file.tensors.size() == 13);

  // The same values as the generator script, computed here.
  const torch::Tensor ramp = torch::arange(6, torch::kFloat64).reshape({2, 3}).mul(0.25).sub(0.5);
  const std::vector<std::pair<std::string, torch::Tensor>> expected = {
      {"f32", ramp.to(torch::kFloat32)},
      {"f64", ramp.mul(3.0)},
      {"f16", ramp.to(torch::kFloat16).reshape({3, 2})},
      {"bf16", ramp.mul(2.0).to(torch::kBFloat16).reshape({6})},
      {"i64",
       torch::tensor({-(int64_t{1} << 40), int64_t{-1}, int64_t{0}, int64_t{1}, int64_t{1} << 40})},
      {"i32", torch::tensor({-(1 << 30), 7, 0, 1 << 30}, torch::kInt32).reshape({2, 2})},
      {"i16", torch::tensor({-32768, 0, 32767}, torch::kInt16)},
      {"i8", torch::tensor({-128, -1, 0, 127}, torch::kInt8)},
      {"u8", torch::tensor({0, 1, 128, 255}, torch::kUInt8)},
      {"bool", torch::tensor({true, false, false, true, true})},
      {"scalar", torch::tensor(2.5f)},
      {"empty", torch::zeros({0, 4})},
      {"layers.0.weight", torch::linspace(-1.0, 1.0, 9, torch::kFloat32).reshape({3, 3})},
  };
  for (const auto& [name, want] : expected) {
    INFO(name);
    REQUIRE(file.tensors.count(name) == 1);
    const torch::Tensor& got = file.tensors.at(name);
    REQUIRE(got.scalar_type() == want.scalar_type());
    REQUIRE(got.sizes() == want.sizes());
    REQUIRE(torch::equal(got, want));
  }
}

// ---------------------------------------------------------------------------------------------
// Corrupt files: each is built by hand and hits one check.

TEST_CASE("safetensors rejects a bad header length", "[safetensors]") {
  REQUIRE_THROWS_WITH(st::parse("abc", "tiny"), Contains("tiny") && Contains("too short"));
  REQUIRE_THROWS_WITH(st::parse(length_prefix(1) + "{}"), Contains("header length 1 is too small"));
  REQUIRE_THROWS_WITH(st::parse(length_prefix(0)), Contains("too small"));
  REQUIRE_THROWS_WITH(st::parse(length_prefix(uint64_t{1} << 40) + "{}"), Contains("exceeds"));
  REQUIRE_THROWS_WITH(st::parse(length_prefix(~uint64_t{0}) + "{}"), Contains("exceeds"));
}

TEST_CASE("safetensors rejects a header longer than the file", "[safetensors]") {
  const std::string header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  const std::string bytes = length_prefix(header.size() + 10) + header;
  REQUIRE_THROWS_WITH(st::parse(bytes, "short.safetensors"),
                      Contains("short.safetensors") && Contains("larger than the"));
}

TEST_CASE("safetensors rejects a header that is not a JSON object", "[safetensors]") {
  REQUIRE_THROWS_WITH(st::parse(make_file(R"({"w":{"dtype":"F32",)")), Contains("not valid JSON"));
  REQUIRE_THROWS_WITH(st::parse(make_file("{\"w\xff\":1}")), Contains("not valid JSON"));
  REQUIRE_THROWS_WITH(st::parse(make_file("[1, 2]")), Contains("must be a JSON object"));
  REQUIRE_THROWS_WITH(st::parse(make_file(R"({"w": 5})")),
                      Contains("'w'") && Contains("must be an object"));
}

TEST_CASE("safetensors rejects an unknown dtype", "[safetensors]") {
  REQUIRE_THROWS_WITH(
      st::parse(
          make_file(R"({"w8":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", zeros(2))),
      Contains("'w8'") && Contains("unknown dtype 'F8_E4M3'"));
  REQUIRE_THROWS_WITH(
      st::parse(make_file(R"({"w":{"dtype":3,"shape":[2],"data_offsets":[0,2]}})", zeros(2))),
      Contains("'w'") && Contains("\"dtype\""));
}

TEST_CASE("safetensors rejects a bad shape", "[safetensors]") {
  const auto file_with_shape = [](const std::string& shape) {
    return make_file(R"({"bad":{"dtype":"U8","shape":)" + shape + R"(,"data_offsets":[0,4]}})",
                     zeros(4));
  };
  REQUIRE_THROWS_WITH(st::parse(file_with_shape("4")), Contains("'bad'") && Contains("\"shape\""));
  REQUIRE_THROWS_WITH(st::parse(file_with_shape("[-4]")),
                      Contains("'bad'") && Contains("negative"));
  REQUIRE_THROWS_WITH(st::parse(file_with_shape("[2.0, 2]")),
                      Contains("'bad'") && Contains("shape[0]"));
  REQUIRE_THROWS_WITH(st::parse(file_with_shape("[\"4\"]")),
                      Contains("'bad'") && Contains("shape[0]"));
  REQUIRE_THROWS_WITH(st::parse(file_with_shape("[4294967296, 4294967296]")),
                      Contains("'bad'") && Contains("overflow"));
  REQUIRE_THROWS_WITH(st::parse(file_with_shape("[99999999999999999999]")), Contains("'bad'"));
  // The byte count overflows even when the element count fits.
  REQUIRE_THROWS_WITH(
      st::parse(
          make_file(R"({"big":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,4]}})",
                    zeros(4))),
      Contains("'big'") && Contains("overflow"));
}

TEST_CASE("safetensors rejects malformed data_offsets", "[safetensors]") {
  const auto file_with_offsets = [](const std::string& offsets) {
    return make_file(R"({"w":{"dtype":"U8","shape":[4],"data_offsets":)" + offsets + "}}",
                     zeros(8));
  };
  REQUIRE_THROWS_WITH(st::parse(file_with_offsets("[0]")),
                      Contains("'w'") && Contains("two integers"));
  REQUIRE_THROWS_WITH(st::parse(file_with_offsets("[0, 4, 8]")),
                      Contains("'w'") && Contains("two integers"));
  REQUIRE_THROWS_WITH(st::parse(file_with_offsets("[-4, 0]")),
                      Contains("'w'") && Contains("begin"));
  REQUIRE_THROWS_WITH(st::parse(file_with_offsets("[4, 0]")),
                      Contains("'w'") && Contains("is after end"));
  REQUIRE_THROWS_WITH(st::parse(make_file(R"({"w":{"dtype":"U8","shape":[4]}})", zeros(4))),
                      Contains("'w'") && Contains("\"data_offsets\" is missing"));
}

TEST_CASE("safetensors rejects offsets beyond the data buffer", "[safetensors]") {
  REQUIRE_THROWS_WITH(
      st::parse(
          make_file(R"({"far":{"dtype":"F32","shape":[2],"data_offsets":[100,108]}})", zeros(16))),
      Contains("'far'") && Contains("beyond the 16-byte data buffer"));
}

TEST_CASE("safetensors rejects overlapping tensors", "[safetensors]") {
  const std::string header = R"({"first":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("second":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  REQUIRE_THROWS_WITH(st::parse(make_file(header, zeros(12))),
                      Contains("'second'") && Contains("overlap") && Contains("'first'"));
  // One range inside another, listed in the other order.
  const std::string nested = R"({"inner":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},)"
                             R"("outer":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})";
  REQUIRE_THROWS_WITH(st::parse(make_file(nested, zeros(8))),
                      Contains("'inner'") && Contains("overlap") && Contains("'outer'"));
}

TEST_CASE("safetensors rejects a byte length that does not match dtype and shape",
          "[safetensors]") {
  REQUIRE_THROWS_WITH(
      st::parse(
          make_file(R"({"mismatch":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", zeros(8))),
      Contains("'mismatch'") && Contains("cover 8 bytes") && Contains("needs 12 bytes"));
  // The right byte count for the shape under a different dtype.
  REQUIRE_THROWS_WITH(
      st::parse(
          make_file(R"({"asf64":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", zeros(8))),
      Contains("'asf64'") && Contains("needs 16 bytes"));
}

TEST_CASE("safetensors rejects a truncated file", "[safetensors]") {
  const std::string good = st::serialize({{"a", torch::ones({4})}, {"last", torch::ones({8})}});
  const std::string cut = good.substr(0, good.size() - 5);
  REQUIRE_THROWS_WITH(st::parse(cut), Contains("'last'") && Contains("truncated"));
  TempPath tmp("truncated");
  write_bytes(tmp.str(), cut);
  REQUIRE_THROWS_WITH(st::load(tmp.str()),
                      Contains(tmp.str()) && Contains("'last'") && Contains("truncated"));
}

TEST_CASE("safetensors rejects bad metadata and bool bytes", "[safetensors]") {
  REQUIRE_THROWS_WITH(st::parse(make_file(R"({"__metadata__":{"epoch":3}})")),
                      Contains("'epoch'") && Contains("must be a string"));
  REQUIRE_THROWS_WITH(st::parse(make_file(R"({"__metadata__":["x"]})")), Contains("__metadata__"));
  REQUIRE_THROWS_WITH(
      st::parse(make_file(R"({"mask":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})",
                          std::string("\1\0\2", 3))),
      Contains("'mask'") && Contains("byte value 2"));
}

TEST_CASE("safetensors load names a missing file or a directory", "[safetensors]") {
  REQUIRE_THROWS_WITH(st::load("/nonexistent/dir/model.safetensors"),
                      Contains("/nonexistent/dir/model.safetensors") && Contains("cannot open"));
  const std::string dir = std::filesystem::temp_directory_path().string();
  REQUIRE_THROWS_WITH(st::load(dir), Contains(dir) && Contains("directory"));
}

TEST_CASE("safetensors survives random corruption", "[safetensors]") {
  const std::string good = st::serialize({{"w", torch::randn({3, 4})},
                                          {"b", torch::arange(5)},
                                          {"m", torch::ones({2}, torch::kBool)},
                                          {"s", torch::tensor(1.0, torch::kFloat64)}},
                                         {{"model", "megabyte"}});
  std::mt19937 rng(1234);
  const char json_chars[] = "0123456789-[]{},\":.eE ";  // changes numbers, lengths and structure
  int accepted = 0;
  int rejected = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    std::string bytes = good;
    const int mutations = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < mutations && bytes.size() > 9; ++k) {
      const char c = json_chars[rng() % (sizeof(json_chars) - 1)];
      switch (rng() % 4) {
        case 0:
          bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
          break;
        case 1:
          bytes[8 + rng() % (bytes.size() - 8)] = c;
          break;
        case 2:
          bytes.resize(1 + rng() % bytes.size());
          break;
        default:
          bytes.insert(8 + rng() % (bytes.size() - 8), 1, c);
          break;
      }
    }
    // Anything but success or std::runtime_error (another exception type, a crash) fails the test.
    try {
      st::parse(bytes, "fuzzed");
      ++accepted;
    } catch (const std::runtime_error&) {
      ++rejected;
    }
  }
  REQUIRE(accepted > 0);  // e.g. a flipped data byte is still a valid file
  REQUIRE(rejected > 0);
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

TEST_CASE("checkpoint save and load_into restore every parameter and buffer", "[safetensors]") {
  torch::manual_seed(0);
  auto source = small_model();
  source->train();
  source->forward(torch::randn({5, 3}));  // moves BatchNorm's running stats and batch counter
  TempPath tmp("ckpt");
  ckpt::save(tmp.str(), *source, {{"model", "small"}, {"config", "{}"}});

  auto target = small_model();  // a different random init
  REQUIRE_FALSE(torch::equal(target[0]->named_parameters()["weight"],
                             source[0]->named_parameters()["weight"]));
  const st::File file = st::load(tmp.str());
  REQUIRE(file.metadata.at("model") == "small");
  ckpt::load_into(*target, file);

  const auto want = file_of(*source);
  const auto got = file_of(*target);
  REQUIRE(got.names == want.names);
  REQUIRE(std::count(want.names.begin(), want.names.end(), "1.num_batches_tracked") == 1);
  for (const auto& name : want.names) {
    INFO(name);
    REQUIRE(torch::equal(got.tensors.at(name), want.tensors.at(name)));
  }
  // Parameters keep requiring grad after the copy.
  REQUIRE(target[0]->named_parameters()["weight"].requires_grad());
}

TEST_CASE("checkpoint load_into converts floating dtypes", "[safetensors]") {
  torch::nn::Linear source(3, 2);
  torch::nn::Linear target(3, 2);
  target->to(torch::kFloat64);
  ckpt::load_into(*target, file_of(*source));
  REQUIRE(target->weight.scalar_type() == torch::kFloat64);
  REQUIRE(torch::equal(target->weight, source->weight.to(torch::kFloat64)));
  REQUIRE(torch::equal(target->bias, source->bias.to(torch::kFloat64)));
}

TEST_CASE("checkpoint load_into names each mismatch and changes nothing on failure",
          "[safetensors]") {
  auto model = small_model();
  const torch::Tensor before = model[0]->named_parameters()["weight"].detach().clone();
  auto good = file_of(*small_model());

  SECTION("missing tensor") {
    good.tensors.erase("0.bias");
    REQUIRE_THROWS_WITH(ckpt::load_into(*model, good), Contains("'0.bias'") && Contains("missing"));
  }
  SECTION("unexpected tensor, only when strict") {
    good.names.push_back("extra.weight");
    good.tensors["extra.weight"] = torch::ones({1});
    REQUIRE_THROWS_WITH(ckpt::load_into(*model, good),
                        Contains("'extra.weight'") && Contains("unexpected"));
    ckpt::load_into(*model, good, /*strict=*/false);
    REQUIRE(torch::equal(model[0]->named_parameters()["weight"], good.tensors.at("0.weight")));
    return;
  }
  SECTION("wrong shape") {
    good.tensors["2.weight"] = good.tensors["2.weight"].t();
    REQUIRE_THROWS_WITH(ckpt::load_into(*model, good),
                        Contains("'2.weight'") && Contains("[4, 2]") && Contains("expects [2, 4]"));
  }
  SECTION("integer tensor for a floating parameter") {
    good.tensors["0.weight"] = torch::ones({4, 3}, torch::kInt64);
    REQUIRE_THROWS_WITH(ckpt::load_into(*model, good),
                        Contains("'0.weight'") && Contains("floating"));
  }
  SECTION("floating tensor for an integer buffer") {
    good.tensors["1.num_batches_tracked"] = torch::tensor(1.0);
    REQUIRE_THROWS_WITH(ckpt::load_into(*model, good),
                        Contains("'1.num_batches_tracked'") && Contains("same dtype"));
  }
  REQUIRE(torch::equal(model[0]->named_parameters()["weight"], before));
}

TEST_CASE("checkpoint load_into accepts a Python-written file by name", "[safetensors]") {
  // A module whose parameter is named "layers.0.weight", like a Python nn.ModuleList entry.
  struct Holder : torch::nn::Module {
    Holder() {
      layers = register_module(
          "layers",
          torch::nn::Sequential(torch::nn::Linear(torch::nn::LinearOptions(3, 3).bias(false))));
    }
    torch::nn::Sequential layers;
  };
  Holder model;
  const st::File file =
      st::load(megabench::test::source_path("tests/fixtures/safetensors_sample.safetensors"));
  REQUIRE_THROWS_WITH(ckpt::load_into(model, file), Contains("unexpected"));
  ckpt::load_into(model, file, /*strict=*/false);
  REQUIRE(torch::equal(model.named_parameters()["layers.0.weight"],
                       torch::linspace(-1.0, 1.0, 9, torch::kFloat32).reshape({3, 3})));
}
