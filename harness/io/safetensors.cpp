#include "harness/io/safetensors.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

// The format stores little-endian bytes and tensors are filled with a plain memcpy.
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "megabench safetensors support needs a little-endian host"
#endif

namespace megabench::safetensors {
namespace {

// ordered_json keeps the header's key order, which becomes File::names.
using ojson = nlohmann::ordered_json;

// The reference implementation caps the header at 100 MB; a larger length is corruption, and
// checking it first keeps a hostile length from driving a huge allocation.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr uint64_t kPrefixBytes = 8;
constexpr const char* kMetadataKey = "__metadata__";

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
};

constexpr DtypeInfo kDtypes[] = {
    {"F32", torch::kFloat32},   {"F64", torch::kFloat64}, {"F16", torch::kFloat16},
    {"BF16", torch::kBFloat16}, {"I64", torch::kInt64},   {"I32", torch::kInt32},
    {"I16", torch::kInt16},     {"I8", torch::kInt8},     {"U8", torch::kUInt8},
    {"BOOL", torch::kBool},
};

std::string supported_dtypes() {
  std::string out;
  for (const auto& d : kDtypes) out += (out.empty() ? "" : ", ") + std::string(d.name);
  return out;
}

/// One checked header entry: everything needed to copy its bytes safely.
struct Entry {
  std::string name;
  torch::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets into the data buffer
  uint64_t end = 0;
};

struct Header {
  std::vector<Entry> entries;  // in header order
  std::map<std::string, std::string> metadata;
};

[[noreturn]] void fail(const std::string& what, const std::string& message) {
  throw std::runtime_error("safetensors " + what + ": " + message);
}

[[noreturn]] void fail_tensor(const std::string& what, const std::string& name,
                              const std::string& message) {
  fail(what, "tensor '" + name + "': " + message);
}

uint64_t read_le64(const char* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, sizeof(v));  // little-endian host, see the #error above
  return v;
}

/// Checks the header length from the 8-byte prefix against the file size.
void check_header_length(uint64_t header_len, uint64_t total_bytes, const std::string& what) {
  if (header_len < 2) {
    fail(what, "header length " + std::to_string(header_len) +
                   " is too small (a JSON object needs at least 2 bytes)");
  }
  if (header_len > kMaxHeaderBytes) {
    fail(what, "header length " + std::to_string(header_len) + " exceeds the " +
                   std::to_string(kMaxHeaderBytes) +
                   "-byte limit (corrupt or not a safetensors file)");
  }
  if (header_len > total_bytes - kPrefixBytes) {
    fail(what, "header length " + std::to_string(header_len) + " is larger than the " +
                   std::to_string(total_bytes - kPrefixBytes) +
                   " bytes after the length prefix (truncated or not a safetensors file)");
  }
}

/// A JSON value as a non-negative integer that fits in int64; `field` names it in the error.
uint64_t as_count(const ojson& v, const std::string& what, const std::string& name,
                  const std::string& field) {
  if (!v.is_number_unsigned()) {
    fail_tensor(what, name,
                field + " must be a non-negative integer, got " +
                    (v.is_number_integer() ? "a negative integer" : std::string(v.type_name())));
  }
  const uint64_t u = v.get<uint64_t>();
  if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    fail_tensor(what, name, field + " " + std::to_string(u) + " is too large");
  }
  return u;
}

// The byte size of a shape, checked for overflow as the element count grows; a zero dimension still
// has to keep the product of the others representable, so that no later size computation can
// overflow. Fills `shape`.
uint64_t checked_nbytes(const ojson& dims, uint64_t itemsize, const std::string& what,
                        const std::string& name, std::vector<int64_t>& shape) {
  uint64_t numel = 1;
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  for (size_t i = 0; i < dims.size(); ++i) {
    const uint64_t dim = as_count(dims[i], what, name, "shape[" + std::to_string(i) + "]");
    shape.push_back(static_cast<int64_t>(dim));
    if (dim != 0) {
      if (numel > kMax / dim) fail_tensor(what, name, "element count of the shape overflows");
      numel *= dim;
    }
  }
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) numel = 0;
  if (numel > kMax / itemsize) fail_tensor(what, name, "byte size of the shape overflows");
  return numel * itemsize;
}

