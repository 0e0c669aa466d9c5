// Module features: the models' inputs, shared by training and serving. May depend on: core;
// content, Eigen (private).
// Feature encoding shared by training and serving: vocabularies and normalisation fitted on a
// Dataset, and the encoding of customers, items and contact history into fixed-shape integer
// and float batches that the neural models (recall towers, ranker) read. No torch here.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "qianmian/core/dataset.h"
#include "qianmian/core/status.h"
#include "qianmian/core/types.h"

namespace qm::features {

struct FeatureOptions {
  int history_length = 20;                 // recent positive items fed to the customer tower
  uint32_t text_buckets = 1u << 18;        // hashed n-gram space for titles and texts
  int max_text_ngrams = 256;               // n-grams kept per item (title first, then text)
  int numeric_buckets = 16;                // each numeric column is also a quantile-bucket field
  TimeMs risk_validity = 365 * kMsPerDay;  // an assessment older than this is expired
};

// Integer-coded inputs of `n` customers. Categorical values are already offset into one
// shared vocabulary [0, FeatureSpace::customer_cat_vocab()).
struct CustomerBatch {
  int64_t n = 0;
  std::vector<int64_t> cat;            // n x customer_cat_fields()
  std::vector<float> dense;            // n x customer_dense()
  std::vector<int64_t> labels;         // label ids of all customers, concatenated
  std::vector<int64_t> label_offsets;  // n: where each customer's labels start (EmbeddingBag)
  std::vector<int64_t> history;        // n x history_length item ids; 0 = padding
  void Clear();
};

// Integer-coded inputs of `n` items.
struct ItemBatch {
  int64_t n = 0;
  std::vector<int64_t> cat;           // n x item_cat_fields(); field 0 is the item id
  std::vector<int64_t> tags;          // tag ids, concatenated (every item has >= 1: 0 = none)
  std::vector<int64_t> tag_offsets;   // n
  std::vector<int64_t> text;          // hashed n-gram ids, concatenated (>= 1 per item)
  std::vector<int64_t> text_offsets;  // n
  // Where row i's tags end in `tags` (they start at tag_offsets[i]).
  int64_t TagsEnd(int64_t i) const { return i + 1 < n ? tag_offsets[i + 1] : static_cast<int64_t>(tags.size()); }
  void Clear();
};

// Copies rows `rows[0..n)` of `all` (e.g. every item encoded once) into `out` (cleared first).
void GatherItems(const ItemBatch& all, const uint32_t* rows, int64_t n, ItemBatch* out);

// A customer's positive events (click, convert, push_open) in time order, for history lookups.
// Built once from an EventLog; read-only afterwards (thread-safe reads).
class HistoryIndex {
 public:
  HistoryIndex() = default;
  // Keeps positives of `events` with ts < until (kNoTime = all). `num_customers` sizes it.
  HistoryIndex(const EventLog& events, size_t num_customers, TimeMs until = kNoTime);
  // Up to `max_n` most recent positive item indexes strictly before `t`, newest first.
  void Before(uint32_t customer, TimeMs t, int max_n, std::vector<uint32_t>* out) const;
  // Every distinct item the customer had a positive on before `t`.
  void SeenBefore(uint32_t customer, TimeMs t, std::vector<uint32_t>* out) const;

 private:
  std::vector<uint64_t> begin_;  // num_customers + 1 offsets into ts_/item_
  std::vector<TimeMs> ts_;
  std::vector<uint32_t> item_;
};

// Vocabularies and normalisation. Fitted once per training run, saved in the artifact, and
// loaded by the server so both encode identically. Thread-safe for concurrent Encode calls.
class FeatureSpace {
 public:
  // Fits on the customers and items of `ds`.
  static Result<FeatureSpace> Fit(const Dataset& ds, const FeatureOptions& options);
  // JSON file round trip.
  Status Save(const std::string& path) const;
  static Result<FeatureSpace> Load(const std::string& path);

  // Encodes customers (indexes into ds.customers) as of time `now`; `history` gives recent
  // positives (may be null: empty history). Appends to `out` (call out->Clear() first).
  void EncodeCustomers(const Dataset& ds, const uint32_t* customers, int64_t n, TimeMs now, const HistoryIndex* history,
                       CustomerBatch* out) const;
  // Same, with each customer's history given explicitly (item indexes, newest first).
  void EncodeCustomer(const Dataset& ds, uint32_t customer, TimeMs now, const std::vector<uint32_t>& recent_items,
                      CustomerBatch* out) const;
  // A customer the engine has never seen (cold start): tier mass, no assessment, no labels.
  void EncodeUnknownCustomer(CustomerBatch* out) const;
  // Encodes items (indexes into ds.items). Items unseen at fit time get the OOV id but
  // full category/tag/text features (cold start).
  void EncodeItems(const Dataset& ds, const uint32_t* items, int64_t n, ItemBatch* out) const;

