#include "qianmian/training/baselines.h"

#include <Eigen/Cholesky>
#include <Eigen/Dense>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <thread>

#include "qianmian/core/dataset.h"

namespace qm::training {

using metrics::EvalTargets;
using metrics::IndexLists;
using metrics::IndexSpan;
using metrics::kNoIndex;
using metrics::RankingMetrics;

namespace {

constexpr float kPadScore = -std::numeric_limits<float>::infinity();

int ResolveThreads(int threads) {
  if (threads > 0) return threads;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

// Runs fn(begin, end, worker) over [0, n) in chunks pulled by `workers` threads
// (worker in [0, workers)); runs inline when one worker suffices.
template <typename Fn>
void ParallelChunks(size_t n, int workers, size_t chunk, Fn fn) {
  if (n == 0) return;
  chunk = std::max<size_t>(chunk, 1);
  const size_t chunks = (n + chunk - 1) / chunk;
  const int used = static_cast<int>(std::min<size_t>(static_cast<size_t>(std::max(workers, 1)), chunks));
  std::atomic<size_t> next{0};
  auto run = [&](int worker) {
    for (;;) {
      const size_t c = next.fetch_add(1);
      if (c >= chunks) return;
      const size_t begin = c * chunk;
      fn(begin, std::min(n, begin + chunk), worker);
    }
  };
  if (used <= 1) {
    run(0);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(used - 1));
  for (int w = 1; w < used; ++w) pool.emplace_back(run, w);
  run(0);
  for (auto& t : pool) t.join();
}

Status CheckAllowed(const CandidateOptions& options, uint32_t num_items) {
  if (!options.allowed_items.empty() && options.allowed_items.size() != num_items) {
    return Status::InvalidArgument("allowed_items has " + std::to_string(options.allowed_items.size()) +
                                   " entries for " + std::to_string(num_items) + " items");
  }
  return Status::Ok();
}

Status CheckRecommendArgs(size_t n, int k, const IndexLists* exclude) {
  if (k < 1) return Status::InvalidArgument("k must be >= 1, got " + std::to_string(k));
  if (exclude != nullptr && exclude->size() != n) {
    return Status::InvalidArgument("exclude has " + std::to_string(exclude->size()) + " lists for " +
                                   std::to_string(n) + " customers");
  }
  return Status::Ok();
}

// Popularity rank of each item: 0 = most positives; ties by index.
std::vector<uint32_t> PopularityRank(const Interactions& data) {
  std::vector<uint32_t> order(data.num_items);
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return data.item_positives[a] > data.item_positives[b]; });
  std::vector<uint32_t> rank(data.num_items);
  for (uint32_t r = 0; r < data.num_items; ++r) rank[order[r]] = r;
  return rank;
}

// A recommender that scores every item densely for one customer, then selects the top k.
class DenseRecommender : public Recommender {
 public:
  DenseRecommender(const Interactions& data, const CandidateOptions& options)
      : num_items_(data.num_items),
        history_(data.items),
        allowed_(options.allowed_items),
        threads_(ResolveThreads(options.threads)),
        pop_rank_(PopularityRank(data)) {}

  uint32_t num_items() const override { return num_items_; }

