#include "qianmian/rank/ranker.h"
#include "cross_net_inference.h"
#include "train_stats.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <mutex>

#include <torch/script.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "qianmian/torchutil/torchutil.h"

namespace qm::rank {

namespace nn = torch::nn;

namespace {

// One line from a libtorch exception's text, which may span a TorchScript traceback and a C++
// stack: the interpreter's "RuntimeError: ..." line when there is one, else the first line.
std::string TorchMessage(const char* what) {
  std::string s(what);
  const size_t at = s.rfind("RuntimeError: ");
  if (at != std::string::npos) s = s.substr(at + 14);
  return s.substr(0, s.find('\n'));
}

constexpr int64_t kContextVocab = kMaxChannels + 24 + 7;

struct Tensors {
  torch::Tensor cat, dense, bag;
};

Tensors ToTensors(const RankInputs& in) {
  Tensors t;
  t.cat = torch::from_blob(const_cast<int64_t*>(in.cat.data()), {in.n, in.cat_width}, torch::kInt64);
  t.dense = torch::from_blob(const_cast<float*>(in.dense.data()), {in.n, in.dense_width}, torch::kFloat32);
  t.bag = torch::from_blob(const_cast<int64_t*>(in.bag.data()), {in.n, kBagWidth}, torch::kInt64);
  return t;
}

Status CheckShape(const RankInputs& in, int cat_width, int dense_width) {
  if (in.n < 0 || in.cat_width != cat_width || in.dense_width != dense_width ||
      in.cat.size() != static_cast<size_t>(in.n) * cat_width ||
      in.dense.size() != static_cast<size_t>(in.n) * dense_width ||
      in.bag.size() != static_cast<size_t>(in.n) * kBagWidth) {
    return Status::InvalidArgument("rank inputs do not match the model's shape");
  }
  return Status::Ok();
}

// A DCN-v2-style multi-task network: embeddings + dense -> x0; low-rank cross layers and a
// deep tower in parallel; two heads (click, convert).
struct CrossNetImpl : nn::Module {
  CrossNetImpl(const features::FeatureSpace& s, const RankInputBuilder& b, const RankerOptions& o) : opt(o) {
    F = s.customer_cat_fields();
    K = b.dense_width();
    const int fd = o.field_dim;
    cust_cat =
        register_module("cust_cat", nn::Embedding(nn::EmbeddingOptions(s.customer_cat_vocab(), fd).sparse(true)));
    item_id = register_module("item_id", nn::Embedding(nn::EmbeddingOptions(s.item_vocab(), fd).sparse(true)));
    item_cat = register_module("item_cat", nn::Embedding(nn::EmbeddingOptions(s.item_cat_vocab(), fd).sparse(true)));
    context = register_module("context", nn::Embedding(nn::EmbeddingOptions(kContextVocab, fd).sparse(true)));
    bag = register_module(
        "bag", nn::Embedding(nn::EmbeddingOptions(s.label_vocab() + s.tag_vocab(), fd).padding_idx(0).sparse(true)));
    x0_dim = (F + features::FeatureSpace::kItemCatFields + kContextFields + 1) * fd + K;
    dense_norm = register_module("dense_norm", nn::LayerNorm(nn::LayerNormOptions({K})));
    for (int l = 0; l < o.cross_layers; ++l) {
      cross_v.push_back(register_module("cross_v" + std::to_string(l),
                                        nn::Linear(nn::LinearOptions(x0_dim, o.cross_rank).bias(false))));
      cross_u.push_back(register_module("cross_u" + std::to_string(l), nn::Linear(o.cross_rank, x0_dim)));
    }
    deep1 = nn::Linear(x0_dim, o.hidden1);
    deep2 = nn::Linear(o.hidden1, o.hidden2);
    deep = register_module("deep", nn::Sequential(deep1, nn::ReLU(), deep2, nn::ReLU()));
    head = register_module("head", nn::Linear(x0_dim + o.hidden2, 2));
    Kc = s.customer_dense();
    if (!o.tower_features) {  // a mask over the dense columns: 0 on u.v and u*v
      tower_mask = torch::ones({1, K});
      tower_mask.slice(1, Kc, K - features::kContactFeatures).zero_();
      tower_mask = register_buffer("tower_mask", tower_mask);
    }
    if (o.factor_dim > 0) {
      const int r = o.factor_dim;
      L = s.label_vocab();
      // Sparse gradients: Train steps FactorTables() by torchutil::LazyAdam, the rows a batch touched.
      fm_cust = register_module("fm_cust", nn::Embedding(nn::EmbeddingOptions(s.customer_cat_vocab(), r).sparse(true)));
      fm_dense = register_module("fm_dense", nn::Linear(nn::LinearOptions(Kc, r).bias(false)));
      fm_item = register_module("fm_item", nn::Embedding(nn::EmbeddingOptions(s.item_vocab(), r).sparse(true)));
      fm_item_cat =
          register_module("fm_item_cat", nn::Embedding(nn::EmbeddingOptions(s.item_cat_vocab(), r).sparse(true)));
      fm_bag = register_module(
          "fm_bag",
          nn::Embedding(nn::EmbeddingOptions(s.label_vocab() + s.tag_vocab(), r).padding_idx(0).sparse(true)));
      fm_out = register_module("fm_out", nn::Linear(1, 2));
      for (auto* e : {&fm_cust, &fm_item, &fm_item_cat, &fm_bag}) nn::init::normal_((*e)->weight, 0.0, 0.1);
      torch::NoGradGuard g;
      fm_bag->weight[0].zero_();
      fm_out->weight.fill_(1.0);
      fm_out->bias.zero_();
    }
    for (auto* e : {&cust_cat, &item_id, &item_cat, &context, &bag}) nn::init::normal_((*e)->weight, 0.0, 0.05);
    {
      torch::NoGradGuard g;
      bag->weight[0].zero_();
    }
  }

