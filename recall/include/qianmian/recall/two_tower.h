// Module recall: the two-tower retrieval model and vector search. May depend on: core, features;
// torchutil, libtorch, Faiss, Eigen (private).
// The two-tower retrieval model: a customer tower (profile + recent history) and an item tower
// (id, kind, category, risk, tags, title/text n-grams) mapping both into one space, so that
// recall is an inner-product search. Items without interactions still get a useful embedding
// from their content (cold start). libtorch stays inside the implementation.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "qianmian/core/dataset.h"
#include "qianmian/core/status.h"
#include "qianmian/features/feature_space.h"

namespace qm::recall {

struct TwoTowerOptions {
  int embedding_dim = 64;         // output width of both towers (L2-normalised)
  int field_dim = 16;             // width of each categorical field's embedding
  int id_dim = 32;                // width of the item-id embedding (also used for history)
  int text_dim = 32;              // width of the text n-gram embedding
  int hidden = 256;               // hidden layer width of each tower
  float temperature = 0.05f;      // softmax temperature
  float item_id_dropout = 0.15f;  // share of training items shown as "unknown" (cold start)
  bool logq_correction = true;    // subtract log popularity from in-batch logits
  int batch_size = 1024;
  int epochs = 4;
  float learning_rate = 2e-3f;         // Adam, dense layers
  float sparse_learning_rate = 0.05f;  // Adagrad, embedding tables
  uint64_t seed = 42;
};

// One positive interaction: customer index, item index (into the Dataset) and when.
struct PositiveExample {
  uint32_t customer;
  uint32_t item;
  TimeMs ts;
};

struct TrainStats {
  int64_t examples = 0;
  double seconds = 0;
  double examples_per_second = 0;
  std::vector<double> epoch_loss;  // mean loss per epoch
};

// Thread-safety: Encode* may run concurrently; Train is exclusive.
class TwoTowerModel {
 public:
  virtual ~TwoTowerModel() = default;

  // A freshly initialised model for `space` (seeded by options.seed). `space` must outlive it.
  static Result<std::unique_ptr<TwoTowerModel>> Create(const features::FeatureSpace& space,
                                                       const TwoTowerOptions& options);
  // Loads a model written by Save; `space` must be the FeatureSpace it was trained with.
  static Result<std::unique_ptr<TwoTowerModel>> Load(const std::string& path, const features::FeatureSpace& space);
  // Writes `path` (weights) and `path + ".json"` (options).
  virtual Status Save(const std::string& path) const = 0;

  // Trains with in-batch sampled softmax (log-popularity corrected) on `examples`; the
  // customer's history for an example is their positives strictly before its time.
  // `on_batch(done, total)` reports progress; may be empty.
  virtual Status Train(const Dataset& ds, const features::HistoryIndex& history,
                       const std::vector<PositiveExample>& examples,
                       const std::function<void(int64_t, int64_t)>& on_batch, TrainStats* stats) = 0;

  // Embeddings, row-major n x dim(), L2-normalised.
  virtual Status EncodeCustomers(const features::CustomerBatch& batch, float* out) const = 0;
  virtual Status EncodeItems(const features::ItemBatch& batch, float* out) const = 0;
  virtual int dim() const = 0;
};

// The customer tower through libtorch (the training path): the reference that EncodeCustomers
// (an inference path on OpenBLAS, recall/src/customer_tower_inference.h) is tested against.
Status EncodeCustomersWithLibtorch(const TwoTowerModel& model, const features::CustomerBatch& batch, float* out);

// Threads libtorch may use for one operation (intra-op). Servers set 1 per worker; batch
// jobs and training use every core. Process-wide.
void SetTorchThreads(int threads);
// A server worker's or a push-run thread's setting: libtorch (with OpenMP) and OpenBLAS on the
// calling thread only; parallelism comes from concurrent callers. Process-wide.
void OneThreadPerCaller();

}  // namespace qm::recall