  Status Recommend(const uint32_t* customers, size_t n, int k, const IndexLists* exclude, uint32_t* items,
                   float* scores) const override {
    QM_RETURN_IF_ERROR(CheckRecommendArgs(n, k, exclude));
    struct Scratch {
      std::vector<float> score;
      std::vector<uint8_t> blocked;
      std::vector<uint32_t> candidates;
    };
    std::vector<Scratch> scratch(static_cast<size_t>(threads_));
    ParallelChunks(n, threads_, 16, [&](size_t begin, size_t end, int worker) {
      Scratch& s = scratch[static_cast<size_t>(worker)];
      if (s.score.size() != num_items_) {
        s.score.assign(num_items_, 0.0f);
        s.blocked.assign(num_items_, 0);
      }
      for (size_t r = begin; r < end; ++r) {
        std::fill(s.score.begin(), s.score.end(), 0.0f);
        const uint32_t customer = customers[r];
        if (customer < history_.size()) Score(history_[customer], s.score.data());
        IndexSpan ex = exclude != nullptr ? (*exclude)[r] : IndexSpan();
        for (uint32_t item : ex) {
          if (item < num_items_) s.blocked[item] = 1;
        }
        s.candidates.clear();
        for (uint32_t i = 0; i < num_items_; ++i) {
          if (s.blocked[i] || (!allowed_.empty() && !allowed_[i])) continue;
          s.candidates.push_back(i);
        }
        for (uint32_t item : ex) {
          if (item < num_items_) s.blocked[item] = 0;
        }
        const float* sc = s.score.data();
        auto better = [&](uint32_t a, uint32_t b) {
          if (sc[a] != sc[b]) return sc[a] > sc[b];
          return pop_rank_[a] < pop_rank_[b];
        };
        const size_t take = std::min(s.candidates.size(), static_cast<size_t>(k));
        if (take < s.candidates.size()) {
          std::nth_element(s.candidates.begin(), s.candidates.begin() + take, s.candidates.end(), better);
        }
        std::sort(s.candidates.begin(), s.candidates.begin() + take, better);
        uint32_t* row = items + r * static_cast<size_t>(k);
        float* row_scores = scores != nullptr ? scores + r * static_cast<size_t>(k) : nullptr;
        for (size_t p = 0; p < static_cast<size_t>(k); ++p) {
          const bool filled = p < take;
          row[p] = filled ? s.candidates[p] : kNoIndex;
          if (row_scores != nullptr) row_scores[p] = filled ? sc[s.candidates[p]] : kPadScore;
        }
      }
    });
    return Status::Ok();
  }

 protected:
  // Adds the customer's scores (history = the items of their training positives) into score.
  virtual void Score(IndexSpan history, float* score) const = 0;

  uint32_t num_items_;

 private:
  IndexLists history_;
  std::vector<uint8_t> allowed_;
  int threads_;
  std::vector<uint32_t> pop_rank_;
};

// ---- Popularity ----

class PopularityRecommender : public Recommender {
 public:
  PopularityRecommender(const Interactions& data, const PopularityOptions& options) : num_items_(data.num_items) {
    std::vector<uint32_t> rank = PopularityRank(data);
    order_.assign(num_items_, 0);
    for (uint32_t i = 0; i < num_items_; ++i) order_[rank[i]] = i;
    if (!options.allowed_items.empty()) {
      order_.erase(std::remove_if(order_.begin(), order_.end(), [&](uint32_t i) { return !options.allowed_items[i]; }),
                   order_.end());
    }
    count_.resize(num_items_);
    for (uint32_t i = 0; i < num_items_; ++i) count_[i] = static_cast<float>(data.item_positives[i]);
  }

  const char* name() const override { return "popularity"; }
  uint32_t num_items() const override { return num_items_; }

  Status Recommend(const uint32_t* customers, size_t n, int k, const IndexLists* exclude, uint32_t* items,
                   float* scores) const override {
    QM_RETURN_IF_ERROR(CheckRecommendArgs(n, k, exclude));
    std::vector<uint32_t> ex;
    for (size_t r = 0; r < n; ++r) {
      ex.clear();
      if (exclude != nullptr) {
        IndexSpan e = (*exclude)[r];
        ex.assign(e.begin(), e.end());
        std::sort(ex.begin(), ex.end());
      }
      uint32_t* row = items + r * static_cast<size_t>(k);
      float* row_scores = scores != nullptr ? scores + r * static_cast<size_t>(k) : nullptr;
      size_t p = 0;
      for (size_t o = 0; o < order_.size() && p < static_cast<size_t>(k); ++o) {
        const uint32_t item = order_[o];
        if (!ex.empty() && std::binary_search(ex.begin(), ex.end(), item)) continue;
        row[p] = item;
        if (row_scores != nullptr) row_scores[p] = count_[item];
        ++p;
      }
      for (; p < static_cast<size_t>(k); ++p) {
        row[p] = kNoIndex;
        if (row_scores != nullptr) row_scores[p] = kPadScore;
      }
    }
    return Status::Ok();
  }