Entry parse_entry(const std::string& name, const ojson& info, uint64_t buffer_bytes,
                  const std::string& what) {
  if (!info.is_object()) {
    fail_tensor(what, name, std::string("header entry must be an object, got ") + info.type_name());
  }
  Entry e;
  e.name = name;

  auto dtype_it = info.find("dtype");
  if (dtype_it == info.end() || !dtype_it->is_string()) {
    fail_tensor(what, name, "\"dtype\" is missing or not a string");
  }
  try {
    e.dtype = dtype_from_name(dtype_it->get<std::string>());
  } catch (const std::runtime_error& err) {
    fail_tensor(what, name, err.what());
  }
  const uint64_t itemsize = c10::elementSize(e.dtype);

  auto shape_it = info.find("shape");
  if (shape_it == info.end() || !shape_it->is_array()) {
    fail_tensor(what, name, "\"shape\" is missing or not a list of non-negative integers");
  }
  const uint64_t nbytes = checked_nbytes(*shape_it, itemsize, what, name, e.shape);

  auto offsets_it = info.find("data_offsets");
  if (offsets_it == info.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
    fail_tensor(what, name,
                "\"data_offsets\" is missing or not a list of two integers [begin, end]");
  }
  e.begin = as_count((*offsets_it)[0], what, name, "data_offsets begin");
  e.end = as_count((*offsets_it)[1], what, name, "data_offsets end");
  if (e.begin > e.end) {
    fail_tensor(
        what, name,
        "data_offsets begin " + std::to_string(e.begin) + " is after end " + std::to_string(e.end));
  }
  if (e.end > buffer_bytes) {
    fail_tensor(what, name,
                "data_offsets end " + std::to_string(e.end) + " is beyond the " +
                    std::to_string(buffer_bytes) + "-byte data buffer (truncated file?)");
  }
  if (e.end - e.begin != nbytes) {
    fail_tensor(what, name,
                "data_offsets cover " + std::to_string(e.end - e.begin) + " bytes but dtype " +
                    dtype_name(e.dtype) + " with shape " + c10::str(c10::IntArrayRef(e.shape)) +
                    " needs " + std::to_string(nbytes) + " bytes");
  }
  return e;
}

Header parse_header(const char* data, uint64_t header_len, uint64_t buffer_bytes,
                    const std::string& what) {
  ojson root;
  try {
    root = ojson::parse(data, data + header_len);
  } catch (const nlohmann::json::exception& err) {
    fail(what, std::string("header is not valid JSON: ") + err.what());
  }
  if (!root.is_object()) {
    fail(what, std::string("header must be a JSON object, got ") + root.type_name());
  }

  Header header;
  for (const auto& [key, value] : root.items()) {
    if (key == kMetadataKey) {
      if (!value.is_object()) {
        fail(what, std::string("\"__metadata__\" must be an object of strings, got ") +
                       value.type_name());
      }
      for (const auto& [mkey, mvalue] : value.items()) {
        if (!mvalue.is_string()) {
          fail(what, "metadata value '" + mkey + "' must be a string, got " + mvalue.type_name());
        }
        header.metadata[mkey] = mvalue.get<std::string>();
      }
      continue;
    }
    header.entries.push_back(parse_entry(key, value, buffer_bytes, what));
  }

  // Ranges may not share bytes: sorted by begin, each range must start at or after every earlier
  // end.
  std::vector<const Entry*> by_begin;
  for (const auto& e : header.entries) by_begin.push_back(&e);
  std::sort(by_begin.begin(), by_begin.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  const Entry* furthest = nullptr;  // the range with the largest end so far
  for (const Entry* e : by_begin) {
    if (furthest && e->begin < furthest->end) {
      fail_tensor(what, e->name,
                  "data_offsets [" + std::to_string(e->begin) + ", " + std::to_string(e->end) +
                      ") overlap tensor '" + furthest->name + "' at [" +
                      std::to_string(furthest->begin) + ", " + std::to_string(furthest->end) + ")");
    }
    if (!furthest || e->end > furthest->end) furthest = e;
  }
  return header;
}

/// Builds the tensors; `read(entry, dst)` copies the entry's checked byte range into dst.
File build(const Header& header, const std::string& what,
           const std::function<void(const Entry&, void*)>& read) {
  File file;
  file.metadata = header.metadata;
  for (const auto& e : header.entries) {
    torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype));
    if (e.end > e.begin) read(e, t.data_ptr());
    if (e.dtype == torch::kBool) {
      // A bool byte other than 0 or 1 is undefined behaviour in LibTorch's kernels.
      const auto* bytes = static_cast<const uint8_t*>(t.data_ptr());
      for (uint64_t i = 0; i < e.end - e.begin; ++i) {
        if (bytes[i] > 1) {
          fail_tensor(what, e.name,
                      "BOOL element " + std::to_string(i) + " has byte value " +
                          std::to_string(bytes[i]) + " (expected 0 or 1)");
        }
      }
    }
    file.names.push_back(e.name);
    file.tensors.emplace(e.name, std::move(t));
  }
  return file;
}

