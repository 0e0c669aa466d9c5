#include "qianmian/training/training_config.h"

namespace qm::training {

namespace {
// [training.two_tower] and [training.exposure_tower].
void ReadTowerOptions(ConfigTable tt, recall::TwoTowerOptions* o) {
  tt.Read("embedding_dim", &o->embedding_dim);
  tt.Read("hidden", &o->hidden);
  tt.Read("temperature", &o->temperature);
  tt.Read("item_id_dropout", &o->item_id_dropout);
  tt.Read("logq_correction", &o->logq_correction);
  tt.Read("batch_size", &o->batch_size);
  tt.Read("epochs", &o->epochs);
  tt.Read("learning_rate", &o->learning_rate);
  tt.Read("sparse_learning_rate", &o->sparse_learning_rate);
  if (o->embedding_dim < 1 || o->hidden < 1) tt.Error("embedding_dim", "widths must be positive");
  if (o->epochs < 1) tt.Error("epochs", "must be >= 1");
  if (o->batch_size < 2) tt.Error("batch_size", "must be >= 2");
  if (!(o->temperature > 0)) tt.Error("temperature", "must be > 0");
}
}  // namespace

void ReadTrainConfig(ConfigTable t, TrainConfig* c) {
  t.Read("split", &c->split);
  if (c->split != "time" && c->split != "per_customer" && c->split != "customers") {
    t.Error("split", "must be \"time\", \"per_customer\" or \"customers\"");
  }
  t.Read("holdout_days", &c->holdout_days);
  if (c->holdout_days < 0) t.Error("holdout_days", "must be >= 0");
  t.Read("holdout_fraction", &c->holdout_fraction);
  if (!(c->holdout_fraction > 0 && c->holdout_fraction < 1)) t.Error("holdout_fraction", "must be in (0, 1)");
  t.Read("negative_keep", &c->negative_keep);
  if (!(c->negative_keep >= 0 && c->negative_keep <= 1)) t.Error("negative_keep", "must be in [0, 1] (0 = auto)");
  t.ReadDuration("click_window", &c->click_window);
  t.ReadDuration("convert_window", &c->convert_window);
  t.Read("candidates", &c->candidates);
  t.Read("retrieval_weight", &c->retrieval_weight);
  t.Read("exposure_model", &c->exposure_model);
  t.Read("exposure_examples", &c->exposure_examples);
  t.Read("exposure_per_valid_day", &c->exposure_per_valid_day);
  if (c->exposure_examples < 1) t.Error("exposure_examples", "must be >= 1");
  t.Read("exposure_weight", &c->exposure_weight);
  if (c->retrieval_weight < 0 && c->retrieval_weight != -1) t.Error("retrieval_weight", "must be >= 0 (or -1 = auto)");
  if (c->candidates < 1) t.Error("candidates", "must be >= 1");
  t.Read("refit", &c->refit);
  t.Read("evaluate", &c->evaluate);
  t.Read("max_eval_customers", &c->max_eval_customers);
  t.Read("value_customers", &c->value_customers);
  if (c->value_customers < 0) t.Error("value_customers", "must be >= 0");
  if (c->max_eval_customers < 1) t.Error("max_eval_customers", "must be >= 1");
  t.Read("exact_index_max", &c->exact_index_max);
  t.Read("neighbours", &c->neighbours);
  if (c->neighbours < 0 || c->neighbours > 1024)
    t.Error("neighbours", "must be in [0, 1024] (0 = no item-to-item table)");
  std::string index_kind = recall::IndexKindName(c->index_kind);
  t.Read("index", &index_kind);
  if (auto k = recall::ParseIndexKind(index_kind); k.ok()) {
    c->index_kind = *k;
  } else {
    t.Error("index", "must be \"auto\", \"exact\", \"hnsw\" or \"ivf\"");
  }
  t.Read("threads", &c->threads);
  int64_t seed = static_cast<int64_t>(c->seed);
  t.Read("seed", &seed);
  c->seed = static_cast<uint64_t>(seed);
  c->two_tower.seed = c->seed;
  c->ranker.seed = c->seed;
  t.Read("history_length", &c->features.history_length);
  if (c->features.history_length < 1) t.Error("history_length", "must be >= 1");
  ReadTowerOptions(t.Table("two_tower"), &c->two_tower);
  ReadTowerOptions(t.Table("exposure_tower"), &c->exposure_tower);
  c->exposure_tower.seed = c->seed + 1;
  ConfigTable rt = t.Table("ranker");
  auto& r = c->ranker;
  std::string kind = rank::RankerKindName(r.kind);
  rt.Read("kind", &kind);
  if (auto k = rank::ParseRankerKind(kind); k.ok()) {
    r.kind = *k;
  } else {
    rt.Error("kind", "must be \"cross_net\" or \"gbdt\"");
  }
  ConfigTable gt = rt.Table("gbdt");
  gt.Read("trees", &r.gbdt.trees);
  gt.Read("depth", &r.gbdt.depth);
  gt.Read("learning_rate", &r.gbdt.learning_rate);
  gt.Read("min_child_weight", &r.gbdt.min_child_weight);
  if (r.gbdt.trees < 1) gt.Error("trees", "must be >= 1");
  if (r.gbdt.depth < 1 || r.gbdt.depth > 16) gt.Error("depth", "must be in [1, 16]");
  if (!(r.gbdt.learning_rate > 0 && r.gbdt.learning_rate <= 1)) gt.Error("learning_rate", "must be in (0, 1]");
  if (!(r.gbdt.min_child_weight >= 0)) gt.Error("min_child_weight", "must be >= 0");
  rt.Read("field_dim", &r.field_dim);
  rt.Read("cross_layers", &r.cross_layers);
  rt.Read("cross_rank", &r.cross_rank);
  rt.Read("hidden1", &r.hidden1);
  rt.Read("hidden2", &r.hidden2);
  rt.Read("factor_dim", &r.factor_dim);
  rt.Read("item_factor_l2", &r.item_factor_l2);
  rt.Read("item_refit_l2", &r.item_refit_l2);
  rt.Read("item_refit_passes", &r.item_refit_passes);
  if (rt.Has("tower_features")) {
    bool on = true;
    rt.Read("tower_features", &on);
    c->ranker_tower_features = on ? 1 : 0;
  }
  rt.Read("epochs", &r.epochs);
  rt.Read("learning_rate", &r.learning_rate);
  rt.Read("sparse_learning_rate", &r.sparse_learning_rate);
  rt.Read("convert_weight", &r.convert_weight);
  if (r.epochs < 1) rt.Error("epochs", "must be >= 1");
  if (r.field_dim < 1 || r.cross_rank < 1 || r.hidden1 < 1 || r.hidden2 < 1)
    rt.Error("field_dim", "widths must be positive");
  if (r.factor_dim < 0) rt.Error("factor_dim", "must be >= 0");
  if (!(r.item_factor_l2 >= 0)) rt.Error("item_factor_l2", "must be >= 0");
  if (!(r.item_refit_l2 >= 0)) rt.Error("item_refit_l2", "must be >= 0 (0 = no refit)");
  if (r.item_refit_passes < 1 || r.item_refit_passes > 10) rt.Error("item_refit_passes", "must be in [1, 10]");
}

}  // namespace qm::training
