// Module core: the foundation: Status, domain types, CSV, time, configuration, dataset loading. May
// depend on: the standard library; toml++ and date (private).
// RFC 4180 CSV: a streaming reader (large buffered reads, no per-field allocation) and a
// buffered writer that quotes only where needed. UTF-8; a leading BOM is skipped.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "qianmian/core/status.h"

namespace qm {

struct CsvRecord {
  // Fields of the record; views valid until the next CsvReader::Next call.
  std::vector<std::string_view> fields;
  uint64_t line = 0;  // 1-based physical line where the record starts
  std::string error;  // non-empty when the record is malformed (fields then unreliable)
};

class CsvReader {
 public:
  // Opens `path` (IoError when it cannot). `delimiter` is ',' by default.
  static Result<std::unique_ptr<CsvReader>> Open(const std::string& path, char delimiter = ',');
  // Reads from memory (tests, small inputs). `text` must outlive the reader.
  static std::unique_ptr<CsvReader> FromString(std::string_view text, char delimiter = ',');
  ~CsvReader();

  // Reads the next record into `rec`; false at end of input. An empty line is skipped.
  // A malformed record (bad quoting, longer than kMaxRecordBytes) comes back with `error`
  // set and the reader resynchronises at the next line.
  bool Next(CsvRecord* rec);
  // Bytes consumed so far and the input's size (0 when unknown), for progress bars.
  uint64_t bytes_read() const { return consumed_; }
  uint64_t size() const { return size_; }
  // An IoError met while reading (Next then returns false).
  const Status& status() const { return status_; }

  static constexpr size_t kMaxRecordBytes = 1 << 20;

 private:
  CsvReader() = default;
  bool Fill();  // moves the unread tail to the front and reads more; false at EOF

  std::FILE* file_ = nullptr;
  char delim_ = ',';
  std::vector<char> buf_;
  const char* mem_ = nullptr;   // FromString input
  size_t begin_ = 0, end_ = 0;  // unread window in buf_ (or mem_)
  bool eof_ = false;
  uint64_t line_ = 1;
  uint64_t consumed_ = 0;
  uint64_t size_ = 0;
  std::string scratch_;  // unescaped quoted fields
  Status status_;
};

// Buffered CSV writer. Fields containing the delimiter, a quote, CR or LF are quoted.
class CsvWriter {
 public:
  // Creates or truncates `path`.
  static Result<std::unique_ptr<CsvWriter>> Open(const std::string& path, char delimiter = ',');
  ~CsvWriter();

  void Field(std::string_view s);
  void Field(int64_t v);
  void Field(uint64_t v);
  void Field(int v) { Field(static_cast<int64_t>(v)); }
  void Field(uint32_t v) { Field(static_cast<uint64_t>(v)); }
  void Field(double v, int precision = 6);
  // Writes `s` as one field without checking for characters that need quoting.
  // REQUIRES: s has no delimiter, quote, CR or LF.
  void RawField(std::string_view s);
  void EndRow();
  // Writes a whole row.
  void Row(const std::vector<std::string>& fields);
  // Flushes and closes; IoError if any write failed.
  Status Close();

 private:
  CsvWriter() = default;
  void Sep();
  void Put(std::string_view s);
  void FlushBuffer();
  std::FILE* file_ = nullptr;
  std::string path_;
  char delim_ = ',';
  bool row_started_ = false;
  bool failed_ = false;
  std::string buf_;
};

// Splits a list cell "a;b;c" into trimmed non-empty parts.
std::vector<std::string_view> SplitList(std::string_view cell, char sep = ';');
// Trims ASCII white space.
std::string_view Trim(std::string_view s);

// The lines of a file of one value per line (e.g. `--customers FILE`, one id a line): white
// space trimmed (including the CR of CRLF files), blank lines skipped. IoError naming `what`
// ("customers file", ...) when the file cannot be read.
[[nodiscard]] Result<std::vector<std::string>> ReadLines(const std::string& path, const std::string& what);

}  // namespace qm