 private:
  uint32_t num_items_;
  std::vector<uint32_t> order_;  // allowed items, most popular first
  std::vector<float> count_;
};

// ---- Item-kNN ----

class ItemKnnRecommender : public DenseRecommender {
 public:
  ItemKnnRecommender(const Interactions& data, const ItemKnnOptions& options, ItemNeighbours nb)
      : DenseRecommender(data, options), nb_(std::move(nb)) {}
  const char* name() const override { return "item_knn"; }

 protected:
  void Score(IndexSpan history, float* score) const override {
    for (uint32_t j : history) {
      if (j >= nb_.neighbours.size()) continue;
      const uint64_t begin = nb_.neighbours.offsets[j], end = nb_.neighbours.offsets[j + 1];
      for (uint64_t o = begin; o < end; ++o) score[nb_.neighbours.ids[o]] += nb_.similarity[o];
    }
  }

 private:
  ItemNeighbours nb_;
};

// ---- EASE ----

// B over the items with positives ("active"), stored transposed so that column a of bt is
// row a of B: what active item a in a history adds to every active item's score.
struct EaseModel {
  std::vector<uint32_t> active;   // active position -> item
  std::vector<int32_t> position;  // item -> active position, -1 when inactive
  Eigen::MatrixXf bt;             // m x m, column-major
};

template <typename T>
Status SolveEase(const Interactions& data, double lambda, EaseModel* model) {
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  const Eigen::Index m = static_cast<Eigen::Index>(model->active.size());
  Mat p;
  {
    Mat g = Mat::Zero(m, m);
    std::vector<int32_t> row;
    for (size_t c = 0; c < data.items.size(); ++c) {
      row.clear();
      for (uint32_t item : data.items[c]) row.push_back(model->position[item]);
      for (int32_t a : row) {
        for (int32_t b : row) g(a, b) += T(1);
      }
    }
    g.diagonal().array() += static_cast<T>(lambda);
    Eigen::LLT<Eigen::Ref<Mat>> llt(g);  // factorises g in place
    if (llt.info() != Eigen::Success) {
      return Status::FailedPrecondition("EASE: XᵀX + λI is singular (λ = " + std::to_string(lambda) +
                                        "); use a larger lambda");
    }
    p = llt.solve(Mat::Identity(m, m));
  }
  // Bᵀ(i, j) = B(j, i) = -P(j, i) / P(i, i) = -P(i, j) / P(i, i) (P is symmetric); diag 0.
  for (Eigen::Index i = 0; i < m; ++i) {
    if (!(p(i, i) > T(0)) || !std::isfinite(static_cast<double>(p(i, i)))) {
      return Status::FailedPrecondition(
          "EASE: the inverse is not positive definite; use a "
          "larger lambda");
    }
  }
  const Eigen::Matrix<T, Eigen::Dynamic, 1> inv_diag = p.diagonal().cwiseInverse();
  for (Eigen::Index j = 0; j < m; ++j) p.col(j).array() *= -inv_diag.array();
  p.diagonal().setZero();
  if constexpr (std::is_same_v<T, float>) {
    model->bt = std::move(p);
  } else {
    model->bt = p.template cast<float>();
  }
  return Status::Ok();
}

Result<EaseModel> BuildEase(const Interactions& data, const EaseOptions& options) {
  if (!(options.lambda >= 0.0) || !std::isfinite(options.lambda)) {
    return Status::InvalidArgument("EASE lambda must be a finite number >= 0");
  }
  EaseModel model;
  model.position.assign(data.num_items, -1);
  std::vector<uint8_t> has(data.num_items, 0);
  for (uint32_t item : data.items.ids) has[item] = 1;
  for (uint32_t i = 0; i < data.num_items; ++i) {
    if (!has[i]) continue;
    model.position[i] = static_cast<int32_t>(model.active.size());
    model.active.push_back(i);
  }
  const int64_t m = static_cast<int64_t>(model.active.size());
  if (m > options.max_items) {
    const double gb = 2.0 * static_cast<double>(m) * static_cast<double>(m) * 4.0 / 1e9;
    return Status::ResourceExhausted(
        "EASE needs two dense " + std::to_string(m) + " x " + std::to_string(m) + " matrices (~" +
        std::to_string(static_cast<int>(gb + 0.5)) + " GB): " + std::to_string(m) +
        " items with positives exceed EaseOptions::max_items = " + std::to_string(options.max_items) +
        "; use item-kNN or a smaller catalogue");
  }
  if (m == 0) return model;
  constexpr int64_t kDoubleUpTo = 6000;
  if (m <= kDoubleUpTo) {
    QM_RETURN_IF_ERROR(SolveEase<double>(data, options.lambda, &model));
  } else {
    QM_RETURN_IF_ERROR(SolveEase<float>(data, options.lambda, &model));
  }
  return model;
}

class EaseRecommender : public DenseRecommender {
 public:
  EaseRecommender(const Interactions& data, const EaseOptions& options, EaseModel model)
      : DenseRecommender(data, options), model_(std::move(model)) {}
  const char* name() const override { return "ease"; }

