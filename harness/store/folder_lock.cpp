#include "harness/store/folder_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

namespace megabench {
namespace {
namespace fs = std::filesystem;

constexpr const char* kFolderLock = ".megabench.lock";

int open_lock(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::runtime_error("cannot open lock file '" + path.string() +
                             "': " + std::strerror(errno));
  }
  return fd;
}

// The writer lock of one results file: OUTDIR/.results.jsonl.lock, holding the writer's pid.
fs::path writer_lock_path(const std::string& outdir, const Shard& shard) {
  const fs::path file = results_path(outdir, shard);
  return file.parent_path() / ("." + file.filename().string() + ".lock");
}

// The pids written in the folder's writer locks ("?" when none could be read).
std::string holders(const std::string& outdir) {
  std::set<std::string> pids;
  for (const auto& e : fs::directory_iterator(outdir)) {
    const std::string name = e.path().filename().string();
    if (name.size() < 6 || name.front() != '.' || name.substr(name.size() - 5) != ".lock" ||
        name == kFolderLock)
      continue;
    std::ifstream in(e.path());
    std::string pid;
    if (in >> pid) pids.insert(pid);
  }
  if (pids.empty()) return "pid unknown";
  std::string out = pids.size() == 1 ? "pid " : "pids ";
  for (const auto& p : pids) out += (out.back() == ' ' ? "" : ", ") + p;
  return out;
}

[[noreturn]] void busy(const std::string& outdir, const std::string& what) {
  throw FolderBusy("results folder '" + outdir + "' is in use by another megabench run (" +
                   holders(outdir) + ")" + what +
                   "; wait for it to finish, or write elsewhere with -o");
}

}  // namespace

FolderLock::FolderLock(const std::string& outdir, const Shard& shard) {
  fs::create_directories(outdir);
  folder_fd_ = open_lock(fs::path(outdir) / kFolderLock);
  if (::flock(folder_fd_, (shard.active() ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
    ::close(folder_fd_);
    busy(outdir, shard.active() ? " without shards" : "");
  }
  writer_fd_ = open_lock(writer_lock_path(outdir, shard));
  if (::flock(writer_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(writer_fd_);
    ::close(folder_fd_);
    busy(outdir, " on shard " + shard.text());
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  // Without the pid the lock still holds; only the message to a second writer is poorer.
  if (::ftruncate(writer_fd_, 0) == 0) (void)!::write(writer_fd_, pid.data(), pid.size());
}

FolderLock::~FolderLock() {
  if (writer_fd_ >= 0) ::close(writer_fd_);
  if (folder_fd_ >= 0) ::close(folder_fd_);
}

}  // namespace megabench