  // Logits [n, 2].
  torch::Tensor Logits(const torch::Tensor& cat, const torch::Tensor& dense, const torch::Tensor& bag_ids) {
    const int64_t n = cat.size(0);
    const int C = features::FeatureSpace::kItemCatFields;
    auto c = cust_cat(cat.slice(1, 0, F)).view({n, -1});
    auto id = item_id(cat.select(1, F));
    auto ic = item_cat(cat.slice(1, F + 1, F + C)).view({n, -1});
    auto ctx_ids = cat.slice(1, F + C, F + C + kContextFields);
    auto offs =
        torch::tensor({int64_t{0}, int64_t{kMaxChannels}, int64_t{kMaxChannels + 24}}, torch::kInt64).view({1, 3});
    auto cx = context(ctx_ids + offs).view({n, -1});
    auto bg = bag(bag_ids);
    auto cnt = (bag_ids > 0).sum(1, true).clamp_min(1).to(torch::kFloat32);
    auto bm = bg.sum(1) / cnt;
    auto x0 = torch::cat({c, id, ic, cx, bm, DenseNorm(dense)}, 1);
    auto x = x0;
    for (size_t l = 0; l < cross_u.size(); ++l) x = x0 * cross_u[l](cross_v[l](x)) + x;
    auto d = deep->forward(x0);
    auto out = head(torch::cat({x, d}, 1));
    return fm_out ? out + Factorisation(cat, dense, bag_ids) : out;
  }

  torch::Tensor DenseNorm(const torch::Tensor& dense) {
    return dense_norm(tower_mask.defined() ? dense * tower_mask : dense);
  }

  // The customer x item factorisation [n, 2] (factor_dim > 0). Its tables are trained with the
  // dense parameters; in training it also leaves the batch's item factor penalty in item_l2.
  torch::Tensor Factorisation(const torch::Tensor& cat, const torch::Tensor& dense, const torch::Tensor& bag_ids) {
    const int C = features::FeatureSpace::kItemCatFields;
    auto cu = CustomerFactor(cat, dense, bag_ids);
    auto own = fm_item(cat.select(1, F));
    auto it = own + fm_item_cat(cat.slice(1, F + 1, F + C)).sum(1) + BagMean(bag_ids, bag_ids >= L);
    if (is_training()) item_l2 = own.pow(2).sum(1).mean();
    return fm_out((cu * it).sum(1, true));
  }

  // The factorisation's customer side [n, r]: the customer's field, label and dense factors summed.
  torch::Tensor CustomerFactor(const torch::Tensor& cat, const torch::Tensor& dense, const torch::Tensor& bag_ids) {
    return fm_cust(cat.slice(1, 0, F)).sum(1) + BagMean(bag_ids, (bag_ids > 0).logical_and(bag_ids < L)) +
           fm_dense(dense.slice(1, 0, Kc));
  }

