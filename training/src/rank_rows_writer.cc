#include "rank_rows_writer.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

namespace qm::training {

namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// One .npy file (format 1.0) written row by row; the header, padded to a fixed 128 bytes, is
// rewritten with the final row count on Close.
class NpyFile {
 public:
  NpyFile(std::string path, std::string descr, int64_t columns)
      : path_(std::move(path)), descr_(std::move(descr)), columns_(columns) {}
  ~NpyFile() {
    if (f_) std::fclose(f_);
  }
  Status Open() {
    f_ = std::fopen(path_.c_str(), "wb");
    if (!f_) return Status::IoError("cannot write '" + path_ + "'");
    return WriteHeader(0);
  }
  Status Write(const void* data, size_t bytes) {
    if (bytes && std::fwrite(data, 1, bytes, f_) != bytes) return Status::IoError("cannot write '" + path_ + "'");
    return Status::Ok();
  }
  Status Close(int64_t rows) {
    if (std::fseek(f_, 0, SEEK_SET) != 0) return Status::IoError("cannot rewind '" + path_ + "'");
    QM_RETURN_IF_ERROR(WriteHeader(rows));
    const bool ok = std::fclose(f_) == 0;
    f_ = nullptr;
    return ok ? Status::Ok() : Status::IoError("cannot close '" + path_ + "'");
  }

 private:
  Status WriteHeader(int64_t rows) {
    constexpr size_t kHeader = 128;
    std::string shape = columns_ > 0 ? "(" + std::to_string(rows) + ", " + std::to_string(columns_) + ")"
                                     : "(" + std::to_string(rows) + ",)";
    std::string dict = "{'descr': '" + descr_ + "', 'fortran_order': False, 'shape': " + shape + ", }";
    std::string header = std::string("\x93NUMPY\x01\x00", 8);
    const size_t len = kHeader - 10;
    dict.resize(len - 1, ' ');
    dict.push_back('\n');
    header.push_back(static_cast<char>(len & 0xff));
    header.push_back(static_cast<char>(len >> 8));
    header += dict;
    return Write(header.data(), header.size());
  }

  std::string path_, descr_;
  int64_t columns_;
  std::FILE* f_ = nullptr;
};

class NpyWriter final : public RankRowsWriter {
 public:
  NpyWriter(const std::string& dir, int cat_width, int dense_width)
      : cat_(dir + "/cat.npy", "<i8", cat_width),
        dense_(dir + "/dense.npy", "<f4", dense_width),
        bag_(dir + "/bag.npy", "<i8", rank::kBagWidth),
        labels_(dir + "/labels.npy", "<f4", 2),
        weight_(dir + "/weight.npy", "<f4", 0),
        held_out_(dir + "/held_out.npy", "|u1", 0) {}

  Status Open() {
    for (NpyFile* f : Files()) QM_RETURN_IF_ERROR(f->Open());
    return Status::Ok();
  }
  Status Append(const rank::RankBatch& b, uint8_t held_out) override {
    const size_t n = static_cast<size_t>(b.inputs.n);
    QM_RETURN_IF_ERROR(cat_.Write(b.inputs.cat.data(), b.inputs.cat.size() * sizeof(int64_t)));
    QM_RETURN_IF_ERROR(dense_.Write(b.inputs.dense.data(), b.inputs.dense.size() * sizeof(float)));
    QM_RETURN_IF_ERROR(bag_.Write(b.inputs.bag.data(), b.inputs.bag.size() * sizeof(int64_t)));
    std::vector<float> labels(2 * n);
    for (size_t i = 0; i < n; ++i) {
      labels[2 * i] = b.click[i];
      labels[2 * i + 1] = b.convert[i];
    }
    QM_RETURN_IF_ERROR(labels_.Write(labels.data(), labels.size() * sizeof(float)));
    QM_RETURN_IF_ERROR(weight_.Write(b.weight.data(), n * sizeof(float)));
    const std::vector<uint8_t> flags(n, held_out);
    QM_RETURN_IF_ERROR(held_out_.Write(flags.data(), n));
    rows_ += static_cast<int64_t>(n);
    return Status::Ok();
  }
  Status Close(const std::string&) override {
    for (NpyFile* f : Files()) QM_RETURN_IF_ERROR(f->Close(rows_));
    return Status::Ok();
  }
  int64_t rows() const override { return rows_; }