 protected:
  void Score(IndexSpan history, float* score) const override {
    const Eigen::Index m = model_.bt.rows();
    if (m == 0) return;
    Eigen::VectorXf acc = Eigen::VectorXf::Zero(m);
    bool any = false;
    for (uint32_t item : history) {
      if (item >= model_.position.size() || model_.position[item] < 0) continue;
      acc += model_.bt.col(model_.position[item]);
      any = true;
    }
    if (!any) return;
    for (Eigen::Index a = 0; a < m; ++a) score[model_.active[static_cast<size_t>(a)]] += acc[a];
  }

 private:
  EaseModel model_;
};

}  // namespace

// ---- Interactions ----

Result<Interactions> BuildInteractions(const EventLog& events, const Split* split, uint32_t num_customers,
                                       uint32_t num_items, const InteractionOptions& options) {
  if (split != nullptr && split->held_out.size() != events.size()) {
    return Status::InvalidArgument("split has " + std::to_string(split->held_out.size()) + " entries for " +
                                   std::to_string(events.size()) + " events");
  }
  Interactions out;
  out.num_customers = num_customers;
  out.num_items = num_items;
  out.item_positives.assign(num_items, 0);
  auto counted = [&](size_t e) {
    if (!IsPositive(events.type[e])) return false;
    if (split != nullptr && split->held_out[e]) return false;
    if (options.channel && events.channel[e] != *options.channel) return false;
    return true;
  };
  std::vector<uint64_t> per_customer(static_cast<size_t>(num_customers) + 1, 0);
  for (size_t e = 0; e < events.size(); ++e) {
    if (!counted(e)) continue;
    if (events.customer[e] >= num_customers || events.item[e] >= num_items) {
      return Status::InvalidArgument("event " + std::to_string(e) + " has customer " +
                                     std::to_string(events.customer[e]) + " / item " + std::to_string(events.item[e]) +
                                     " outside " + std::to_string(num_customers) + " customers x " +
                                     std::to_string(num_items) + " items");
    }
    ++per_customer[events.customer[e] + 1];
    ++out.item_positives[events.item[e]];
    ++out.num_positives;
  }
  for (size_t c = 0; c < num_customers; ++c) per_customer[c + 1] += per_customer[c];
  std::vector<uint32_t> flat(per_customer[num_customers]);
  std::vector<uint64_t> fill(per_customer.begin(), per_customer.end() - 1);
  for (size_t e = 0; e < events.size(); ++e) {
    if (counted(e)) flat[fill[events.customer[e]]++] = events.item[e];
  }
  out.items.offsets.reserve(static_cast<size_t>(num_customers) + 1);
  out.items.ids.reserve(flat.size());
  for (size_t c = 0; c < num_customers; ++c) {
    auto begin = flat.begin() + static_cast<std::ptrdiff_t>(per_customer[c]);
    auto end = flat.begin() + static_cast<std::ptrdiff_t>(per_customer[c + 1]);
    std::sort(begin, end);
    end = std::unique(begin, end);
    out.items.ids.insert(out.items.ids.end(), begin, end);
    out.items.offsets.push_back(out.items.ids.size());
  }
  return out;
}