  // The mean of the bag's factors where `mask` holds (zeros where it holds nowhere).
  torch::Tensor BagMean(const torch::Tensor& bag_ids, const torch::Tensor& mask) {
    auto m = mask.unsqueeze(2).to(torch::kFloat32);
    return (fm_bag(bag_ids * mask.to(torch::kInt64)) * m).sum(1) / mask.sum(1, true).clamp_min(1).to(torch::kFloat32);
  }

  // The weights for CrossNetInference (Score's path), the first layer's input reordered to its
  // layout: the shared columns (customer fields, context) first, then the per-row ones (id, item
  // fields, bag, dense) in the order Logits concatenates them, the masked dense columns last;
  // the masked columns' part of the first layer collapsed (cross_net_inference.h).
  CrossNetWeights Export() {
    torch::NoGradGuard g;
    const int64_t fd = opt.field_dim, C = features::FeatureSpace::kItemCatFields;
    const int64_t dense_at = x0_dim - K;
    auto mask = tower_mask.defined() ? tower_mask.view({-1}) : torch::ones({K});
    std::vector<int64_t> shared_cols, row_cols, masked_cols;
    for (int64_t j = 0; j < x0_dim; ++j) {
      const bool is_shared = j < F * fd || (j >= (F + C) * fd && j < (F + C + kContextFields) * fd);
      const bool is_masked = j >= dense_at && mask[j - dense_at].item<float>() == 0.0f;
      (is_shared ? shared_cols : is_masked ? masked_cols : row_cols).push_back(j);
    }
    const int64_t S = static_cast<int64_t>(shared_cols.size()), M = static_cast<int64_t>(masked_cols.size());
    shared_cols.insert(shared_cols.end(), row_cols.begin(), row_cols.end());
    shared_cols.insert(shared_cols.end(), masked_cols.begin(), masked_cols.end());
    auto perm = torch::tensor(shared_cols, torch::kInt64);
    auto dense_perm = perm.slice(0, x0_dim - K) - dense_at;  // x0's dense columns, as input columns
    auto masked = torch::tensor(masked_cols, torch::kInt64), masked_dense = masked - dense_at;
    auto vec = [](const torch::Tensor& t) { return torchutil::FloatsOf(t); };
    CrossNetWeights w;
    w.F = static_cast<int>(F);
    w.C = static_cast<int>(C);
    w.fd = static_cast<int>(fd);
    w.K = static_cast<int>(K);
    w.Kc = static_cast<int>(Kc);
    w.L = static_cast<int>(L);
    w.D = static_cast<int>(x0_dim);
    w.S = static_cast<int>(S);
    w.M = static_cast<int>(M);
    for (int64_t k = 0; k < K; ++k) w.dense_order.push_back(static_cast<int>(dense_perm[k].item<int64_t>()));
    w.dense_mask = vec(mask.index_select(0, dense_perm));
    auto gamma = dense_norm->weight.detach(), beta = dense_norm->bias.detach();
    w.ln_gamma = vec(gamma.index_select(0, dense_perm));
    w.ln_beta = vec(beta.index_select(0, dense_perm));
    w.ln_eps = static_cast<float>(dense_norm->options.eps());
    // A first-layer matrix's masked columns . gamma and . beta (zeros when none is masked).
    auto collapse = [&](const torch::Tensor& weight, std::vector<float>* times_gamma, std::vector<float>* times_beta) {
      auto wm = weight.detach().index_select(1, masked);
      *times_gamma = vec(torch::mv(wm, gamma.index_select(0, masked_dense)));
      *times_beta = vec(torch::mv(wm, beta.index_select(0, masked_dense)));
    };
    std::vector<float> b1_masked;
    collapse(deep1->weight, &w.w1_a, &b1_masked);
    if (!cross_v.empty()) collapse(cross_v[0]->weight, &w.v0_a, &w.v0_b);
    w.rank = opt.cross_rank;
    w.h1 = opt.hidden1;
    w.h2 = opt.hidden2;
    w.cust_cat = vec(cust_cat->weight);
    w.item_id = vec(item_id->weight);
    w.item_cat = vec(item_cat->weight);
    w.context = vec(context->weight);
    w.bag = vec(bag->weight);
    for (size_t l = 0; l < cross_v.size(); ++l) {
      w.cross_v.push_back(vec(cross_v[l]->weight.index_select(1, perm)));
      w.cross_u.push_back(vec(cross_u[l]->weight.index_select(0, perm)));
      w.cross_ub.push_back(vec(cross_u[l]->bias.index_select(0, perm)));
    }
    w.w1 = vec(deep1->weight.index_select(1, perm));
    w.b1 = vec(deep1->bias);
    for (size_t k = 0; k < w.b1.size(); ++k) w.b1[k] += b1_masked[k];
    w.w2 = vec(deep2->weight);
    w.b2 = vec(deep2->bias);
    auto hw = head->weight.detach();
    w.head = vec(torch::cat({hw.slice(1, 0, x0_dim).index_select(1, perm), hw.slice(1, x0_dim)}, 1));
    w.head_b = vec(head->bias);
    if (fm_out) {
      w.factor = opt.factor_dim;
      w.fm_cust = vec(fm_cust->weight);
      w.fm_item = vec(fm_item->weight);
      w.fm_item_cat = vec(fm_item_cat->weight);
      w.fm_bag = vec(fm_bag->weight);
      w.fm_dense = vec(fm_dense->weight);
      for (int k = 0; k < 2; ++k) {
        w.fm_w[k] = fm_out->weight[k][0].item<float>();
        w.fm_b[k] = fm_out->bias[k].item<float>();
      }
    }
    return w;
  }

