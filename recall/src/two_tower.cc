#include "qianmian/recall/two_tower.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <mutex>
#include <numeric>
#include <random>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "qianmian/torchutil/torchutil.h"

#include "customer_tower_inference.h"

#include "qianmian/core/blas_threads.h"
#include "qianmian/core/prefetch.h"

namespace qm::recall {

namespace nn = torch::nn;
using features::CustomerBatch;
using features::FeatureSpace;
using features::ItemBatch;

void SetTorchThreads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);
}

void OneThreadPerCaller() {
  SetTorchThreads(1);
  SetBlasThreads(1);
}

namespace {

torch::Tensor I64(const std::vector<int64_t>& v) {
  return torch::from_blob(const_cast<int64_t*>(v.data()), {static_cast<int64_t>(v.size())}, torch::kInt64);
}

struct TwoTowerNetImpl : nn::Module {
  TwoTowerNetImpl(const FeatureSpace& s, const TwoTowerOptions& o) : opt(o) {
    F = s.customer_cat_fields();
    D = s.customer_dense();
    H = s.history_length();
    cust_cat = register_module("cust_cat",
                               nn::Embedding(nn::EmbeddingOptions(s.customer_cat_vocab(), o.field_dim).sparse(true)));
    labels = register_module(
        "labels",
        nn::EmbeddingBag(nn::EmbeddingBagOptions(s.label_vocab(), o.field_dim).mode(torch::kMean).sparse(true)));
    item_id = register_module(
        "item_id", nn::Embedding(nn::EmbeddingOptions(s.item_vocab(), o.id_dim).padding_idx(0).sparse(true)));
    item_cat =
        register_module("item_cat", nn::Embedding(nn::EmbeddingOptions(s.item_cat_vocab(), o.field_dim).sparse(true)));
    tags = register_module(
        "tags", nn::EmbeddingBag(nn::EmbeddingBagOptions(s.tag_vocab(), o.field_dim).mode(torch::kMean).sparse(true)));
    text = register_module(
        "text", nn::EmbeddingBag(nn::EmbeddingBagOptions(s.text_vocab(), o.text_dim).mode(torch::kMean).sparse(true)));
    const int64_t cust_in = F * o.field_dim + D + o.field_dim + o.id_dim;
    const int64_t item_in = o.id_dim + (FeatureSpace::kItemCatFields - 1) * o.field_dim + o.field_dim + o.text_dim;
    cust_mlp = register_module(
        "cust_mlp", nn::Sequential(nn::Linear(cust_in, o.hidden), nn::ReLU(), nn::Linear(o.hidden, o.embedding_dim)));
    item_mlp = register_module(
        "item_mlp", nn::Sequential(nn::Linear(item_in, o.hidden), nn::ReLU(), nn::Linear(o.hidden, o.embedding_dim)));
    for (auto* e : {&cust_cat, &item_cat}) nn::init::normal_((*e)->weight, 0.0, 0.05);
    nn::init::normal_(item_id->weight, 0.0, 0.05);
    {
      torch::NoGradGuard g;
      item_id->weight[0].zero_();
    }
    for (auto* b : {&labels, &tags, &text}) nn::init::normal_((*b)->weight, 0.0, 0.05);
  }

  torch::Tensor Customer(const CustomerBatch& b) {
    const int64_t n = b.n;
    auto cat = cust_cat(I64(b.cat).view({n, F})).view({n, F * opt.field_dim});
    auto dense = torch::from_blob(const_cast<float*>(b.dense.data()), {n, D}, torch::kFloat32);
    auto lab = labels(I64(b.labels), I64(b.label_offsets));
    auto hist_ids = I64(b.history).view({n, H});
    auto hist = item_id(hist_ids).sum(1);
    auto count = (hist_ids > 0).sum(1, /*keepdim=*/true).clamp_min(1).to(torch::kFloat32);
    hist = hist / count;
    auto x = torch::cat({cat, dense, lab, hist}, 1);
    return torch::nn::functional::normalize(cust_mlp->forward(x), torch::nn::functional::NormalizeFuncOptions().dim(1));
  }

  torch::Tensor Item(const ItemBatch& b, const torch::Tensor& ids_override = {}) {
    const int64_t n = b.n;
    const int C = FeatureSpace::kItemCatFields;
    auto cat = I64(b.cat).view({n, C});
    auto ids = ids_override.defined() ? ids_override : cat.select(1, 0);
    auto id_e = item_id(ids);
    auto rest = item_cat(cat.slice(1, 1, C)).view({n, (C - 1) * opt.field_dim});
    auto tg = tags(I64(b.tags), I64(b.tag_offsets));
    auto tx = text(I64(b.text), I64(b.text_offsets));
    auto x = torch::cat({id_e, rest, tg, tx}, 1);
    return torch::nn::functional::normalize(item_mlp->forward(x), torch::nn::functional::NormalizeFuncOptions().dim(1));
  }