std::vector<uint8_t> ItemsOfKind(const Dataset& data, ItemKind kind) {
  std::vector<uint8_t> mask(data.items.size(), 0);
  for (size_t i = 0; i < data.items.size(); ++i) mask[i] = data.items[i].kind == kind ? 1 : 0;
  return mask;
}

// ---- Fitting ----

Result<std::unique_ptr<Recommender>> FitPopularity(const Interactions& data, const PopularityOptions& options) {
  QM_RETURN_IF_ERROR(CheckAllowed(options, data.num_items));
  return std::unique_ptr<Recommender>(new PopularityRecommender(data, options));
}

Result<ItemNeighbours> ComputeItemNeighbours(const Interactions& data, int neighbours, int threads) {
  if (neighbours < 1) {
    return Status::InvalidArgument("item-kNN neighbours must be >= 1, got " + std::to_string(neighbours));
  }
  const uint32_t n_items = data.num_items;
  // Columns: the customers of each item (transpose of data.items).
  std::vector<uint64_t> col_offsets(static_cast<size_t>(n_items) + 1, 0);
  for (uint32_t item : data.items.ids) ++col_offsets[item + 1];
  for (uint32_t i = 0; i < n_items; ++i) col_offsets[i + 1] += col_offsets[i];
  std::vector<uint32_t> col_customers(data.items.ids.size());
  {
    std::vector<uint64_t> fill(col_offsets.begin(), col_offsets.end() - 1);
    for (size_t c = 0; c < data.items.size(); ++c) {
      for (uint32_t item : data.items[c]) col_customers[fill[item]++] = static_cast<uint32_t>(c);
    }
  }
  auto column_size = [&](uint32_t i) { return static_cast<double>(col_offsets[i + 1] - col_offsets[i]); };

  const int workers = ResolveThreads(threads);
  struct Scratch {
    std::vector<uint32_t> co;
    std::vector<uint32_t> touched;
    std::vector<std::pair<float, uint32_t>> sims;
  };
  std::vector<Scratch> scratch(static_cast<size_t>(workers));
  std::vector<std::vector<std::pair<float, uint32_t>>> kept(n_items);
  ParallelChunks(n_items, workers, 32, [&](size_t begin, size_t end, int worker) {
    Scratch& s = scratch[static_cast<size_t>(worker)];
    if (s.co.size() != n_items) s.co.assign(n_items, 0);
    for (size_t jj = begin; jj < end; ++jj) {
      const uint32_t j = static_cast<uint32_t>(jj);
      s.touched.clear();
      for (uint64_t o = col_offsets[j]; o < col_offsets[j + 1]; ++o) {
        for (uint32_t i : data.items[col_customers[o]]) {
          if (i == j) continue;
          if (s.co[i]++ == 0) s.touched.push_back(i);
        }
      }
      s.sims.clear();
      const double nj = column_size(j);
      for (uint32_t i : s.touched) {
        const double sim = static_cast<double>(s.co[i]) / std::sqrt(nj * column_size(i));
        s.sims.emplace_back(static_cast<float>(sim), i);
        s.co[i] = 0;
      }
      auto better = [](const std::pair<float, uint32_t>& a, const std::pair<float, uint32_t>& b) {
        if (a.first != b.first) return a.first > b.first;
        return a.second < b.second;
      };
      const size_t take = std::min(s.sims.size(), static_cast<size_t>(neighbours));
      if (take < s.sims.size()) {
        std::nth_element(s.sims.begin(), s.sims.begin() + take, s.sims.end(), better);
      }
      std::sort(s.sims.begin(), s.sims.begin() + take, better);
      kept[j].assign(s.sims.begin(), s.sims.begin() + take);
    }
  });
  ItemNeighbours out;
  for (uint32_t j = 0; j < n_items; ++j) {
    for (const auto& [sim, i] : kept[j]) {
      out.neighbours.ids.push_back(i);
      out.similarity.push_back(sim);
    }
    out.neighbours.offsets.push_back(out.neighbours.ids.size());
    std::vector<std::pair<float, uint32_t>>().swap(kept[j]);
  }
  return out;
}