  std::vector<torch::Tensor> SparseParameters() {
    return {cust_cat->weight, item_id->weight, item_cat->weight, context->weight, bag->weight};
  }
  // The factorisation's tables (none when factor_dim is 0).
  std::vector<torch::Tensor> FactorTables() {
    if (!fm_out) return {};
    return {fm_cust->weight, fm_item->weight, fm_item_cat->weight, fm_bag->weight};
  }
  // Every parameter but the tables (SparseParameters, FactorTables), in registration order.
  std::vector<torch::Tensor> DenseParameters() {
    std::vector<torch::Tensor> tables = SparseParameters(), factors = FactorTables(), out;
    tables.insert(tables.end(), factors.begin(), factors.end());
    for (const auto& p : parameters()) {
      if (std::none_of(tables.begin(), tables.end(), [&](const torch::Tensor& t) { return t.is_same(p); }))
        out.push_back(p);
    }
    return out;
  }

  RankerOptions opt;
  int64_t F = 0, K = 0, x0_dim = 0;
  int64_t Kc = 0, L = 0;  // customer dense columns; the bag's label ids are [1, L)
  nn::Embedding cust_cat{nullptr}, item_id{nullptr}, item_cat{nullptr}, context{nullptr}, bag{nullptr};
  nn::LayerNorm dense_norm{nullptr};
  std::vector<nn::Linear> cross_u, cross_v;
  nn::Sequential deep{nullptr};
  nn::Linear deep1{nullptr}, deep2{nullptr};  // deep's two linear layers (shared, not copies)
  nn::Linear head{nullptr};
  torch::Tensor tower_mask;  // defined when !tower_features
  // factor_dim > 0: the factorisation's tables and its weight in each logit.
  nn::Embedding fm_cust{nullptr}, fm_item{nullptr}, fm_item_cat{nullptr}, fm_bag{nullptr};
  nn::Linear fm_dense{nullptr}, fm_out{nullptr};
  torch::Tensor item_l2;  // the last training batch's mean |own item factor|^2
};
TORCH_MODULE(CrossNet);

// Calls fn(batch, its tensors) for each non-empty batch that `next` gives, until it returns
// false; a batch of the wrong shape stops it with InvalidArgument.
Status ForEachBatch(const std::function<bool(RankBatch*)>& next, const RankInputBuilder& builder,
                    const std::function<void(RankBatch&, const Tensors&)>& fn) {
  RankBatch batch;
  while (true) {
    batch.Clear();
    if (!next(&batch)) return Status::Ok();
    if (batch.inputs.n == 0) continue;
    QM_RETURN_IF_ERROR(CheckShape(batch.inputs, builder.cat_width(), builder.dense_width()));
    fn(batch, ToTensors(batch.inputs));
  }
}

class BuiltinRanker final : public Ranker {
 public:
  BuiltinRanker(const features::FeatureSpace& s, const RankInputBuilder& b, const RankerOptions& o)
      : builder_(b), options_(o), net_(s, b, o) {
    net_->eval();
    Prepare();
  }

  // The inference path (CrossNetInference), without libtorch.
  Status Score(const RankInputs& in, float* p_click, float* p_convert) const override {
    QM_RETURN_IF_ERROR(CheckShape(in, builder_.cat_width(), builder_.dense_width()));
    if (in.n == 0) return Status::Ok();
    thread_local std::vector<float> logits;
    logits.resize(2 * in.n);
    inference_->Logits(in, in.n >= kSharedMinRows && OneCustomer(in), logits.data());
    for (int64_t i = 0; i < in.n; ++i) {
      p_click[i] = 1.0f / (1.0f + std::exp(-logits[2 * i]));
      p_convert[i] = 1.0f / (1.0f + std::exp(-logits[2 * i + 1]));
    }
    return Status::Ok();
  }