  // The customer tower's weights for CustomerTowerInference (EncodeCustomers' path).
  CustomerTowerWeights ExportCustomer() {
    torch::NoGradGuard g;
    CustomerTowerWeights w;
    w.F = static_cast<int>(F);
    w.D = static_cast<int>(D);
    w.H = static_cast<int>(H);
    w.fd = opt.field_dim;
    w.id_dim = opt.id_dim;
    w.hidden = opt.hidden;
    w.out = opt.embedding_dim;
    w.cust_cat = torchutil::FloatsOf(cust_cat->weight);
    w.labels = torchutil::FloatsOf(labels->weight);
    w.item_id = torchutil::FloatsOf(item_id->weight);
    auto* l1 = cust_mlp->ptr(0)->as<nn::LinearImpl>();
    auto* l2 = cust_mlp->ptr(2)->as<nn::LinearImpl>();
    w.w1 = torchutil::FloatsOf(l1->weight);
    w.b1 = torchutil::FloatsOf(l1->bias);
    w.w2 = torchutil::FloatsOf(l2->weight);
    w.b2 = torchutil::FloatsOf(l2->bias);
    return w;
  }

  // Embedding tables (sparse gradients) and the dense layers, optimised separately.
  std::vector<torch::Tensor> SparseParameters() {
    return {cust_cat->weight, labels->weight, item_id->weight, item_cat->weight, tags->weight, text->weight};
  }
  std::vector<torch::Tensor> DenseParameters() {
    auto a = cust_mlp->parameters();
    auto b = item_mlp->parameters();
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }

  TwoTowerOptions opt;
  int64_t F = 0, D = 0, H = 0;
  nn::Embedding cust_cat{nullptr}, item_id{nullptr}, item_cat{nullptr};
  nn::EmbeddingBag labels{nullptr}, tags{nullptr}, text{nullptr};
  nn::Sequential cust_mlp{nullptr}, item_mlp{nullptr};
};
TORCH_MODULE(TwoTowerNet);

class TorchTwoTower final : public TwoTowerModel {
 public:
  TorchTwoTower(const FeatureSpace& space, const TwoTowerOptions& o) : space_(space), options_(o), net_(space, o) {
    net_->eval();
    Prepare();
  }

  Status Save(const std::string& path) const override {
    std::lock_guard<std::mutex> lock(mu_);
    return torchutil::SaveWithSidecar([&](const std::string& p) { torch::save(net_, p); }, path,
                                      {{"format", "qianmian.two_tower/1"},
                                       {"embedding_dim", options_.embedding_dim},
                                       {"field_dim", options_.field_dim},
                                       {"id_dim", options_.id_dim},
                                       {"text_dim", options_.text_dim},
                                       {"hidden", options_.hidden},
                                       {"temperature", options_.temperature}},
                                      "two-tower model");
  }

  Status LoadWeights(const std::string& path) {
    try {
      torch::load(net_, path);
      net_->eval();
      Prepare();
    } catch (const std::exception& e) {
      return Status::Corruption("loading two-tower model '" + path + "': " + e.what());
    }
    return Status::Ok();
  }