Result<std::unique_ptr<Recommender>> FitItemKnn(const Interactions& data, const ItemKnnOptions& options) {
  QM_RETURN_IF_ERROR(CheckAllowed(options, data.num_items));
  QM_ASSIGN_OR_RETURN(ItemNeighbours nb, ComputeItemNeighbours(data, options.neighbours, options.threads));
  return std::unique_ptr<Recommender>(new ItemKnnRecommender(data, options, std::move(nb)));
}

Result<std::vector<float>> ComputeEaseWeights(const Interactions& data, const EaseOptions& options) {
  QM_ASSIGN_OR_RETURN(EaseModel model, BuildEase(data, options));
  const size_t n = data.num_items;
  std::vector<float> b(n * n, 0.0f);
  const size_t m = model.active.size();
  for (size_t a = 0; a < m; ++a) {  // row item active[a] of B = column a of Bᵀ
    for (size_t c = 0; c < m; ++c) {
      b[static_cast<size_t>(model.active[a]) * n + model.active[c]] =
          model.bt(static_cast<Eigen::Index>(c), static_cast<Eigen::Index>(a));
    }
  }
  return b;
}

Result<std::unique_ptr<Recommender>> FitEase(const Interactions& data, const EaseOptions& options) {
  QM_RETURN_IF_ERROR(CheckAllowed(options, data.num_items));
  QM_ASSIGN_OR_RETURN(EaseModel model, BuildEase(data, options));
  return std::unique_ptr<Recommender>(new EaseRecommender(data, options, std::move(model)));
}

// ---- Evaluation ----

Result<RankingEvaluation> EvaluateRecommender(const Recommender& recommender, const EvalTargets& targets,
                                              std::vector<int> ks) {
  if (ks.empty()) return Status::InvalidArgument("no K to evaluate at");
  int max_k = 0;
  for (int k : ks) {
    if (k < 1) return Status::InvalidArgument("every K must be >= 1, got " + std::to_string(k));
    max_k = std::max(max_k, k);
  }
  if (targets.targets.size() != targets.size() || targets.seen.size() != targets.size()) {
    return Status::InvalidArgument("EvalTargets lists do not match its customers");
  }
  RankingEvaluation out{RankingMetrics(ks), {}};
  const uint32_t n_items = recommender.num_items();
  // Best (lowest) position at which each item was shown to anybody.
  std::vector<int> best_position(n_items, std::numeric_limits<int>::max());
  constexpr size_t kChunk = 2048;
  std::vector<uint32_t> rows;
  IndexLists exclude;
  for (size_t begin = 0; begin < targets.size(); begin += kChunk) {
    const size_t n = std::min(kChunk, targets.size() - begin);
    exclude.Clear();
    for (size_t i = 0; i < n; ++i) exclude.Append(targets.seen[begin + i]);
    rows.assign(n * static_cast<size_t>(max_k), kNoIndex);
    QM_RETURN_IF_ERROR(
        recommender.Recommend(targets.customers.data() + begin, n, max_k, &exclude, rows.data(), nullptr));
    out.ranking.AddBatch(rows.data(), n, max_k, targets.targets, begin);
    for (size_t i = 0; i < n; ++i) {
      for (int p = 0; p < max_k; ++p) {
        const uint32_t item = rows[i * static_cast<size_t>(max_k) + static_cast<size_t>(p)];
        if (item < n_items) best_position[item] = std::min(best_position[item], p);
      }
    }
  }
  for (int k : ks) {
    size_t shown = 0;
    for (int pos : best_position) shown += pos < k ? 1 : 0;
    out.coverage.push_back(n_items > 0 ? static_cast<double>(shown) / n_items : 0.0);
  }
  return out;
}

}  // namespace qm::training
