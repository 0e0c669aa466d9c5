// Gradient-boosted trees behind the Ranker interface (XGBoost's C API; its headers stay here).
// Two boosters, p_click and p_convert, trained on the same rows and weights. A row's features
// are its categorical ids as ordered codes (a tree splits them like an ordinal encoding) followed
// by its dense columns (but u*v, see Columns); the bag (labels, tags) is not used. The file Save writes holds both
// boosters (UBJSON) after a magic line; the sidecar `path`.json names the format and the options.
#include <xgboost/c_api.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>

#include <nlohmann/json.hpp>

#include "qianmian/rank/ranker.h"
#include "train_stats.h"

namespace qm::rank {

namespace {

constexpr char kFormat[] = "qianmian.gbdt/1";
constexpr char kMagic[] = "qianmian-gbdt-1\n";

Status Xgb(int rc, const std::string& what) {
  if (rc == 0) return Status::Ok();
  return Status::Internal(what + ": " + XGBGetLastError());
}

struct DMatrix {
  DMatrixHandle h = nullptr;
  DMatrix() = default;
  DMatrix(const DMatrix&) = delete;
  DMatrix& operator=(const DMatrix&) = delete;
  ~DMatrix() {
    if (h) XGDMatrixFree(h);
  }
};

struct Booster {
  BoosterHandle h = nullptr;
  Booster() = default;
  Booster(const Booster&) = delete;
  Booster& operator=(const Booster&) = delete;
  ~Booster() {
    if (h) XGBoosterFree(h);
  }
};

// The trees' columns: every categorical id (as an ordered code), then the dense columns except
// the two-tower's element-wise product u*v (its dot product u.v stays): 64 rotations of one
// embedding that trees split one at a time, which on the Bank Marketing split only adds noise.
struct Columns {
  int cat = 0, dense_head = 0, dense_tail = 0;  // dense: [0, head) and [head + dim, head + dim + tail)
  int skip = 0;
  explicit Columns(const RankInputBuilder& b)
      : cat(b.cat_width()),
        dense_head(b.dense_width() - b.embedding_dim() - features::kContactFeatures),
        dense_tail(features::kContactFeatures),
        skip(b.embedding_dim()) {}
  int width() const { return cat + dense_head + dense_tail; }
};

// Appends the features of rows [0, in.n) of `in` to `out` (row-major, `cols.width()` each).
void AppendFeatures(const RankInputs& in, const Columns& cols, std::vector<float>* out) {
  size_t at = out->size();
  out->resize(at + static_cast<size_t>(in.n) * cols.width());
  float* o = out->data() + at;
  for (int64_t r = 0; r < in.n; ++r) {
    const int64_t* c = in.cat.data() + r * in.cat_width;
    for (int k = 0; k < in.cat_width; ++k) *o++ = static_cast<float>(c[k]);
    const float* d = in.dense.data() + r * in.dense_width;
    o = std::copy(d, d + cols.dense_head, o);
    o = std::copy(d + cols.dense_head + cols.skip, d + cols.dense_head + cols.skip + cols.dense_tail, o);
  }
}

Status MakeMatrix(const std::vector<float>& x, int64_t rows, int width, DMatrix* out) {
  return Xgb(
      XGDMatrixCreateFromMat(x.data(), static_cast<bst_ulong>(rows), static_cast<bst_ulong>(width), NAN, &out->h),
      "building the trees' input");
}

class GbdtRanker final : public Ranker {
 public:
  GbdtRanker(const RankInputBuilder& b, const RankerOptions& o) : builder_(b), options_(o), cols_(b) {}