 private:
  std::vector<NpyFile*> Files() { return {&cat_, &dense_, &bag_, &labels_, &weight_, &held_out_}; }
  NpyFile cat_, dense_, bag_, labels_, weight_, held_out_;
  int64_t rows_ = 0;
};

class CsvRowsWriter final : public RankRowsWriter {
 public:
  CsvRowsWriter(const std::string& path, int cat_width, int dense_width) : out_(path), path_(path) {
    csv_ = true;
    auto columns = [&](const char* name, int n) {
      for (int k = 0; k < n; ++k) out_ << name << '_' << k << ',';
    };
    columns("cat", cat_width);
    columns("dense", dense_width);
    columns("bag", rank::kBagWidth);
    out_ << "click,convert,weight,held_out\n";
  }
  bool ok() const { return static_cast<bool>(out_); }
  Status Append(const rank::RankBatch& b, uint8_t held_out) override {
    const int64_t C = b.inputs.cat_width, K = b.inputs.dense_width;
    char num[32];
    for (int64_t i = 0; i < b.inputs.n; ++i) {
      for (int64_t k = 0; k < C; ++k) out_ << b.inputs.cat[i * C + k] << ',';
      for (int64_t k = 0; k < K; ++k) {
        std::snprintf(num, sizeof num, "%.9g,", b.inputs.dense[i * K + k]);
        out_ << num;
      }
      for (int k = 0; k < rank::kBagWidth; ++k) out_ << b.inputs.bag[i * rank::kBagWidth + k] << ',';
      std::snprintf(num, sizeof num, "%.9g", b.weight[i]);
      out_ << b.click[i] << ',' << b.convert[i] << ',' << num << ',' << static_cast<int>(held_out) << '\n';
    }
    rows_ += b.inputs.n;
    return out_ ? Status::Ok() : Status::IoError("cannot write '" + path_ + "'");
  }
  Status Close(const std::string&) override {
    out_.close();
    return out_ ? Status::Ok() : Status::IoError("cannot write '" + path_ + "'");
  }
  int64_t rows() const override { return rows_; }

 private:
  std::ofstream out_;
  std::string path_;
  int64_t rows_ = 0;
};

Status WriteLayout(const std::string& path, const std::string& json) {
  std::ofstream f(path, std::ios::trunc);
  f << json << "\n";
  f.close();
  return f ? Status::Ok() : Status::IoError("cannot write '" + path + "'");
}

// Runs the writer's Close, then writes the layout (for every format).
class LayoutOnClose final : public RankRowsWriter {
 public:
  LayoutOnClose(std::unique_ptr<RankRowsWriter> inner, std::string layout_path)
      : inner_(std::move(inner)), layout_path_(std::move(layout_path)) {
    csv_ = inner_->csv();
  }
  Status Append(const rank::RankBatch& b, uint8_t held_out) override { return inner_->Append(b, held_out); }
  Status Close(const std::string& layout_json) override {
    QM_RETURN_IF_ERROR(inner_->Close(layout_json));
    return WriteLayout(layout_path_, layout_json);
  }
  int64_t rows() const override { return inner_->rows(); }

 private:
  std::unique_ptr<RankRowsWriter> inner_;
  std::string layout_path_;
};

}  // namespace

std::string RankRowsWriter::LayoutPath(const std::string& out) {
  return EndsWith(out, ".csv") ? out + ".layout.json" : out + "/layout.json";
}

Result<std::unique_ptr<RankRowsWriter>> RankRowsWriter::Open(const std::string& out, int cat_width, int dense_width) {
  if (out.empty()) return Status::InvalidArgument("--out: empty path");
  std::unique_ptr<RankRowsWriter> w;
  if (EndsWith(out, ".csv")) {
    auto csv = std::make_unique<CsvRowsWriter>(out, cat_width, dense_width);
    if (!csv->ok()) return Status::IoError("--out: cannot write '" + out + "'");
    w = std::move(csv);
  } else {
    std::error_code ec;
    std::filesystem::create_directories(out, ec);
    if (ec) return Status::IoError("--out: cannot create the folder '" + out + "': " + ec.message());
    auto npy = std::make_unique<NpyWriter>(out, cat_width, dense_width);
    Status st = npy->Open();
    if (!st.ok()) return st.Annotate("--out");
    w = std::move(npy);
  }
  return std::unique_ptr<RankRowsWriter>(std::make_unique<LayoutOnClose>(std::move(w), LayoutPath(out)));
}

}  // namespace qm::training