  // Id of an item in the item vocabulary: 0 padding, 1 unknown, >= 2 known.
  int64_t ItemVocabId(const std::string& item_id) const;

  int customer_cat_fields() const { return static_cast<int>(cust_fields_.size()); }
  int64_t customer_cat_vocab() const { return cust_vocab_size_; }
  int customer_dense() const { return static_cast<int>(numeric_.size()) * 2; }
  int64_t label_vocab() const { return static_cast<int64_t>(labels_.size()) + 1; }  // 0 = none
  int history_length() const { return options_.history_length; }
  int item_cat_fields() const { return kItemCatFields; }
  int64_t item_vocab() const { return static_cast<int64_t>(item_ids_.size()) + 2; }
  int64_t item_cat_vocab() const { return item_cat_vocab_size_; }  // all item cat fields
  int64_t tag_vocab() const { return static_cast<int64_t>(tags_.size()) + 1; }
  int64_t text_vocab() const { return static_cast<int64_t>(options_.text_buckets) + 1; }  // 0 = no text
  const FeatureOptions& options() const { return options_; }

  static constexpr int kItemCatFields = 5;  // id, kind, category, risk, service

 private:
  struct CatField {
    std::string name;                                // "tier", "risk", "assessment", "region", or an extra column
    int64_t offset = 0;                              // first id of this field in the shared vocabulary
    std::unordered_map<std::string, int64_t> vocab;  // value -> local id (>= 1; 0 = unknown)
    int64_t size = 1;                                // local ids in use
  };
  struct NumericField {
    std::string name;
    bool log = false;  // signed log1p before standardising
    double mean = 0, stddev = 1;
    std::vector<double> bounds;  // quantile bucket boundaries (raw values), ascending
  };
  // Bucket of a raw numeric value: 0 = missing, 1.. = quantile bucket.
  static int64_t Bucket(const NumericField& f, float v);

  FeatureOptions options_;
  std::vector<CatField> cust_fields_;
  int64_t cust_vocab_size_ = 0;
  std::vector<NumericField> numeric_;
  std::unordered_map<std::string, int64_t> labels_;      // label -> id >= 1
  std::unordered_map<std::string, int64_t> item_ids_;    // item id -> vocab id >= 2
  std::unordered_map<std::string, int64_t> categories_;  // category -> id >= 1
  std::unordered_map<std::string, int64_t> tags_;        // tag -> id >= 1
  int64_t item_cat_vocab_size_ = 0;
  // Item categorical field offsets into the shared item-cat vocabulary.
  int64_t off_kind_ = 0, off_category_ = 0, off_risk_ = 0, off_service_ = 0;

  void Finalize();  // computes offsets from vocab sizes
};

// Embedding arithmetic (Eigen, vectorised), shared by training and serving so both compute the
// same values: the inner product of a and b (n floats), and out[j] = a[j] * b[j] * scale.
float Dot(const float* a, const float* b, int n);
void ScaledProduct(const float* a, const float* b, int n, float scale, float* out);

// Contact-history features of (customer, item, channel) at time `now`, from the customer's
// recent events: exposures of this item / its category / this channel in the last 1, 7 and 30
// days (log1p counts), days since the last contact on the channel and since the last exposure
// of the item (log1p, capped), and recent positives on the item / category.
inline constexpr int kContactFeatures = 13;
struct ContactEvent {
  TimeMs ts;
  uint32_t item;
  uint32_t category;
  ChannelId channel;
  EventType type;
};
// `recent` holds the customer's events before `now`, oldest first.
void ContactFeatures(const std::vector<ContactEvent>& recent, uint32_t item, uint32_t category, ChannelId channel,
                     TimeMs now, float* out /* kContactFeatures */);
// Same over `n` events at `recent` (e.g. a window of a longer buffer, without copying it).
void ContactFeatures(const ContactEvent* recent, size_t n, uint32_t item, uint32_t category, ChannelId channel,
                     TimeMs now, float* out /* kContactFeatures */);

// ContactFeatures of many items for one customer, channel and time: the events are summarised
// once (per item, per category, for the channel), so each item costs two small lookups instead
// of a pass over the events. Features() gives exactly ContactFeatures' values.
class ContactSummary {
 public:
  ContactSummary(const std::vector<ContactEvent>& recent, ChannelId channel, TimeMs now);
  void Features(uint32_t item, uint32_t category, float* out /* kContactFeatures */) const;

 private:
  struct Key {
    uint32_t key = 0;
    int exp[3] = {0, 0, 0};  // exposures in the last 1 / 7 / 30 days
    int pos = 0;             // positives in the last 30 days
    TimeMs last = kNoTime;   // last exposure (items)
  };
  static const Key* Find(const std::vector<Key>& keys, uint32_t key);
  std::vector<Key> items_, categories_;  // sorted by key
  int ch_exp_[3] = {0, 0, 0};
  TimeMs last_channel_ = kNoTime;
  TimeMs now_;
};

}  // namespace qm::features
