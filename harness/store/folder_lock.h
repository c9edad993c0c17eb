#pragma once
// One writer per results folder: `megabench run` holds an advisory flock on OUTDIR while it
// writes, so that a second run into the same folder fails at once instead of writing every point
// twice. Shards of one sweep may share a folder (each writes its own file): a shard takes the
// folder lock shared and its file's lock exclusive; an unsharded run takes the folder lock
// exclusive. The locks go with the process (a killed run leaves no stale lock behind).
//
//   FolderLock lock(outdir, shard);   // throws FolderBusy naming the holder's pid
#include <stdexcept>
#include <string>

#include "harness/store/results.h"

namespace megabench {

struct FolderBusy : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class FolderLock {
 public:
  FolderLock(const std::string& outdir, const Shard& shard);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int folder_fd_ = -1;
  int writer_fd_ = -1;
};

}  // namespace megabench