  Status Score(const RankInputs& in, float* p_click, float* p_convert) const override {
    if (in.n < 0 || in.cat_width != builder_.cat_width() || in.dense_width != builder_.dense_width() ||
        in.cat.size() != static_cast<size_t>(in.n) * in.cat_width ||
        in.dense.size() != static_cast<size_t>(in.n) * in.dense_width) {
      return Status::InvalidArgument("rank inputs do not match the model's shape");
    }
    if (in.n == 0) return Status::Ok();
    if (!boosters_[0].h) return Status::FailedPrecondition("the trees are not trained");
    std::vector<float> x;
    AppendFeatures(in, cols_, &x);
    DMatrix d;
    QM_RETURN_IF_ERROR(MakeMatrix(x, in.n, width(), &d));
    std::lock_guard<std::mutex> lock(mu_);  // the prediction buffer belongs to the booster
    float* out[2] = {p_click, p_convert};
    for (int k = 0; k < 2; ++k) {
      const bst_ulong* shape = nullptr;
      bst_ulong dim = 0;
      const float* result = nullptr;
      QM_RETURN_IF_ERROR(Xgb(XGBoosterPredictFromDMatrix(boosters_[k].h, d.h, kPredict, &shape, &dim, &result),
                             "scoring with the trees"));
      std::memcpy(out[k], result, sizeof(float) * static_cast<size_t>(in.n));
    }
    return Status::Ok();
  }

  // One pass over the rows (the trees see them all at once), then `trees` boosting rounds per head.
  Status Train(const std::function<bool(RankBatch*)>& next, const std::function<void()>&,
               const std::function<void(int64_t)>& on_batch, RankTrainStats* stats) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto t0 = std::chrono::steady_clock::now();
    std::vector<float> x, click, convert, weight;
    RankBatch batch;
    int64_t rows = 0;
    while (next(&batch)) {
      AppendFeatures(batch.inputs, cols_, &x);
      click.insert(click.end(), batch.click.begin(), batch.click.end());
      convert.insert(convert.end(), batch.convert.begin(), batch.convert.end());
      weight.insert(weight.end(), batch.weight.begin(), batch.weight.end());
      rows += batch.inputs.n;
      if (on_batch) on_batch(batch.inputs.n);
    }
    if (rows == 0) return Status::InvalidArgument("no training rows for the ranker");
    DMatrix d;
    QM_RETURN_IF_ERROR(MakeMatrix(x, rows, width(), &d));
    x.clear();
    x.shrink_to_fit();
    QM_RETURN_IF_ERROR(Xgb(XGDMatrixSetFloatInfo(d.h, "weight", weight.data(), rows), "setting the row weights"));
    const std::vector<float>* labels[2] = {&click, &convert};
    for (int k = 0; k < 2; ++k) {
      QM_RETURN_IF_ERROR(Xgb(XGDMatrixSetFloatInfo(d.h, "label", labels[k]->data(), rows), "setting the labels"));
      Booster b;
      QM_RETURN_IF_ERROR(Xgb(XGBoosterCreate(&d.h, 1, &b.h), "creating the trees"));
      QM_RETURN_IF_ERROR(SetTrainingParams(b.h, /*threads=*/options_.gbdt.threads));
      for (int it = 0; it < options_.gbdt.trees; ++it) {
        QM_RETURN_IF_ERROR(Xgb(XGBoosterUpdateOneIter(b.h, it, d.h), "boosting"));
      }
      QM_RETURN_IF_ERROR(Xgb(XGBoosterSetParam(b.h, "nthread", "1"), "setting the scoring threads"));
      std::swap(boosters_[k].h, b.h);
    }
    FillTrainStats(rows, t0, stats);
    return Status::Ok();
  }