  ForwardFlops Flops() const {
    return {inference_->FlopsPerRow(true), inference_->FlopsPerRow(false), inference_->FlopsPerRow(false, true)};
  }

  // libtorch's forward pass of the same network, row by row: the reference Score is tested
  // against.
  Status ScoreWithLibtorch(const RankInputs& in, float* p_click, float* p_convert) const {
    QM_RETURN_IF_ERROR(CheckShape(in, builder_.cat_width(), builder_.dense_width()));
    if (in.n == 0) return Status::Ok();
    try {
      c10::InferenceMode guard;
      auto t = ToTensors(in);
      auto p = torch::sigmoid(net_->Logits(t.cat, t.dense, t.bag)).contiguous();
      const float* d = p.data_ptr<float>();
      for (int64_t i = 0; i < in.n; ++i) {
        p_click[i] = d[2 * i];
        p_convert[i] = d[2 * i + 1];
      }
    } catch (const std::exception& e) {
      return Status::Internal(std::string("ranker failed: ") + e.what());
    }
    return Status::Ok();
  }

  Status Train(const std::function<bool(RankBatch*)>& next, const std::function<void()>& rewind,
               const std::function<void(int64_t)>& on_batch, RankTrainStats* stats) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto t0 = std::chrono::steady_clock::now();
    torch::manual_seed(options_.seed);
    struct Reprepare {  // however training ends, scoring sees the final weights
      BuiltinRanker* ranker;
      ~Reprepare() { ranker->Prepare(); }
    } reprepare{this};
    net_->train();
    torch::optim::Adam dense_opt(net_->DenseParameters(), torch::optim::AdamOptions(options_.learning_rate));
    torch::optim::Adagrad sparse_opt(net_->SparseParameters(),
                                     torch::optim::AdagradOptions(options_.sparse_learning_rate));
    torchutil::LazyAdam factor_opt(net_->FactorTables(), options_.learning_rate);
    int64_t rows = 0;
    if (stats) stats->epoch_loss.clear();
    try {
      for (int epoch = 0; epoch < options_.epochs; ++epoch) {
        if (epoch > 0) rewind();
        double loss_sum = 0, weight_sum = 0;
        QM_RETURN_IF_ERROR(ForEachBatch(next, builder_, [&](RankBatch& batch, const Tensors& t) {
          const int64_t n = batch.inputs.n;
          auto logits = net_->Logits(t.cat, t.dense, t.bag);
          auto yc = torch::from_blob(batch.click.data(), {n}, torch::kFloat32);
          auto yv = torch::from_blob(batch.convert.data(), {n}, torch::kFloat32);
          auto w = torch::from_blob(batch.weight.data(), {n}, torch::kFloat32);
          namespace F = torch::nn::functional;
          auto opts = F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone);
          auto lc = F::binary_cross_entropy_with_logits(logits.select(1, 0), yc, opts);
          auto lv = F::binary_cross_entropy_with_logits(logits.select(1, 1), yv, opts);
          auto loss = ((lc + options_.convert_weight * lv) * w).sum() / w.sum();
          if (net_->fm_out && options_.item_factor_l2 > 0) loss = loss + options_.item_factor_l2 * net_->item_l2;
          dense_opt.zero_grad();
          sparse_opt.zero_grad();
          factor_opt.ZeroGrad();
          loss.backward();
          dense_opt.step();
          factor_opt.Step();
          torchutil::DropEmptySparseGrads(&sparse_opt);  // libtorch's sparse Adagrad fails on empty gradients
          sparse_opt.step();
          double ws = w.sum().item<double>();
          loss_sum += loss.item<double>() * ws;
          weight_sum += ws;
          rows += n;
          if (on_batch) on_batch(n);
        }));
        double l = weight_sum > 0 ? loss_sum / weight_sum : 0.0;
        if (!std::isfinite(l)) {
          net_->eval();
          return Status::Internal("ranker training diverged (loss is not finite)");
        }
        if (stats) stats->epoch_loss.push_back(l);
      }
      if (net_->fm_out && options_.item_refit_l2 > 0) QM_RETURN_IF_ERROR(RefitItemFactors(next, rewind));
    } catch (const std::exception& e) {
      net_->eval();
      return Status::Internal(std::string("ranker training failed: ") + e.what());
    }
    net_->eval();
    if (rows == 0) return Status::InvalidArgument("no training rows for the ranker");
    FillTrainStats(rows, t0, stats);
    return Status::Ok();
  }

