// Private helpers shared by the public-data importers (import_*.cc).
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "qianmian/core/csv.h"
#include "qianmian/core/status.h"

namespace qm::tools::import_internal {

// "'value'" for error messages, cut at 40 bytes.
inline std::string Quoted(std::string_view s) {
  constexpr size_t kMax = 40;
  std::string v(s.substr(0, kMax));
  if (s.size() > kMax) v += "...";
  return "'" + v + "'";
}

// InvalidArgument "<path>:<line>: <what>".
inline Status BadLine(const std::string& path, uint64_t line, const std::string& what) {
  return Status::InvalidArgument(path + ":" + std::to_string(line) + ": " + what);
}

// A whole-cell decimal integer (optional leading '-').
inline bool ParseInt64(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// A whole-cell finite decimal number (optional leading '+' or '-').
inline bool IsNumber(std::string_view s) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  double v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && std::isfinite(v);
}

// The output folder of an import. Files are written as "<name>.tmp" and renamed into place by
// Commit(), so a failed import leaves an earlier folder as it was; uncommitted temporaries are
// removed on destruction. Not thread-safe.
class OutputFolder {
 public:
  // Creates `dir` (and parents) when missing.
  static Result<std::unique_ptr<OutputFolder>> Create(const std::string& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec || !fs::is_directory(dir)) {
      return Status::IoError("cannot create output folder '" + dir + "'" + (ec ? ": " + ec.message() : std::string()));
    }
    return std::unique_ptr<OutputFolder>(new OutputFolder(dir));
  }
  ~OutputFolder() {
    std::error_code ec;
    for (auto& f : files_) {
      f.writer.reset();
      if (!committed_) std::filesystem::remove(f.tmp, ec);
    }
  }

  // A writer for "<dir>/<name>", owned by this folder. REQUIRES: each name opened once.
  Result<CsvWriter*> Open(const std::string& name) {
    std::string final_path = (std::filesystem::path(dir_) / name).string();
    File f{final_path + ".tmp", final_path, nullptr};
    QM_ASSIGN_OR_RETURN(f.writer, CsvWriter::Open(f.tmp));
    files_.push_back(std::move(f));
    return files_.back().writer.get();
  }

  // Writes "<dir>/<name>" (renamed into place by Commit) holding `text`.
  Status WriteText(const std::string& name, const std::string& text) {
    std::string final_path = (std::filesystem::path(dir_) / name).string();
    File f{final_path + ".tmp", final_path, nullptr};
    std::FILE* fp = std::fopen(f.tmp.c_str(), "wb");
    if (!fp) return Status::IoError("cannot write '" + f.tmp + "'");
    bool ok = std::fwrite(text.data(), 1, text.size(), fp) == text.size();
    ok = (std::fclose(fp) == 0) && ok;
    files_.push_back(std::move(f));
    if (!ok) return Status::IoError("write to '" + files_.back().tmp + "' failed");
    return Status::Ok();
  }

  // Closes every writer and renames the files into place.
  Status Commit() {
    for (auto& f : files_) {
      if (f.writer) QM_RETURN_IF_ERROR(f.writer->Close());
    }
    for (auto& f : files_) {
      std::error_code ec;
      std::filesystem::rename(f.tmp, f.final_path, ec);
      if (ec) return Status::IoError("cannot rename '" + f.tmp + "' to '" + f.final_path + "': " + ec.message());
    }
    committed_ = true;
    return Status::Ok();
  }

 private:
  explicit OutputFolder(std::string dir) : dir_(std::move(dir)) {}
  struct File {
    std::string tmp, final_path;
    std::unique_ptr<CsvWriter> writer;  // null for WriteText files
  };
  std::string dir_;
  std::vector<File> files_;
  bool committed_ = false;
};

// A schema.toml typing extra customer columns (SPEC §2: "a schema file may override").
inline std::string SchemaToml(const std::vector<std::string>& numeric, const std::vector<std::string>& categorical) {
  auto list = [](const std::vector<std::string>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) {
      s += (i ? ", \"" : "\"");
      for (char c : v[i]) {
        if (c == '"' || c == '\\') s += '\\';
        s += c;
      }
      s += '"';
    }
    return s + "]";
  };
  return "# Types of the extra columns of customers.csv, written by `qianmian import`.\n"
         "[columns]\nnumeric = " +
         list(numeric) + "\ncategorical = " + list(categorical) + "\n";
}

}  // namespace qm::tools::import_internal