  Status Save(const std::string& path) const override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!boosters_[0].h) return Status::FailedPrecondition("the trees are not trained");
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(kMagic, sizeof(kMagic) - 1);
    for (const Booster& b : boosters_) {
      bst_ulong len = 0;
      const char* buf = nullptr;
      QM_RETURN_IF_ERROR(Xgb(XGBoosterSaveModelToBuffer(b.h, R"({"format": "ubj"})", &len, &buf), "saving the trees"));
      const uint64_t n = len;
      out.write(reinterpret_cast<const char*>(&n), sizeof(n));
      out.write(buf, static_cast<std::streamsize>(len));
    }
    out.close();
    if (!out) return Status::IoError("writing '" + path + "' failed");
    const auto& g = options_.gbdt;
    nlohmann::json meta = {{"format", kFormat},
                           {"trees", g.trees},
                           {"depth", g.depth},
                           {"learning_rate", g.learning_rate},
                           {"min_child_weight", g.min_child_weight},
                           {"features", width()}};
    std::ofstream side(path + ".json", std::ios::trunc);
    side << meta.dump(2);
    side.close();
    if (!side) return Status::IoError("writing '" + path + ".json' failed");
    return Status::Ok();
  }

  Status Load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::NotFound("'" + path + "' is missing");
    std::string magic(sizeof(kMagic) - 1, '\0');
    in.read(magic.data(), static_cast<std::streamsize>(magic.size()));
    if (!in || magic != kMagic) return Status::Corruption("'" + path + "' is not a qianmian trees file");
    for (Booster& b : boosters_) {
      uint64_t n = 0;
      in.read(reinterpret_cast<char*>(&n), sizeof(n));
      if (!in || n > (uint64_t{1} << 34)) return Status::Corruption("'" + path + "' is truncated");
      std::string buf(n, '\0');
      in.read(buf.data(), static_cast<std::streamsize>(n));
      if (!in) return Status::Corruption("'" + path + "' is truncated");
      QM_RETURN_IF_ERROR(Xgb(XGBoosterCreate(nullptr, 0, &b.h), "creating the trees"));
      Status st = Xgb(XGBoosterLoadModelFromBuffer(b.h, buf.data(), n), "loading '" + path + "'");
      if (!st.ok()) return Status::Corruption(st.message());
      QM_RETURN_IF_ERROR(Xgb(XGBoosterSetParam(b.h, "nthread", "1"), "setting the scoring threads"));
    }
    return Status::Ok();
  }

  std::string kind() const override { return "gbdt"; }

 private:
  static constexpr char kPredict[] =
      R"({"type": 0, "training": false, "iteration_begin": 0, "iteration_end": 0, "strict_shape": false})";

  int width() const { return cols_.width(); }

  Status SetTrainingParams(BoosterHandle h, int threads) const {
    const auto& g = options_.gbdt;
    const std::pair<const char*, std::string> params[] = {
        {"objective", "binary:logistic"},
        {"tree_method", "hist"},
        {"max_depth", std::to_string(g.depth)},
        {"eta", std::to_string(g.learning_rate)},
        {"min_child_weight", std::to_string(g.min_child_weight)},
        {"seed", std::to_string(options_.seed % 2147483647)},
        {"nthread", std::to_string(threads)},
        {"verbosity", "0"},
    };
    for (const auto& [k, v] : params)
      QM_RETURN_IF_ERROR(Xgb(XGBoosterSetParam(h, k, v.c_str()), "setting " + std::string(k)));
    return Status::Ok();
  }

  const RankInputBuilder& builder_;
  RankerOptions options_;
  Columns cols_;
  Booster boosters_[2];    // p_click, p_convert
  mutable std::mutex mu_;  // serialises training, saving and the boosters' prediction buffers
};

}  // namespace

Result<std::unique_ptr<Ranker>> CreateGbdtRanker(const RankInputBuilder& builder, const RankerOptions& o) {
  const auto& g = o.gbdt;
  if (g.trees < 1 || g.depth < 1 || g.depth > 16 || !(g.learning_rate > 0 && g.learning_rate <= 1) ||
      !(g.min_child_weight >= 0) || g.threads < 0) {
    return Status::InvalidArgument(
        "gbdt options: trees >= 1, depth in [1, 16], learning_rate in (0, 1], min_child_weight >= 0, threads >= 0");
  }
  return std::unique_ptr<Ranker>(std::make_unique<GbdtRanker>(builder, o));
}

Result<std::unique_ptr<Ranker>> LoadGbdtRanker(const std::string& path, const RankInputBuilder& builder) {
  RankerOptions o;
  o.kind = RankerKind::kGbdt;
  try {
    std::ifstream side(path + ".json");
    auto j = nlohmann::json::parse(side);
    if (j.at("format") != kFormat) return Status::Corruption("'" + path + ".json': unknown format");
    if (j.at("features") != Columns(builder).width())
      return Status::Corruption("'" + path + "': the trees' features do not match rank_inputs");
    o.gbdt.trees = j.at("trees");
    o.gbdt.depth = j.at("depth");
    o.gbdt.learning_rate = j.at("learning_rate");
    o.gbdt.min_child_weight = j.at("min_child_weight");
  } catch (const std::exception& e) {
    return Status::Corruption("'" + path + ".json': " + e.what());
  }
  auto r = std::make_unique<GbdtRanker>(builder, o);
  QM_RETURN_IF_ERROR(r->Load(path));
  return std::unique_ptr<Ranker>(std::move(r));
}

}  // namespace qm::rank