  Status Save(const std::string& path) const override {
    std::lock_guard<std::mutex> lock(mu_);
    return torchutil::SaveWithSidecar([&](const std::string& p) { torch::save(net_, p); }, path,
                                      {{"format", "qianmian.ranker/1"},
                                       {"field_dim", options_.field_dim},
                                       {"cross_layers", options_.cross_layers},
                                       {"cross_rank", options_.cross_rank},
                                       {"hidden1", options_.hidden1},
                                       {"hidden2", options_.hidden2},
                                       {"factor_dim", options_.factor_dim},
                                       {"tower_features", options_.tower_features}},
                                      "ranker");
  }

  Status LoadWeights(const std::string& path) {
    try {
      torch::load(net_, path);
      net_->eval();
      Prepare();
    } catch (const std::exception& e) {
      return Status::Corruption("loading ranker '" + path + "': " + e.what());
    }
    return Status::Ok();
  }

  std::string kind() const override { return "builtin"; }

 private:
  static constexpr int64_t kSharedMinRows = 8;

  // After training (factor_dim > 0, item_refit_l2 > 0): each item's own factor is refitted by
  // Newton steps on its training rows, the rest of the model fixed, to the MAP estimate under a
  // Gaussian prior of precision item_refit_l2 (a prior per item, where training's penalty is per
  // row). Adam's few updates under the per-row penalty shrink every item's own factor alike; here
  // an item with many impressions moves as far from what its attributes imply as its clicks say,
  // one with few stays near it, and one with none gets exactly it (a zero own factor).
  Status RefitItemFactors(const std::function<bool(RankBatch*)>& next, const std::function<void()>& rewind) {
    torch::NoGradGuard no_grad;
    net_->eval();
    torch::Tensor table = net_->fm_item->weight;  // [V, r], updated in place
    const int64_t V = table.size(0), r = table.size(1);
    const double lambda = options_.item_refit_l2, cw = options_.convert_weight;
    auto a = net_->fm_out->weight.detach().view({2});  // the factor's weight in each logit
    const double a_click = a[0].item<double>(), a_convert = a[1].item<double>();
    for (int pass = 0; pass < options_.item_refit_passes; ++pass) {
      rewind();
      auto g = torch::zeros({V, r}, torch::kFloat64);
      auto h = torch::zeros({V, r, r}, torch::kFloat32);
      auto count = torch::zeros({V}, torch::kFloat64);
      QM_RETURN_IF_ERROR(ForEachBatch(next, builder_, [&](RankBatch& batch, const Tensors& t) {
        const int64_t n = batch.inputs.n;
        auto p = torch::sigmoid(net_->Logits(t.cat, t.dense, t.bag)).to(torch::kFloat64);
        auto cu = net_->CustomerFactor(t.cat, t.dense, t.bag).to(torch::kFloat64);
        auto yc = torch::from_blob(batch.click.data(), {n}, torch::kFloat32).to(torch::kFloat64);
        auto yv = torch::from_blob(batch.convert.data(), {n}, torch::kFloat32).to(torch::kFloat64);
        auto w = torch::from_blob(batch.weight.data(), {n}, torch::kFloat32).to(torch::kFloat64);
        w = w / w.mean();  // training's loss is the batch's weighted mean
        auto pc = p.select(1, 0), pv = p.select(1, 1);
        auto gc = w * ((pc - yc) * a_click + cw * (pv - yv) * a_convert);
        auto hc = w * (pc * (1 - pc) * (a_click * a_click) + cw * pv * (1 - pv) * (a_convert * a_convert));
        auto ids = t.cat.select(1, net_->F).contiguous();
        g.index_add_(0, ids, cu * gc.unsqueeze(1));
        h.index_add_(0, ids, (cu.unsqueeze(2) * cu.unsqueeze(1) * hc.view({n, 1, 1})).to(torch::kFloat32));
        count.index_add_(0, ids, torch::ones({n}, torch::kFloat64));
      }));
      // One Newton step per item, in chunks (the Hessians in double).
      auto eye = torch::eye(r, torch::kFloat64) * lambda;
      for (int64_t from = 0; from < V; from += 4096) {
        const int64_t to = std::min(V, from + 4096);
        auto w_old = table.slice(0, from, to).to(torch::kFloat64);
        auto step = torch::linalg_solve(h.slice(0, from, to).to(torch::kFloat64) + eye,
                                        (g.slice(0, from, to) + lambda * w_old).unsqueeze(2))
                        .squeeze(2);
        auto seen = (count.slice(0, from, to) > 0).unsqueeze(1);
        table.slice(0, from, to).copy_(torch::where(seen, w_old - step, torch::zeros_like(w_old)));
      }
    }
    return Status::Ok();
  }

