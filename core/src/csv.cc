#include "qianmian/core/csv.h"

#include <sys/stat.h>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>

namespace qm {

namespace {
constexpr size_t kReadChunk = 4 << 20;
}

Result<std::unique_ptr<CsvReader>> CsvReader::Open(const std::string& path, char delimiter) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::IoError("cannot open '" + path + "': " + std::strerror(errno));
  std::unique_ptr<CsvReader> r(new CsvReader());
  r->file_ = f;
  r->delim_ = delimiter;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) r->size_ = static_cast<uint64_t>(st.st_size);
  r->buf_.resize(kReadChunk * 2);
  r->Fill();
  if (r->end_ - r->begin_ >= 3 && std::memcmp(r->buf_.data() + r->begin_, "\xEF\xBB\xBF", 3) == 0) {
    r->begin_ += 3;
    r->consumed_ += 3;
  }
  return r;
}

std::unique_ptr<CsvReader> CsvReader::FromString(std::string_view text, char delimiter) {
  std::unique_ptr<CsvReader> r(new CsvReader());
  r->mem_ = text.data();
  r->end_ = text.size();
  r->eof_ = true;
  r->delim_ = delimiter;
  r->size_ = text.size();
  if (text.size() >= 3 && std::memcmp(text.data(), "\xEF\xBB\xBF", 3) == 0) {
    r->begin_ = 3;
    r->consumed_ = 3;
  }
  return r;
}

CsvReader::~CsvReader() {
  if (file_) std::fclose(file_);
}

bool CsvReader::Fill() {
  if (eof_ || mem_) return false;
  size_t tail = end_ - begin_;
  if (begin_ > 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, tail);
    begin_ = 0;
    end_ = tail;
  }
  if (buf_.size() - end_ < kReadChunk) buf_.resize(end_ + kReadChunk);
  size_t n = std::fread(buf_.data() + end_, 1, buf_.size() - end_, file_);
  if (n == 0) {
    if (std::ferror(file_)) status_ = Status::IoError(std::string("read failed: ") + std::strerror(errno));
    eof_ = true;
    return false;
  }
  end_ += n;
  return true;
}

