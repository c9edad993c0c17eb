#pragma once
// Reading and writing the safetensors format (https://github.com/huggingface/safetensors), the
// format the Python references save checkpoints in, so weights move between the two by name.
//
// Layout: an 8-byte little-endian header length N, N bytes of JSON header, then the data buffer.
//   {"weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
//    "__metadata__": {"model": "megabyte"}}
// Offsets are relative to the start of the data buffer.
//
// Files are untrusted input: every field is checked before any byte is copied, and every problem
// is a std::runtime_error that names the file (or buffer) and the tensor. The format is
// hand-written here because LibTorch ships no safetensors reader; the JSON header goes through
// nlohmann/json.
#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace megabench::safetensors {

/// A parsed safetensors file.
struct File {
  std::vector<std::string> names;                // in header order
  std::map<std::string, torch::Tensor> tensors;  // CPU tensors, owning their memory
  std::map<std::string, std::string> metadata;   // the header's "__metadata__" (string -> string)
};

/// The dtypes the format names that LibTorch has: F32 F64 F16 BF16 I64 I32 I16 I8 U8 BOOL.
/// Throws std::runtime_error for any other name.
torch::ScalarType dtype_from_name(const std::string& name);
/// The format's name for a LibTorch dtype; throws std::runtime_error for one it cannot store.
std::string dtype_name(torch::ScalarType dtype);

/// Reads and checks a file. Throws std::runtime_error naming the path, the tensor and the problem.
File load(const std::string& path);
/// Parses a whole file held in memory; `what` names it in error messages.
File parse(const std::string& bytes, const std::string& what = "buffer");

/// Serializes tensors in the given order (any device, layout or strides; stored as contiguous CPU
/// bytes). Names must be unique, non-empty and not "__metadata__".
std::string serialize(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
/// Writes `serialize(...)` to `path` atomically: into a temporary file beside it, then a rename,
/// so a crash never leaves a half-written checkpoint under the final name.
void save(const std::string& path,
          const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
          const std::map<std::string, std::string>& metadata = {});

}  // namespace megabench::safetensors
