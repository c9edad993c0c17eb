#include "harness/io/data.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <stdexcept>

namespace megabench::data {
namespace fs = std::filesystem;
namespace {

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("data: cannot read '" + path + "'");
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
}

std::string fingerprint(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  uint64_t h = 1469598103934665603ULL;
  for (const auto* v : {&a, &b}) {
    for (uint8_t c : *v) {
      h ^= c;
      h *= 1099511628211ULL;
    }
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// The newest /usr/lib/python3.X with the standard library in it.
std::string python_lib_dir() {
  std::string best;
  int best_minor = -1;
  if (!fs::is_directory("/usr/lib")) return best;
  for (const auto& e : fs::directory_iterator("/usr/lib")) {
    auto name = e.path().filename().string();
    if (name.rfind("python3.", 0) != 0) continue;
    try {
      int minor = std::stoi(name.substr(8));
      if (minor > best_minor && fs::exists(e.path() / "os.py")) {
        best_minor = minor;
        best = e.path().string();
      }
    } catch (const std::exception&) {
    }
  }
  return best;
}

void split_by_fraction(ByteData& d, std::vector<uint8_t> all, double held_out_fraction) {
  size_t held = static_cast<size_t>(static_cast<double>(all.size()) * held_out_fraction);
  if (held == 0 || held >= all.size()) {
    throw std::runtime_error("data: " + std::to_string(all.size()) +
                             " bytes are too few to hold out a fraction of " +
                             std::to_string(held_out_fraction));
  }
  d.held_out.assign(all.end() - static_cast<std::ptrdiff_t>(held), all.end());
  all.resize(all.size() - held);
  d.train = std::move(all);
}

}  // namespace

std::vector<std::string> corpus_files(const std::string& corpus) {
  std::vector<std::string> files;
  std::string dir;
  if (corpus == "code") {
    dir = python_lib_dir();
    if (dir.empty()) {
      throw std::runtime_error(
          "data: built-in corpus \"code\" needs the CPython standard library in /usr/lib/python3.X "
          "(Debian package python3; scripts/setup.sh installs it)");
    }
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.is_regular_file() && e.path().extension() == ".py") files.push_back(e.path().string());
    }
  } else if (corpus == "text") {
    dir = "/usr/share/games/fortunes";
    if (fs::is_directory(dir)) {
      for (const auto& e : fs::directory_iterator(dir)) {
        auto ext = e.path().extension().string();
        // The .dat files are binary indexes and the .u8 files links to the same text.
        if (e.is_regular_file() && !e.is_symlink() && ext != ".dat" && ext != ".u8")
          files.push_back(e.path().string());
      }
    }
    if (files.empty()) {
      throw std::runtime_error(
          "data: built-in corpus \"text\" needs the Debian package 'fortunes' "
          "(/usr/share/games/fortunes; scripts/setup.sh installs it)");
    }
  } else {
    throw std::invalid_argument("data.corpus: expected one of code, text, got \"" + corpus + "\"");
  }
  std::sort(files.begin(), files.end());
  if (files.size() < 10) {
    throw std::runtime_error("data: built-in corpus \"" + corpus + "\" has only " +
                             std::to_string(files.size()) + " files in " + dir +
                             "; expected at least 10");
  }
  return files;
}

std::vector<std::string> folder_documents(const std::string& dir) {
  if (!fs::is_directory(dir)) {
    throw std::runtime_error("data.path: no such folder '" + dir +
                             "' (scripts/prepare_corpora.py builds the campaign's corpora)");
  }
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (e.is_regular_file() && !name.empty() && name[0] != '.') files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.size() < 10) {
    throw std::runtime_error("data.path: the folder '" + dir + "' holds " +
                             std::to_string(files.size()) +
                             " documents; expected at least 10 (every 10th is held out)");
  }
  return files;
}

json DataSpec::to_json() const {
  json j = {{"source", source}};
  if (source == "file" || source == "dir") j["path"] = path;
  if (source == "builtin") j["corpus"] = corpus;
  if (source == "random") j["bytes"] = bytes;
  if (source == "file" || source == "random") j["held_out_fraction"] = held_out_fraction;
  j["seed"] = seed;
  return j;
}

ByteData load(const DataSpec& s) {
  ByteData d;
  d.info = {{"source", s.source}};
  if (s.source == "file") {
    if (!fs::is_regular_file(s.path))
      throw std::runtime_error("data.path: no such file '" + s.path + "'");
    split_by_fraction(d, read_file(s.path), s.held_out_fraction);
    d.info["path"] = s.path;
  } else if (s.source == "random") {
    std::mt19937_64 rng(static_cast<uint64_t>(s.seed));
    std::vector<uint8_t> all(static_cast<size_t>(s.bytes));
    for (auto& b : all) b = static_cast<uint8_t>(rng() & 0xff);
    split_by_fraction(d, std::move(all), s.held_out_fraction);
  } else if (s.source == "builtin" || s.source == "dir") {
    auto files = s.source == "dir" ? folder_documents(s.path) : corpus_files(s.corpus);
    for (size_t i = 0; i < files.size(); ++i) {
      auto bytes = read_file(files[i]);
      auto& dst = i % 10 == 9 ? d.held_out : d.train;
      if (i % 10 == 9) d.held_out_docs.push_back(static_cast<int64_t>(d.held_out.size()));
      dst.insert(dst.end(), bytes.begin(), bytes.end());
    }
    if (s.source == "builtin") d.info["corpus"] = s.corpus;
    d.info["path"] = s.source == "dir" ? s.path : fs::path(files[0]).parent_path().string();
    d.info["files"] = files.size();
  } else {
    throw std::invalid_argument("data.source: expected one of random, file, builtin, dir, got \"" +
                                s.source + "\"");
  }
  d.info["train_bytes"] = d.train.size();
  d.info["held_out_bytes"] = d.held_out.size();
  d.info["fingerprint"] = fingerprint(d.train, d.held_out);
  return d;
}

const ByteData& load_cached(const DataSpec& spec) {
  static std::map<std::string, ByteData> cache;
  auto key = spec.to_json().dump();
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, load(spec)).first;
  return it->second;
}

}  // namespace megabench::data