bool CsvReader::Next(CsvRecord* rec) {
  for (;;) {
    rec->fields.clear();
    rec->error.clear();
    const char* data = mem_ ? mem_ : buf_.data();
    if (begin_ >= end_) {
      if (!Fill()) return false;
      data = buf_.data();
    }
    // Find the record's extent [begin_, p) up to its '\n', respecting quotes: a quote opens
    // a quoted field only at the start of a field (RFC 4180); elsewhere it is left for the
    // field splitter to report.
    enum class St { kFieldStart, kUnquoted, kQuoted, kAfterQuote };
    St st = St::kFieldStart;
    size_t p = begin_;
    bool complete = false;
    size_t newlines = 0;
    for (;;) {
      if (p >= end_) {
        if (eof_ || mem_) {
          complete = true;
          break;
        }
        if (p - begin_ > kMaxRecordBytes) break;
        size_t off = p - begin_;
        bool more = Fill();
        data = buf_.data();
        p = begin_ + off;
        if (!more) {
          complete = true;
          break;
        }
        continue;
      }
      char ch = data[p];
      if (st == St::kQuoted) {
        if (ch == '"')
          st = St::kAfterQuote;
        else if (ch == '\n')
          ++newlines;
        ++p;
        continue;
      }
      if (ch == '\n') {
        complete = true;
        break;
      }
      if (ch == delim_)
        st = St::kFieldStart;
      else if (ch == '"' && (st == St::kFieldStart || st == St::kAfterQuote))
        st = St::kQuoted;
      else if (st != St::kUnquoted)
        st = St::kUnquoted;
      ++p;
    }
    const bool in_quotes = st == St::kQuoted;
    rec->line = line_;
    if (!complete || p - begin_ > kMaxRecordBytes) {
      // Too long: report and resync at the first newline after the record start.
      rec->error = "record longer than 1 MiB (unterminated quote?)";
      const char* nl = static_cast<const char*>(std::memchr(data + begin_, '\n', end_ - begin_));
      size_t stop = nl ? (nl - data) + 1 : end_;
      consumed_ += stop - begin_;
      begin_ = stop;
      line_ += 1;
      return true;
    }
    size_t rec_begin = begin_, rec_end = p;  // rec_end at '\n' or end of input
    size_t next = rec_end < end_ ? rec_end + 1 : rec_end;
    line_ += 1 + newlines;
    consumed_ += next - begin_;
    begin_ = next;
    if (rec_end > rec_begin && data[rec_end - 1] == '\r') --rec_end;
    if (rec_end == rec_begin) {
      if (next >= end_ && (eof_ || mem_)) return false;
      continue;  // empty line
    }
    if (in_quotes) {
      rec->error = "unterminated quoted field";
      return true;
    }
    // Split into fields.
    scratch_.clear();
    scratch_.reserve(rec_end - rec_begin);
    size_t i = rec_begin;
    for (;;) {
      if (i < rec_end && data[i] == '"') {
        size_t start = scratch_.size();
        ++i;
        for (;;) {
          if (i >= rec_end) {
            rec->error = "unterminated quoted field";
            return true;
          }
          if (data[i] == '"') {
            if (i + 1 < rec_end && data[i + 1] == '"') {
              scratch_.push_back('"');
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          scratch_.push_back(data[i++]);
        }
        rec->fields.emplace_back(scratch_.data() + start, scratch_.size() - start);
        if (i < rec_end && data[i] != delim_) {
          rec->error = "unexpected character after a closing quote in field " + std::to_string(rec->fields.size());
          return true;
        }
      } else {
        size_t start = i;
        while (i < rec_end && data[i] != delim_) {
          if (data[i] == '"') {
            rec->error = "stray quote inside unquoted field " + std::to_string(rec->fields.size() + 1);
            return true;
          }
          ++i;
        }
        rec->fields.emplace_back(data + start, i - start);
      }
      if (i >= rec_end) break;
      ++i;  // delimiter
      if (i == rec_end) {
        rec->fields.emplace_back();
        break;
      }
    }
    return true;
  }
}

Result<std::unique_ptr<CsvWriter>> CsvWriter::Open(const std::string& path, char delimiter) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return Status::IoError("cannot write '" + path + "': " + std::strerror(errno));
  std::unique_ptr<CsvWriter> w(new CsvWriter());
  w->file_ = f;
  w->path_ = path;
  w->delim_ = delimiter;
  w->buf_.reserve(1 << 20);
  return w;
}

CsvWriter::~CsvWriter() {
  if (file_) (void)Close();
}

void CsvWriter::FlushBuffer() {
  if (!buf_.empty() && file_) {
    if (std::fwrite(buf_.data(), 1, buf_.size(), file_) != buf_.size()) failed_ = true;
  }
  buf_.clear();
}

void CsvWriter::Put(std::string_view s) {
  buf_.append(s.data(), s.size());
  if (buf_.size() >= (1 << 20)) FlushBuffer();
}

void CsvWriter::Sep() {
  if (row_started_) buf_.push_back(delim_);
  row_started_ = true;
}

void CsvWriter::RawField(std::string_view s) {
  Sep();
  Put(s);
}

void CsvWriter::Field(std::string_view s) {
  Sep();
  bool quote = false;
  for (char c : s) {
    if (c == delim_ || c == '"' || c == '\n' || c == '\r') {
      quote = true;
      break;
    }
  }
  if (!quote) {
    Put(s);
    return;
  }
  buf_.push_back('"');
  for (char c : s) {
    if (c == '"') buf_.push_back('"');
    buf_.push_back(c);
  }
  buf_.push_back('"');
  if (buf_.size() >= (1 << 20)) FlushBuffer();
}

void CsvWriter::Field(int64_t v) {
  char tmp[24];
  auto r = std::to_chars(tmp, tmp + sizeof tmp, v);
  RawField(std::string_view(tmp, r.ptr - tmp));
}

void CsvWriter::Field(uint64_t v) {
  char tmp[24];
  auto r = std::to_chars(tmp, tmp + sizeof tmp, v);
  RawField(std::string_view(tmp, r.ptr - tmp));
}

void CsvWriter::Field(double v, int precision) {
  char tmp[64];
  int n = std::isfinite(v) ? std::snprintf(tmp, sizeof tmp, "%.*g", precision, v) : 0;
  RawField(std::string_view(tmp, n > 0 ? n : 0));
}

void CsvWriter::EndRow() {
  buf_.push_back('\n');
  row_started_ = false;
  if (buf_.size() >= (1 << 20)) FlushBuffer();
}

void CsvWriter::Row(const std::vector<std::string>& fields) {
  for (const auto& f : fields) Field(std::string_view(f));
  EndRow();
}

Status CsvWriter::Close() {
  if (!file_) return failed_ ? Status::IoError("write to '" + path_ + "' failed") : Status::Ok();
  FlushBuffer();
  if (std::fflush(file_) != 0) failed_ = true;
  if (std::fclose(file_) != 0) failed_ = true;
  file_ = nullptr;
  if (failed_) return Status::IoError("write to '" + path_ + "' failed (disk full?)");
  return Status::Ok();
}

std::string_view Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return s.substr(b, e - b);
}

Result<std::vector<std::string>> ReadLines(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) return Status::IoError("cannot read " + what + " '" + path + "'");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    size_t b = 0, e = line.size();
    while (b < e && std::isspace(static_cast<unsigned char>(line[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(line[e - 1]))) --e;
    if (b < e) out.emplace_back(line, b, e - b);
  }
  return out;
}

std::vector<std::string_view> SplitList(std::string_view cell, char sep) {
  std::vector<std::string_view> out;
  size_t b = 0;
  while (b <= cell.size()) {
    size_t e = cell.find(sep, b);
    if (e == std::string_view::npos) e = cell.size();
    std::string_view part = Trim(cell.substr(b, e - b));
    if (!part.empty()) out.push_back(part);
    b = e + 1;
  }
  return out;
}

}  // namespace qm