  Status Train(const Dataset& ds, const features::HistoryIndex& history, const std::vector<PositiveExample>& examples,
               const std::function<void(int64_t, int64_t)>& on_batch, TrainStats* stats) override {
    if (examples.empty()) return Status::InvalidArgument("no positive examples to train the two-tower model on");
    std::lock_guard<std::mutex> lock(mu_);
    struct Reprepare {  // however training ends, serving's encoder sees the final weights
      TorchTwoTower* model;
      ~Reprepare() { model->Prepare(); }
    } reprepare{this};
    auto t0 = std::chrono::steady_clock::now();
    torch::manual_seed(options_.seed);
    std::mt19937_64 rng(options_.seed);

    ItemBatch all_items;  // every item encoded once; rows gathered per batch
    std::vector<uint32_t> all(ds.items.size());
    std::iota(all.begin(), all.end(), 0u);
    space_.EncodeItems(ds, all.data(), static_cast<int64_t>(all.size()), &all_items);

    // log q(item): share of training positives, for the popularity correction.
    std::vector<double> counts(ds.items.size(), 0.0);
    for (const auto& e : examples) counts[e.item] += 1;
    std::vector<float> logq(ds.items.size());
    for (size_t i = 0; i < counts.size(); ++i)
      logq[i] = static_cast<float>(std::log((counts[i] + 1.0) / (examples.size() + counts.size())));

    net_->train();
    // Embedding tables get sparse gradients (Adagrad updates only the rows a batch touched);
    // the towers' dense layers use Adam.
    torch::optim::Adam opt(net_->DenseParameters(), torch::optim::AdamOptions(options_.learning_rate));
    torch::optim::Adagrad sparse_opt(net_->SparseParameters(),
                                     torch::optim::AdagradOptions(options_.sparse_learning_rate));
    const int64_t bs = std::max(2, options_.batch_size);
    const int64_t batches = (static_cast<int64_t>(examples.size()) + bs - 1) / bs;
    const int64_t total = batches * options_.epochs;
    std::vector<size_t> order(examples.size());
    std::iota(order.begin(), order.end(), size_t{0});
    // Batches are encoded on a background thread (the second core) while libtorch trains on
    // the previous one; the order is the same as a single thread would give.
    struct Prepared {
      CustomerBatch cb;
      ItemBatch ib;
      std::vector<int64_t> ids;       // item ids after cold-start dropout
      std::vector<int64_t> item_ids;  // dataset item indexes (duplicate mask)
      std::vector<float> lq;
      int epoch = 0;
    };
    std::bernoulli_distribution drop(options_.item_id_dropout);
    int64_t next_batch = 0;
    auto produce = [&](Prepared* out) -> bool {
      for (;;) {
        if (next_batch >= total) return false;
        const int epoch = static_cast<int>(next_batch / batches);
        const int64_t b = next_batch % batches;
        if (b == 0) std::shuffle(order.begin(), order.end(), rng);
        ++next_batch;
        const size_t lo = b * bs, hi = std::min(order.size(), static_cast<size_t>(lo + bs));
        if (hi - lo < 2) continue;
        std::vector<uint32_t> recent, items;
        out->epoch = epoch;
        for (size_t k = lo; k < hi; ++k) {
          const auto& e = examples[order[k]];
          history.Before(e.customer, e.ts, space_.history_length(), &recent);
          space_.EncodeCustomer(ds, e.customer, e.ts, recent, &out->cb);
          items.push_back(e.item);
          out->lq.push_back(logq[e.item]);
          out->item_ids.push_back(e.item);
        }
        features::GatherItems(all_items, items.data(), static_cast<int64_t>(items.size()), &out->ib);
        for (int64_t k = 0; k < out->ib.n; ++k) {
          int64_t id = out->ib.cat[k * FeatureSpace::kItemCatFields];
          out->ids.push_back(drop(rng) ? 1 : id);  // train the cold-start path
        }
        return true;
      }
    };
    int64_t done = 0;
    if (stats) stats->epoch_loss.assign(options_.epochs, 0.0);
    std::vector<int64_t> loss_n(options_.epochs, 0);
    try {
      Prefetcher<Prepared> prefetch(produce);
      Prepared p;
      while (prefetch.Next(&p)) {
        const int64_t n = p.cb.n;
        auto u = net_->Customer(p.cb);
        auto v = net_->Item(p.ib, I64(p.ids));
        auto logits = torch::matmul(u, v.t()) / options_.temperature;
        if (options_.logq_correction) {
          logits = logits - torch::from_blob(p.lq.data(), {1, n}, torch::kFloat32);
        }
        // The same item twice in a batch is not a negative of itself.
        auto it = I64(p.item_ids);
        auto same = it.view({n, 1}).eq(it.view({1, n})) & ~torch::eye(n, torch::kBool);
        logits = logits.masked_fill(same, -1e9);
        auto target = torch::arange(n, torch::kInt64);
        auto loss = torch::nn::functional::cross_entropy(logits, target);
        opt.zero_grad();
        sparse_opt.zero_grad();
        loss.backward();
        opt.step();
        torchutil::DropEmptySparseGrads(&sparse_opt);  // libtorch's sparse Adagrad fails on empty gradients
        sparse_opt.step();
        if (stats) stats->epoch_loss[p.epoch] += loss.item<double>();
        ++loss_n[p.epoch];
        ++done;
        if (on_batch) on_batch(done, total);
      }
      if (stats) {
        for (int e = 0; e < options_.epochs; ++e) stats->epoch_loss[e] /= std::max<int64_t>(1, loss_n[e]);
      }
    } catch (const std::exception& e) {
      net_->eval();
      return Status::Internal(std::string("two-tower training failed: ") + e.what());
    }
    net_->eval();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (stats) {
      stats->examples = static_cast<int64_t>(examples.size()) * options_.epochs;
      stats->seconds = secs;
      stats->examples_per_second = secs > 0 ? stats->examples / secs : 0;
      for (double l : stats->epoch_loss) {
        if (!std::isfinite(l)) return Status::Internal("two-tower training diverged (loss is not finite)");
      }
    }
    return Status::Ok();
  }

