#pragma once
// Byte data for bits-per-byte runs: a file, random bytes, or a built-in corpus of real text that a
// standard Debian 12 machine has (after scripts/setup.sh):
//   "code": the CPython standard library's top-level *.py files (/usr/lib/python3.X, highest X)
//   "text": the English fortune-cookie collections of the Debian package `fortunes`
//           (/usr/share/games/fortunes, plain text files without the .dat/.u8 index files)
// Or a folder of documents ("dir", e.g. the campaign's corpora that scripts/prepare_corpora.py
// builds): every regular file below it, one document each (names starting with '.' skipped).
// Files are read in sorted order; every 10th file (index % 10 == 9) is held out, so the split is
// fixed and by document. File and random data hold out their last `held_out_fraction` of bytes.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace megabench::data {

using json = nlohmann::json;

/// The resolved "data" run settings (experiments/README.md); config/run_settings.cpp validates
/// them and fills the defaults.
struct DataSpec {
  std::string source = "random";   // "random" | "file" | "builtin" | "dir"
  std::string path;                // sources "file" and "dir"
  std::string corpus;              // source "builtin": "code" | "text"
  int64_t bytes = 1 << 20;         // source "random"
  double held_out_fraction = 0.1;  // sources "random" and "file"
  int64_t seed = 0;                // source "random"
  /// The settings as saved in a record: only the keys that apply to the source.
  json to_json() const;
};

struct ByteData {
  std::vector<uint8_t> train;
  std::vector<uint8_t> held_out;
  /// Where each document of held_out starts (0 first), for sources with document boundaries
  /// (builtin and dir: one document per file); empty for sources without them (file, random).
  std::vector<int64_t> held_out_docs;
  json
      info;  // {"source", "path"|"corpus", "files", "train_bytes", "held_out_bytes", "fingerprint"}
};

/// Loads the data the settings describe. Throws std::runtime_error when a file or corpus is
/// missing, with what to install.
ByteData load(const DataSpec& spec);

/// The sorted files of a built-in corpus ("code" or "text"); throws when none is found.
std::vector<std::string> corpus_files(const std::string& corpus);
/// The sorted documents of a folder (source "dir"); throws when it is missing or holds < 10.
std::vector<std::string> folder_documents(const std::string& dir);

/// Same as load(), memoised by the settings (points of one sweep share their data).
const ByteData& load_cached(const DataSpec& spec);

}  // namespace megabench::data
