#include "harness/store/results.h"

#include <ATen/Parallel.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <torch/version.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "harness/api/format.h"
#include "harness/api/record.h"
#include "harness/store/provenance.h"
#include "harness/store/result_set.h"

namespace megabench {
namespace fs = std::filesystem;

Shard parse_shard(const std::string& text) {
  auto slash = text.find('/');
  Shard s;
  try {
    if (slash == std::string::npos) throw std::invalid_argument("");
    size_t a = 0, b = 0;
    s.index = std::stoi(text.substr(0, slash), &a);
    s.count = std::stoi(text.substr(slash + 1), &b);
    if (a != slash || b != text.size() - slash - 1) throw std::invalid_argument("");
  } catch (const std::exception&) {
    throw std::invalid_argument("--shard: expected I/N with integers 0 <= I < N, got '" + text +
                                "'");
  }
  if (s.count < 1 || s.index < 0 || s.index >= s.count) {
    throw std::invalid_argument("--shard: expected I/N with 0 <= I < N, got '" + text + "'");
  }
  return s;
}

std::string results_path(const std::string& outdir, const Shard& shard) {
  std::string file = shard.active() ? "results.shard-" + std::to_string(shard.index) + "-of-" +
                                          std::to_string(shard.count) + ".jsonl"
                                    : "results.jsonl";
  return (fs::path(outdir) / file).string();
}

ResultsFile::ResultsFile(const std::string& path) : path_(path) {
  auto dir = fs::path(path).parent_path();
  if (!dir.empty()) fs::create_directories(dir);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw std::runtime_error("cannot open results file '" + path + "': " + std::strerror(errno));
  // A run killed mid-write may have left a partial last line: cut it off, so that the next record
  // starts on a line of its own.
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && st.st_size > 0) {
    std::ifstream in(path, std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!content.empty() && content.back() != '\n') {
      auto last_nl = content.rfind('\n');
      size_t keep = last_nl == std::string::npos ? 0 : last_nl + 1;
      truncated_ = content.size() - keep;
      if (::ftruncate(fd_, static_cast<off_t>(keep)) != 0) {
        throw std::runtime_error("cannot truncate partial line of '" + path +
                                 "': " + std::strerror(errno));
      }
    }
  }
}

ResultsFile::~ResultsFile() {
  if (fd_ >= 0) ::close(fd_);
}

void ResultsFile::append(const json& record) {
  std::string line = record.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {  // one write() in practice; loop only on a short write
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("cannot write to '" + path_ + "': " + std::strerror(errno));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd_) != 0)
    throw std::runtime_error("cannot fsync '" + path_ + "': " + std::strerror(errno));
}

size_t for_each_result_line(
    const std::string& path,
    const std::function<void(size_t number, const std::string& text)>& line) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (fs::exists(path)) throw std::runtime_error("cannot read results file '" + path + "'");
    return 0;
  }
  const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t pos = 0, number = 0;
  while (pos < content.size()) {
    const size_t nl = content.find('\n', pos);
    if (nl == std::string::npos) return 1;  // a write cut short by a kill: never a record
    const std::string text = content.substr(pos, nl - pos);
    pos = nl + 1;
    ++number;
    if (text.find_first_not_of(" \t\r") != std::string::npos) line(number, text);
  }
  return 0;
}

LoadedResults load_results(const std::string& path) {
  LoadedResults out;
  out.partial_tail = for_each_result_line(path, [&](size_t number, const std::string& text) {
    json rec = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (rec.is_discarded()) {
      out.warnings.push_back(path + ":" + std::to_string(number) + ": not JSON, line skipped");
    } else {
      out.records.push_back(std::move(rec));
    }
  });
  return out;
}

std::set<std::string> completed_keys(const std::string& outdir) {
  std::set<std::string> keys;
  if (results_files(outdir).empty()) return keys;
  for (const auto& p : load_result_set({outdir}).points)
    if (p.ok()) keys.insert(p.key);
  return keys;
}

json context_record(const json& experiment, const std::string& device,
                    const std::optional<Shard>& shard, const json& calibration) {
  const json& prov = provenance();
  json rec = {{"type", "context"},
              {"schema_version", kSchemaVersion},
              {"experiment", experiment},
              {"date", utc_now_iso()},
              {"host", prov["host"]},
              {"cpu", prov["cpu"]},
              {"threads", at::get_num_threads()},
              {"libtorch_version", prov["libtorch_version"]},
              {"cuda_version", prov["cuda_version"]},
              {"device", device},
              {"git_commit", prov["git_commit"]},
              {"shard", shard && shard->active() ? json(shard->text()) : json(nullptr)},
              {"calibration", calibration},
              {"provenance", prov}};
  if (!prov["git_commit"].is_null()) rec["git_dirty"] = prov["git_dirty"];
  return rec;
}

}  // namespace megabench