  // True when every row has row 0's customer fields and context (one request's candidates).
  bool OneCustomer(const RankInputs& in) const {
    const int F = static_cast<int>(net_->F), C = features::FeatureSpace::kItemCatFields, W = in.cat_width;
    const int64_t* c = in.cat.data();
    for (int64_t i = 1; i < in.n; ++i) {
      const int64_t* r = c + i * W;
      if (!std::equal(r, r + F, c) || !std::equal(r + F + C, r + F + C + kContextFields, c + F + C)) return false;
    }
    return true;
  }

  // The inference path's copy of the current weights.
  void Prepare() { inference_ = std::make_unique<CrossNetInference>(net_->Export()); }

  const RankInputBuilder& builder_;
  RankerOptions options_;
  mutable CrossNet net_;
  std::unique_ptr<CrossNetInference> inference_;
  mutable std::mutex mu_;  // serialises Train and Save
};

class TorchScriptRanker final : public Ranker {
 public:
  TorchScriptRanker(torch::jit::Module m, const RankInputBuilder& b) : module_(std::move(m)), builder_(b) {}

  Status Score(const RankInputs& in, float* p_click, float* p_convert) const override {
    QM_RETURN_IF_ERROR(CheckShape(in, builder_.cat_width(), builder_.dense_width()));
    if (in.n == 0) return Status::Ok();
    try {
      c10::InferenceMode guard;
      auto t = ToTensors(in);
      std::vector<torch::jit::IValue> args = {t.cat, t.dense, t.bag};
      auto out = const_cast<torch::jit::Module&>(module_).forward(args);
      if (!out.isTensor()) return Status::InvalidArgument("TorchScript ranker did not return a tensor");
      auto p = out.toTensor().to(torch::kFloat32).contiguous();
      if (p.dim() != 2 || p.size(0) != in.n || p.size(1) != 2) {
        return Status::InvalidArgument("TorchScript ranker must return Float[n, 2], got " + std::to_string(p.dim()) +
                                       "-d");
      }
      const float* d = p.data_ptr<float>();
      for (int64_t i = 0; i < in.n; ++i) {
        if (!(d[2 * i] >= 0 && d[2 * i] <= 1 && d[2 * i + 1] >= 0 && d[2 * i + 1] <= 1)) {
          return Status::InvalidArgument("TorchScript ranker returned a value outside [0, 1]");
        }
        p_click[i] = d[2 * i];
        p_convert[i] = d[2 * i + 1];
      }
    } catch (const std::exception& e) {
      return Status::InvalidArgument("TorchScript ranker failed: " + TorchMessage(e.what()));
    }
    return Status::Ok();
  }

  Status Train(const std::function<bool(RankBatch*)>&, const std::function<void()>&,
               const std::function<void(int64_t)>&, RankTrainStats*) override {
    return Status::FailedPrecondition("a TorchScript ranker is trained outside qianmian");
  }

  Status Save(const std::string& path) const override {
    try {
      module_.save(path);
    } catch (const std::exception& e) {
      return Status::IoError("saving TorchScript ranker: " + std::string(e.what()));
    }
    return Status::Ok();
  }

  std::string kind() const override { return "torchscript"; }

 private:
  torch::jit::Module module_;
  const RankInputBuilder& builder_;
};

}  // namespace

ForwardFlops ForwardFlopsPerRow(const Ranker& ranker) {
  const auto* builtin = dynamic_cast<const BuiltinRanker*>(&ranker);
  return builtin ? builtin->Flops() : ForwardFlops{};
}

Status ScoreWithLibtorch(const Ranker& ranker, const RankInputs& inputs, float* p_click, float* p_convert) {
  const auto* builtin = dynamic_cast<const BuiltinRanker*>(&ranker);
  if (!builtin) return Status::InvalidArgument("only the built-in cross network has a libtorch reference path");
  return builtin->ScoreWithLibtorch(inputs, p_click, p_convert);
}

