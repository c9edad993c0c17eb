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

namespace {

// fsync of a folder, so that a file created in it survives a crash of the machine.
void sync_dir(const fs::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Appends `bytes` to `path` and fsyncs it.
void append_synced(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0 || ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size()) ||
      ::fsync(fd) != 0) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot write '" + path + "': " + why);
  }
  ::close(fd);
}

}  // namespace

ResultsFile::ResultsFile(const std::string& path) : path_(path) {
  const fs::path dir = fs::path(path).parent_path();
  if (!dir.empty() && !fs::exists(dir)) {
    fs::create_directories(dir);
    sync_dir(dir.parent_path());
  }
  const bool created = !fs::exists(path);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw std::runtime_error("cannot open results file '" + path + "': " + std::strerror(errno));
  if (created) {
    ::fsync(fd_);
    sync_dir(dir);
  }
  set_aside_partial_line();
}

// A run killed mid-write may have left a partial last line: it is moved to PATH.partial (never
// lost, never read as a record), so that the next record starts on a line of its own and the
// point is measured again.
void ResultsFile::set_aside_partial_line() {
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || st.st_size == 0) return;
  std::ifstream in(path_, std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (content.empty() || content.back() == '\n') return;
  const auto last_nl = content.rfind('\n');
  const size_t keep = last_nl == std::string::npos ? 0 : last_nl + 1;
  truncated_ = content.size() - keep;
  append_synced(partial_path(), content.substr(keep) + "\n");
  if (::ftruncate(fd_, static_cast<off_t>(keep)) != 0 || ::fsync(fd_) != 0) {
    throw std::runtime_error("cannot truncate the partial last line of '" + path_ +
                             "': " + std::strerror(errno));
  }
}

ResultsFile::~ResultsFile() {
  if (fd_ >= 0) ::close(fd_);
}

void ResultsFile::append(const json& record) {
  const std::string line = record.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  struct stat st {};
  const off_t before = ::fstat(fd_, &st) == 0 ? st.st_size : -1;
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {  // one write() in practice; loop only on a short write
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail_append(before, errno == 0 ? ENOSPC : errno);
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd_) != 0) return fail_append(before, errno);
}

// A write or fsync that failed (disk full, I/O error, file size limit): cut the file back to the
// records before this one, so that no partial line is left, and say so.
void ResultsFile::fail_append(off_t before, int err) {
  const bool cut = before >= 0 && ::ftruncate(fd_, before) == 0;
  throw std::runtime_error("cannot write to '" + path_ + "': " + std::strerror(err) +
                           (cut ? "; the records written before are intact; free space and "
                                  "rerun the same command to resume"
                                : "; the file may end with a partial line, which the next run "
                                  "sets aside"));
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