  // The inference path (CustomerTowerInference), without libtorch.
  Status EncodeCustomers(const CustomerBatch& batch, float* out) const override {
    if (batch.n > 0) customer_->Encode(batch, out);
    return Status::Ok();
  }

  // libtorch's customer tower: the reference EncodeCustomers is tested against.
  Status EncodeCustomersWithLibtorch(const CustomerBatch& batch, float* out) const {
    if (batch.n == 0) return Status::Ok();
    try {
      c10::InferenceMode guard;
      auto u = net_->Customer(batch).contiguous();
      std::memcpy(out, u.data_ptr<float>(), sizeof(float) * u.numel());
    } catch (const std::exception& e) {
      return Status::Internal(std::string("customer tower failed: ") + e.what());
    }
    return Status::Ok();
  }

  Status EncodeItems(const ItemBatch& batch, float* out) const override {
    if (batch.n == 0) return Status::Ok();
    try {
      c10::InferenceMode guard;
      auto v = net_->Item(batch).contiguous();
      std::memcpy(out, v.data_ptr<float>(), sizeof(float) * v.numel());
    } catch (const std::exception& e) {
      return Status::Internal(std::string("item tower failed: ") + e.what());
    }
    return Status::Ok();
  }

  int dim() const override { return options_.embedding_dim; }

 private:
  void Prepare() { customer_ = std::make_unique<CustomerTowerInference>(net_->ExportCustomer()); }

  const FeatureSpace& space_;
  TwoTowerOptions options_;
  mutable TwoTowerNet net_;
  std::unique_ptr<CustomerTowerInference> customer_;  // a copy of the current weights
  mutable std::mutex mu_;                             // serialises Train and Save
};

}  // namespace

Status EncodeCustomersWithLibtorch(const TwoTowerModel& model, const CustomerBatch& batch, float* out) {
  const auto* torch_model = dynamic_cast<const TorchTwoTower*>(&model);
  if (!torch_model) return Status::InvalidArgument("not a libtorch two-tower model");
  return torch_model->EncodeCustomersWithLibtorch(batch, out);
}

Result<std::unique_ptr<TwoTowerModel>> TwoTowerModel::Create(const FeatureSpace& space, const TwoTowerOptions& o) {
  if (o.embedding_dim < 1 || o.field_dim < 1 || o.id_dim < 1 || o.text_dim < 1 || o.hidden < 1) {
    return Status::InvalidArgument("two-tower widths must be positive");
  }
  if (!(o.temperature > 0)) return Status::InvalidArgument("two-tower temperature must be > 0");
  if (o.epochs < 1 || o.batch_size < 2)
    return Status::InvalidArgument("two-tower needs epochs >= 1 and batch_size >= 2");
  try {
    torch::manual_seed(o.seed);
    return std::unique_ptr<TwoTowerModel>(std::make_unique<TorchTwoTower>(space, o));
  } catch (const std::exception& e) {
    return Status::Internal(std::string("creating two-tower model: ") + e.what());
  }
}

Result<std::unique_ptr<TwoTowerModel>> TwoTowerModel::Load(const std::string& path, const FeatureSpace& space) {
  std::ifstream in(path + ".json");
  if (!in) return Status::NotFound("'" + path + ".json' is missing");
  TwoTowerOptions o;
  try {
    auto j = nlohmann::json::parse(in);
    if (j.at("format") != "qianmian.two_tower/1") return Status::Corruption("'" + path + ".json': unknown format");
    o.embedding_dim = j.at("embedding_dim");
    o.field_dim = j.at("field_dim");
    o.id_dim = j.at("id_dim");
    o.text_dim = j.at("text_dim");
    o.hidden = j.at("hidden");
    o.temperature = j.at("temperature");
  } catch (const std::exception& e) {
    return Status::Corruption("'" + path + ".json': " + e.what());
  }
  auto m = std::make_unique<TorchTwoTower>(space, o);
  QM_RETURN_IF_ERROR(m->LoadWeights(path));
  return std::unique_ptr<TwoTowerModel>(std::move(m));
}

}  // namespace qm::recall