Result<RankerKind> ParseRankerKind(const std::string& name) {
  if (name == "cross_net") return RankerKind::kCrossNet;
  if (name == "gbdt") return RankerKind::kGbdt;
  return Status::InvalidArgument("unknown ranker kind '" + name + "' (\"cross_net\" or \"gbdt\")");
}

std::string RankerKindName(RankerKind kind) { return kind == RankerKind::kGbdt ? "gbdt" : "cross_net"; }

Result<std::unique_ptr<Ranker>> Ranker::CreateBuiltin(const features::FeatureSpace& space,
                                                      const RankInputBuilder& builder, const RankerOptions& o) {
  if (o.kind == RankerKind::kGbdt) return CreateGbdtRanker(builder, o);
  if (o.field_dim < 1 || o.cross_rank < 1 || o.hidden1 < 1 || o.hidden2 < 1 || o.cross_layers < 0 || o.epochs < 1 ||
      o.factor_dim < 0) {
    return Status::InvalidArgument("ranker sizes must be positive (cross_layers >= 0, epochs >= 1)");
  }
  try {
    torch::manual_seed(o.seed);
    return std::unique_ptr<Ranker>(std::make_unique<BuiltinRanker>(space, builder, o));
  } catch (const std::exception& e) {
    return Status::Internal(std::string("creating ranker: ") + e.what());
  }
}

Result<std::unique_ptr<Ranker>> Ranker::LoadBuiltin(const std::string& path, const features::FeatureSpace& space,
                                                    const RankInputBuilder& builder) {
  std::ifstream in(path + ".json");
  if (!in) return Status::NotFound("'" + path + ".json' is missing");
  RankerOptions o;
  try {
    auto j = nlohmann::json::parse(in);
    if (j.value("format", "") == "qianmian.gbdt/1") return LoadGbdtRanker(path, builder);
    if (j.value("format", "") == kTorchScriptRankerFormat) return LoadTorchScript(path, builder);
    if (j.at("format") != "qianmian.ranker/1") return Status::Corruption("'" + path + ".json': unknown format");
    o.field_dim = j.at("field_dim");
    o.cross_layers = j.at("cross_layers");
    o.cross_rank = j.at("cross_rank");
    o.hidden1 = j.at("hidden1");
    o.hidden2 = j.at("hidden2");
    o.factor_dim = j.value("factor_dim", 0);  // versions before these two: none, and the towers read
    o.tower_features = j.value("tower_features", true);
  } catch (const std::exception& e) {
    return Status::Corruption("'" + path + ".json': " + e.what());
  }
  auto r = std::make_unique<BuiltinRanker>(space, builder, o);
  QM_RETURN_IF_ERROR(r->LoadWeights(path));
  return std::unique_ptr<Ranker>(std::move(r));
}

Result<std::unique_ptr<Ranker>> Ranker::LoadTorchScript(const std::string& path, const RankInputBuilder& builder) {
  torch::jit::Module m;
  try {
    m = torch::jit::load(path);
    m.eval();
  } catch (const std::exception& e) {
    return Status::InvalidArgument("'" + path + "' is not a loadable TorchScript module: " + TorchMessage(e.what()));
  }
  auto r = std::make_unique<TorchScriptRanker>(std::move(m), builder);
  // Probes: a row of zeros, then a row of each column's largest id (the version's vocabularies:
  // a module whose embedding tables are smaller fails here rather than on some customer).
  RankInputs probe;
  probe.n = 1;
  probe.cat_width = builder.cat_width();
  probe.dense_width = builder.dense_width();
  probe.cat.assign(builder.cat_width(), 0);
  probe.dense.assign(builder.dense_width(), 0.0f);
  probe.bag.assign(kBagWidth, 0);
  float pc, pv;
  Status st = r->Score(probe, &pc, &pv);
  if (!st.ok())
    return Status::InvalidArgument("TorchScript ranker '" + path +
                                   "' does not follow the input contract: " + st.message());
  probe.cat = builder.CatVocab();
  for (int64_t& id : probe.cat) id -= 1;
  probe.bag.assign(kBagWidth, builder.BagVocab() - 1);
  st = r->Score(probe, &pc, &pv);
  if (!st.ok()) {
    return Status::InvalidArgument("TorchScript ranker '" + path +
                                   "' does not accept the version's vocabularies (each column's largest id, "
                                   "rank_inputs.json): " +
                                   st.message());
  }
  return std::unique_ptr<Ranker>(std::move(r));
}

}  // namespace qm::rank