void check_names(const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  std::map<std::string, int> seen;
  for (const auto& [name, t] : tensors) {
    if (name.empty()) throw std::invalid_argument("safetensors save: a tensor has an empty name");
    if (name == kMetadataKey) {
      throw std::invalid_argument("safetensors save: the name \"__metadata__\" is reserved");
    }
    if (seen[name]++)
      throw std::invalid_argument("safetensors save: tensor '" + name + "' appears twice");
    if (!t.defined())
      throw std::invalid_argument("safetensors save: tensor '" + name + "' is undefined");
    if (t.layout() != torch::kStrided) {
      throw std::invalid_argument("safetensors save: tensor '" + name + "' is not dense (strided)");
    }
  }
}

/// Writes the whole file to `out`: the prefix, the space-padded header, then each tensor's bytes.
void write(std::ostream& out, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
           const std::map<std::string, std::string>& metadata) {
  check_names(tensors);
  std::vector<torch::Tensor> cpu;
  ojson header = ojson::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    std::string dtype;
    try {
      dtype = dtype_name(t.scalar_type());
    } catch (const std::runtime_error& err) {
      throw std::invalid_argument("safetensors save: tensor '" + name + "': " + err.what());
    }
    cpu.push_back(t.detach().to(torch::kCPU).contiguous());
    const uint64_t nbytes = cpu.back().nbytes();
    header[name] = {
        {"dtype", dtype}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text = header.dump();
  // Padding to 8 bytes keeps the data buffer aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t header_len = text.size();
  char prefix[kPrefixBytes];
  std::memcpy(prefix, &header_len, sizeof(prefix));
  out.write(prefix, sizeof(prefix));
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& t : cpu) {
    out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  }
}

}  // namespace

torch::ScalarType dtype_from_name(const std::string& name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return d.type;
  }
  throw std::runtime_error("unknown dtype '" + name + "' (supported: " + supported_dtypes() + ")");
}

std::string dtype_name(torch::ScalarType dtype) {
  for (const auto& d : kDtypes) {
    if (dtype == d.type) return d.name;
  }
  throw std::runtime_error(std::string("dtype ") + c10::toString(dtype) +
                           " cannot be stored (supported: " + supported_dtypes() + ")");
}

File parse(const std::string& bytes, const std::string& what) {
  if (bytes.size() < kPrefixBytes) {
    fail(what, std::to_string(bytes.size()) + " bytes is too short for the 8-byte header length");
  }
  const uint64_t header_len = read_le64(bytes.data());
  check_header_length(header_len, bytes.size(), what);
  const uint64_t data_start = kPrefixBytes + header_len;
  const Header header =
      parse_header(bytes.data() + kPrefixBytes, header_len, bytes.size() - data_start, what);
  return build(header, what, [&](const Entry& e, void* dst) {
    std::memcpy(dst, bytes.data() + data_start + e.begin, e.end - e.begin);
  });
}

File load(const std::string& path) {
  const std::string what = "file '" + path + "'";
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
    fail(what, "is a directory, not a safetensors file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(what, std::string("cannot open for reading: ") + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) fail(what, "cannot determine the file size");
  const uint64_t total = static_cast<uint64_t>(size);
  if (total < kPrefixBytes) {
    fail(what, std::to_string(total) + " bytes is too short for the 8-byte header length");
  }
  in.seekg(0);
  char prefix[kPrefixBytes];
  in.read(prefix, sizeof(prefix));
  const uint64_t header_len = read_le64(prefix);
  check_header_length(header_len, total, what);
  std::string text(header_len, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_len));
  if (!in) fail(what, "reading the header failed");
  const uint64_t data_start = kPrefixBytes + header_len;
  const Header header = parse_header(text.data(), header_len, total - data_start, what);
  // Tensors are read straight into their own memory: no second copy of a large checkpoint.
  return build(header, what, [&](const Entry& e, void* dst) {
    in.seekg(static_cast<std::streamoff>(data_start + e.begin));
    in.read(static_cast<char*>(dst), static_cast<std::streamsize>(e.end - e.begin));
    if (!in) fail_tensor(what, e.name, "reading the data failed (file truncated while reading?)");
  });
}

std::string serialize(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::ostringstream out(std::ios::binary);
  write(out, tensors, metadata);
  return std::move(out).str();
}

void save(const std::string& path,
          const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
          const std::map<std::string, std::string>& metadata) {
  // POSIX calls rather than std::filesystem: libtorch.so exports its own copies of several
  // std::filesystem functions, which the dynamic linker may bind in place of libstdc++'s.
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) {
        throw std::runtime_error("safetensors save: cannot open '" + tmp +
                                 "' for writing: " + std::strerror(errno));
      }
      write(out, tensors, metadata);
      out.flush();
      if (!out)
        throw std::runtime_error("safetensors save: writing '" + tmp + "' failed (disk full?)");
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      throw std::runtime_error("safetensors save: cannot rename '" + tmp + "' to '" + path +
                               "': " + std::strerror(errno));
    }
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

}  // namespace megabench::safetensors
