// Embedded event store: RocksDB in one folder.
//   "s" + customer                       -> EncodeState(contact state)
//   "l" + customer + '\0' + be64(ts) + type + item + '\0' + request + '\0' + channel
//                                        -> EncodeEvent(event)   (identical events share a key)
//   "d" + customer + '\0' + be64(ts) + request + '\0' + kind + be32(position) + item
//                                        -> EncodeDecision(decision)  (the decision log: one record)
//   "d" + <the key of a page's first record> + '\0' + be64(xxh3 of its positions and items)
//                                        -> EncodeDecisionPage(records)  (a page's records, one value)
//   "mhorizon"                           -> be64(ts): records older than this are past retention
//   "r" + collection + '\0' + id         -> be64(revision) + value   (a governed record: campaigns)
//   "a" + collection + '\0' + id + '\0' + be64(revision)
//                                        -> the audit entry of that write (never dropped)
// Retention: Compact moves the horizon; reads skip the records older than it at once, and a
// compaction filter removes them from disk when RocksDB next compacts their files (periodic
// compaction rewrites every file at least every two days). Memory is bounded: [store] memory_mb
// of LRU block cache for the data, index and filter blocks, and two memtables of 64 MB.
// Per-customer atomicity: a striped mutex held across read-modify-write of the state and the
// synced WriteBatch; concurrent synced writes are group-committed by RocksDB's write thread.
#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/rate_limiter.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <sys/statvfs.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store_backends.h"

namespace qm::policy {
namespace {

constexpr size_t kStripes = 512;

std::string StateKey(const std::string& customer) { return "s" + customer; }

void PutBigEndian(std::string* s, uint64_t v) {
  for (int i = 7; i >= 0; --i) s->push_back(static_cast<char>(v >> (8 * i)));
}

uint64_t OrderedTime(TimeMs t) { return static_cast<uint64_t>(t) ^ (uint64_t{1} << 63); }

// The prefix of a customer's records in a log ('l': events, 'd': decisions).
std::string LogPrefix(const std::string& customer, char tag = 'l') {
  std::string k(1, tag);
  k += customer;
  k.push_back('\0');
  return k;
}

std::string DecisionKey(const DecisionRecord& d) {
  std::string k = LogPrefix(d.customer_id, 'd');
  PutBigEndian(&k, OrderedTime(d.ts));
  k += d.request_id;
  k.push_back('\0');
  k.push_back(static_cast<char>(d.kind));
  const uint32_t pos = static_cast<uint32_t>(d.position);
  for (int i = 3; i >= 0; --i) k.push_back(static_cast<char>(pos >> (8 * i)));
  k += d.item_id;
  return k;
}

// A page's key: its first record's key and a hash of every (position, item) on it, so a page
// written again is stored once and a different page of the same request is kept beside it.
std::string PageKey(const DecisionRecord* records, size_t n) {
  std::string k = DecisionKey(records[0]);
  std::string items;
  for (size_t i = 0; i < n; ++i) {
    items += std::to_string(records[i].position);
    items.push_back('\0');
    items += records[i].item_id;
    items.push_back('\0');
  }
  k.push_back('\0');
  PutBigEndian(&k, XXH3_64bits(items.data(), items.size()));
  return k;
}

// Places `it` on the newest record of `customer` under `tag` (or before it, when there is none).
void SeekToNewest(rocksdb::Iterator* it, char tag, const std::string& customer) {
  std::string upper = std::string(1, tag) + customer;
  upper.push_back('\x01');
  it->Seek(upper);
  if (it->Valid())
    it->Prev();
  else
    it->SeekToLast();
}

// Turns stored decision values, read in key order (or its reverse), into records: a request's
// records (same time, request and kind, adjacent in key order) are gathered, ordered by position
// (descending when newest_first) and written once each, however many values hold them (a page
// written again in part, or a store written before pages were grouped).
class DecisionRuns {
 public:
  explicit DecisionRuns(bool newest_first) : newest_first_(newest_first) {}

  // Decodes a value; records of a finished run are appended to *out. False: not a decision.
  bool Add(std::string_view value, std::vector<DecisionRecord>* out) {
    std::vector<DecisionRecord> got;
    if (!DecodeDecisions(value, &got)) return false;
    if (!decoded_.empty() && !SameRun(decoded_[0], got[0])) Flush(out);
    decoded_.insert(decoded_.end(), std::make_move_iterator(got.begin()), std::make_move_iterator(got.end()));
    return true;
  }

  void Flush(std::vector<DecisionRecord>* out) {
    std::stable_sort(decoded_.begin(), decoded_.end(), [this](const DecisionRecord& a, const DecisionRecord& b) {
      return newest_first_ ? a.position > b.position : a.position < b.position;
    });
    for (size_t i = 0; i < decoded_.size(); ++i) {
      bool seen = false;
      for (size_t j = i; j-- > 0 && decoded_[j].position == decoded_[i].position;) {
        seen = seen || decoded_[j].item_id == decoded_[i].item_id;
      }
      if (!seen) out->push_back(decoded_[i]);
    }
    decoded_.clear();
  }

 private:
  static bool SameRun(const DecisionRecord& a, const DecisionRecord& b) {
    return a.ts == b.ts && a.kind == b.kind && a.request_id == b.request_id && a.customer_id == b.customer_id;
  }

  bool newest_first_;
  std::vector<DecisionRecord> decoded_;  // the current run's records
};

std::string LogKey(const StoredEvent& e) {
  std::string k = LogPrefix(e.customer_id);
  PutBigEndian(&k, OrderedTime(e.ts));
  k.push_back(static_cast<char>(e.type));
  k += e.item_id;
  k.push_back('\0');
  k += e.request_id;
  k.push_back('\0');
  k += e.channel;
  return k;
}

// ts of a log key with the given prefix length.
TimeMs LogKeyTime(const rocksdb::Slice& key, size_t prefix_len) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = v << 8 | static_cast<uint8_t>(key[prefix_len + i]);
  return static_cast<TimeMs>(v ^ (uint64_t{1} << 63));
}

// The time of an event ('l') or decision ('d') record's key; false for any other key.
bool RecordTime(const rocksdb::Slice& key, TimeMs* ts) {
  if (key.empty() || (key[0] != 'l' && key[0] != 'd')) return false;
  const char* zero = static_cast<const char*>(memchr(key.data(), '\0', key.size()));
  if (!zero) return false;
  const size_t plen = zero - key.data() + 1;
  if (key.size() < plen + 8) return false;
  *ts = LogKeyTime(key, plen);
  return true;
}

const char kHorizonKey[] = "mhorizon";

// Removes the event and decision records older than the retention horizon when RocksDB compacts
// their files. Shared by every compaction thread: the horizon is atomic.
class RetentionFilter final : public rocksdb::CompactionFilter {
 public:
  void Raise(TimeMs horizon) {
    TimeMs was = horizon_.load();
    while (was < horizon && !horizon_.compare_exchange_weak(was, horizon)) {
    }
  }
  TimeMs horizon() const { return horizon_.load(std::memory_order_relaxed); }
  bool Filter(int, const rocksdb::Slice& key, const rocksdb::Slice&, std::string*, bool*) const override {
    TimeMs ts = 0;
    return RecordTime(key, &ts) && ts < horizon();
  }
  const char* Name() const override { return "qianmian.RetentionFilter"; }

 private:
  std::atomic<TimeMs> horizon_{std::numeric_limits<TimeMs>::min()};
};

Status FromRocks(const rocksdb::Status& s, const char* what) {
  if (s.ok()) return Status::Ok();
  if (s.IsCorruption()) return Status::Corruption(std::string(what) + ": " + s.ToString());
  if (s.IsNoSpace()) {
    return Status::Unavailable(std::string(what) +
                               ": the event store's disk is full, nothing was written (retry): " + s.ToString());
  }
  return Status::IoError(std::string(what) + ": " + s.ToString());
}

// Applies one customer's events (by time) to `state` as the store records them: `logged(e)` for
// each event the state takes (its log record), then the state compacted at the newest event's
// time. Append and the bulk seeding both record this way.
template <class Logged>
void ApplyCustomerEvents(const std::vector<const StoredEvent*>& events, const StateOptions& options,
                         CustomerState* state, Logged&& logged) {
  TimeMs newest = kNoTime;
  for (const StoredEvent* e : events) {
    newest = std::max(newest, e->ts);
    if (ApplyEvent(*e, options, state)) logged(*e);
  }
  CompactState(newest, options, state);
}

// Opens the RocksDB database of `config` (read-only without the lock when config.read_only);
// `filter` (retention) must outlive it.
Result<std::unique_ptr<rocksdb::DB>> OpenDb(const StoreConfig& config, const RetentionFilter* filter) {
  rocksdb::DB* raw = nullptr;
  if (config.read_only) {
    rocksdb::Status s = rocksdb::DB::OpenForReadOnly(rocksdb::Options(), config.path, &raw);
    if (!s.ok()) return Status::IoError("cannot open event store '" + config.path + "' read-only: " + s.ToString());
    return std::unique_ptr<rocksdb::DB>(raw);
  }
  rocksdb::Options options;
  options.create_if_missing = true;
  options.IncreaseParallelism(2);
  options.keep_log_file_num = 5;
  options.max_manifest_file_size = 64 << 20;
  // Memory: one cache of memory_mb for the data, index and filter blocks (RocksDB's default keeps
  // every file's index and filter blocks on the heap, so memory grows with the store), plus two
  // memtables of 64 MB (RocksDB's default size: smaller ones flush and compact so often that a
  // 2-core server loses a third of its pages per second).
  std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(static_cast<size_t>(config.memory_mb) << 20);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));  // a state Get skips the files without it
  // Index and filter blocks in 4 KB partitions under a small top level that stays pinned: a state
  // Get loads a few KB of them at most. Whole-file index blocks are hundreds of KB to MBs for the
  // store's larger files; in the 1M soak, while compactions replaced files, the workers spent 40%
  // of their time reading, checksumming and decompressing such blocks (about half a MB a page,
  // pages 1.6x dearer, a minute of shed pages).
  table.index_type = rocksdb::BlockBasedTableOptions::IndexType::kTwoLevelIndexSearch;
  table.partition_filters = true;
  table.metadata_block_size = 4096;
  table.pin_top_level_index_and_filter = true;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  options.write_buffer_size = 64 << 20;
  options.max_write_buffer_number = 2;
  options.compaction_filter = filter;
  options.periodic_compaction_seconds = 2 * 24 * 3600;  // expired records leave the disk within 2 days
  // Flushes and compactions run in Linux's idle scheduling class (SCHED_IDLE): on a busy 2-core
  // server they take the idle time instead of the workers' (a compaction at normal priority took
  // a core for seconds and the pages queued behind it were shed), and catch up in the idle time
  // that any load below capacity leaves. (Against nice 19, their class alone made no difference
  // the 1M soak's A/B runs could tell; the server's compaction thread's did: docs/BENCHMARKS.md.)
  // And they write at a bounded rate, so that a compaction's CPU and I/O are spread over seconds
  // (a 300 MB compaction at full speed shed pages in the soak even at nice 19).
  if (config.background_mb_per_s > 0) {
    options.rate_limiter.reset(rocksdb::NewGenericRateLimiter(config.background_mb_per_s << 20));
  }
  for (auto pool : {rocksdb::Env::Priority::LOW, rocksdb::Env::Priority::HIGH}) {
    options.env->LowerThreadPoolCPUPriority(pool, rocksdb::CpuPriority::kIdle).PermitUncheckedError();
  }
  rocksdb::Status s = rocksdb::DB::Open(options, config.path, &raw);
  if (s.IsIOError() && s.ToString().find("lock file") != std::string::npos) {
    // Another process holds the store (one writer): temporary, worth retrying once it is done.
    return Status::Unavailable("event store '" + config.path + "' is in use by another process: " + s.ToString());
  }
  if (!s.ok()) return Status::IoError("cannot open event store '" + config.path + "': " + s.ToString());
  return std::unique_ptr<rocksdb::DB>(raw);
}

// Holds a stripe's lock (RocksStore::mu_); on release it counts one more write to the stripe
// (whether or not the holder wrote), so that a compaction that read the stripe's states without
// the lock can tell that nothing has written them since.
class StripeLock {
 public:
  StripeLock(std::mutex& mu, std::atomic<uint64_t>& writes) : mu_(&mu), writes_(&writes) { mu_->lock(); }
  StripeLock(StripeLock&& o) noexcept : mu_(std::exchange(o.mu_, nullptr)), writes_(o.writes_) {}
  StripeLock(const StripeLock&) = delete;
  StripeLock& operator=(const StripeLock&) = delete;
  StripeLock& operator=(StripeLock&&) = delete;
  ~StripeLock() {
    if (mu_ == nullptr) return;
    writes_->fetch_add(1, std::memory_order_release);
    mu_->unlock();
  }

 private:
  std::mutex* mu_;
  std::atomic<uint64_t>* writes_;
};

class RocksStore final : public EventStore {
 public:
  RocksStore(std::shared_ptr<RetentionFilter> filter, std::unique_ptr<rocksdb::DB> db, const StoreConfig& c)
      : filter_(std::move(filter)), db_(std::move(db)), config_(c) {
    write_.sync = c.sync;
  }

  // Reads the retention horizon the last compaction stored.
  Status LoadHorizon() {
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kHorizonKey, &v);
    if (s.IsNotFound()) return Status::Ok();
    QM_RETURN_IF_ERROR(FromRocks(s, "read the retention horizon"));
    if (v.size() != 8) return Status::Corruption("bad retention horizon record in the event store");
    filter_->Raise(LogKeyTime(v, 0));
    return Status::Ok();
  }

  Status Append(const std::vector<StoredEvent>& events, const StateOptions& options) override {
    std::map<std::string, std::vector<const StoredEvent*>> by_customer;
    for (const StoredEvent& e : events) {
      if (!ValidCustomer(e.customer_id)) return Status::InvalidArgument("event without a valid customer id");
      by_customer[e.customer_id].push_back(&e);
    }
    if (by_customer.empty()) return Status::Ok();
    MaybeReopen();
    std::shared_lock<std::shared_mutex> hold(db_mu_);
    QM_RETURN_IF_ERROR(Writable("append"));
    std::vector<std::string_view> customers;
    for (const auto& [c, _] : by_customer) customers.push_back(c);
    auto locks = LockCustomers(customers);

    rocksdb::WriteBatch batch;
    for (const auto& [customer, evs] : by_customer) {
      CustomerState state;
      QM_RETURN_IF_ERROR(ReadState(customer, &state));
      ApplyCustomerEvents(evs, options, &state, [&](const StoredEvent& e) { batch.Put(LogKey(e), EncodeEvent(e)); });
      PutState(&batch, customer, state);
    }
    return Commit(write_, &batch, "append");
  }

  Result<std::unique_ptr<Seeder>> Seed(const StateOptions& options, int parts) override {
    if (parts < 1) return Status::InvalidArgument("seeding the event store: at least one part");
    rocksdb::Options table_options;
    {
      std::shared_lock<std::shared_mutex> hold(db_mu_);
      QM_RETURN_IF_ERROR(Writable("seed the event store"));
      // A store that holds events or states already is seeded by Append, which merges.
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
      for (char tag : {'l', 's'}) {
        it->Seek(std::string(1, tag));
        if (it->Valid() && it->key().starts_with(std::string(1, tag))) return EventStore::Seed(options, parts);
        QM_RETURN_IF_ERROR(FromRocks(it->status(), "seed the event store"));
      }
      table_options = db_->GetOptions();
    }
    const std::string dir = (std::filesystem::path(config_.path) / "seeding").string();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);  // a seeding interrupted before it ingested its files
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status::IoError("cannot create '" + dir + "': " + ec.message());
    return std::unique_ptr<Seeder>(std::make_unique<BulkSeeder>(this, options, table_options, dir, parts));
  }

  Result<PlanOutcome> Apply(const ContactPlan& plan) override {
    QM_RETURN_IF_ERROR(CheckPlan(plan));
    if (plan.max_take > 0) MaybeReopen();
    std::shared_lock<std::shared_mutex> hold(db_mu_);
    QM_RETURN_IF_ERROR(Readable());
    if (plan.max_take == 0) {  // a check: read-only, no lock needed (Get is atomic)
      CustomerState state;
      QM_RETURN_IF_ERROR(ReadState(plan.customer_id, &state));
      bool changed = false;
      return RunPlan(plan, &state, &changed);
    }
    QM_RETURN_IF_ERROR(Writable("reserve"));
    const size_t stripe = Stripe(plan.customer_id);
    StripeLock lock(mu_[stripe], writes_[stripe]);
    CustomerState state;
    QM_RETURN_IF_ERROR(ReadState(plan.customer_id, &state));
    rocksdb::WriteBatch batch;
    bool changed = false, sync = false;
    PlanOutcome out = ReserveInBatch(plan, &state, &batch, &changed, &sync);
    if (!changed) return out;
    PutState(&batch, plan.customer_id, state);
    QM_RETURN_IF_ERROR(Write(&batch, sync));
    return out;
  }

  Result<std::vector<PlanOutcome>> ApplyMany(const std::vector<ContactPlan>& plans) override {
    bool writes = false;
    for (const ContactPlan& plan : plans) {
      QM_RETURN_IF_ERROR(CheckPlan(plan));
      writes = writes || plan.max_take > 0;
    }
    if (writes) MaybeReopen();
    std::shared_lock<std::shared_mutex> hold(db_mu_);
    QM_RETURN_IF_ERROR(writes ? Writable("reserve") : Readable());
    // Every customer's lock for the whole batch (in stripe order, as Append), so each plan is
    // atomic with its customer's state; states carry over between plans of one customer.
    std::vector<std::string_view> customers;
    for (const ContactPlan& plan : plans) customers.push_back(plan.customer_id);
    auto locks = LockCustomers(customers);
    std::unordered_map<std::string, CustomerState> states;
    std::unordered_map<std::string, bool> dirty;
    std::vector<PlanOutcome> out;
    out.reserve(plans.size());
    rocksdb::WriteBatch batch;
    bool sync = false;
    for (const ContactPlan& plan : plans) {
      auto it = states.find(plan.customer_id);
      if (it == states.end()) {
        CustomerState state;
        QM_RETURN_IF_ERROR(ReadState(plan.customer_id, &state));
        it = states.emplace(plan.customer_id, std::move(state)).first;
      }
      bool changed = false;
      if (plan.max_take == 0) {  // a check persists nothing: it runs on a copy
        CustomerState copy = it->second;
        out.push_back(RunPlan(plan, &copy, &changed));
        continue;
      }
      out.push_back(ReserveInBatch(plan, &it->second, &batch, &changed, &sync));
      if (changed) dirty[plan.customer_id] = true;
    }
    if (dirty.empty()) return out;
    for (const auto& [customer, _] : dirty) PutState(&batch, customer, states[customer]);
    QM_RETURN_IF_ERROR(Write(&batch, sync));
    return out;
  }

  Result<CustomerState> State(const std::string& customer_id) override {
    std::shared_lock<std::shared_mutex> hold(db_mu_);
    QM_RETURN_IF_ERROR(Readable());
    CustomerState state;
    QM_RETURN_IF_ERROR(ReadState(customer_id, &state));
    return state;
  }

  Result<std::vector<StoredEvent>> Log(const std::string& customer_id, TimeMs since, size_t limit) override {
    return NewestFirst<StoredEvent>('l', customer_id, std::max(since, filter_->horizon()), limit, DecodeEvent, "event");
  }

  Status AppendDecisions(const std::vector<DecisionRecord>& decisions) override {
    rocksdb::WriteBatch batch;
    for (size_t i = 0, n = 0; i < decisions.size(); i += n) {
      const DecisionRecord& d = decisions[i];
      if (!ValidCustomer(d.customer_id)) return Status::InvalidArgument("decision without a valid customer id");
      for (n = 1; i + n < decisions.size() && SameDecisionPage(d, decisions[i + n]);) ++n;
      if (n == 1) {
        batch.Put(DecisionKey(d), EncodeDecision(d));
      } else {
        batch.Put(PageKey(&decisions[i], n), EncodeDecisionPage(&decisions[i], n));
      }
    }
    if (batch.Count() == 0) return Status::Ok();
    MaybeReopen();
    std::shared_lock<std::shared_mutex> hold(db_mu_);
    QM_RETURN_IF_ERROR(Writable("append decisions"));
    return Write(&batch, config_.sync_decisions, "append decisions");
  }

  Result<std::vector<DecisionRecord>> Decisions(const std::string& customer_id, TimeMs since, size_t limit) override {
    std::shared_lock<std::shared_mutex> hold(db_mu_);
    QM_RETURN_IF_ERROR(Readable());
    since = std::max(since, filter_->horizon());
    std::vector<DecisionRecord> out;
    DecisionRuns runs(/*newest_first=*/true);
    const std::string prefix = LogPrefix(customer_id, 'd');
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (SeekToNewest(it.get(), 'd', customer_id); it->Valid() && out.size() < limit; it->Prev()) {
      if (!it->key().starts_with(prefix) || LogKeyTime(it->key(), prefix.size()) < since) break;
      if (!runs.Add(std::string_view(it->value().data(), it->value().size()), &out)) {
        return Status::Corruption("bad decision record for customer '" + customer_id + "'");
      }
    }
    QM_RETURN_IF_ERROR(FromRocks(it->status(), "decisions"));
    runs.Flush(&out);
    if (out.size() > limit) out.resize(limit);
    return out;
  }

  Status ExportDecisions(const std::function<bool(const DecisionRecord&)>& fn) override {
    std::shared_lock<std::shared_mutex> hold(db_mu_);
    QM_RETURN_IF_ERROR(Readable());
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    const TimeMs horizon = filter_->horizon();
    DecisionRuns runs(/*newest_first=*/false);
    std::vector<DecisionRecord> ready;
    bool more = true;
    auto emit = [&] {
      for (const DecisionRecord& d : ready) {
        if (!(more = fn(d))) break;
      }
      ready.clear();
    };
    for (it->Seek("d"); more && it->Valid() && it->key().starts_with("d"); it->Next()) {
      TimeMs ts = 0;
      if (RecordTime(it->key(), &ts) && ts < horizon) continue;  // past retention
      if (!runs.Add(std::string_view(it->value().data(), it->value().size()), &ready)) {
        return Status::Corruption("bad decision record");
      }
      emit();
    }
    QM_RETURN_IF_ERROR(FromRocks(it->status(), "export decisions"));
    if (more) {
      runs.Flush(&ready);
      emit();
    }
    return Status::Ok();
  }

  Status Export(const std::function<bool(const StoredEvent&)>& fn) override {
    std::shared_lock<std::shared_mutex> hold(db_mu_);
    QM_RETURN_IF_ERROR(Readable());
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    const TimeMs horizon = filter_->horizon();
    for (it->Seek("l"); it->Valid() && it->key().starts_with("l"); it->Next()) {
      TimeMs ts = 0;
      if (RecordTime(it->key(), &ts) && ts < horizon) continue;  // past retention
      StoredEvent e;
      if (!DecodeEvent(std::string_view(it->value().data(), it->value().size()), &e)) {
        return Status::Corruption("bad event record");
      }
      if (!fn(e)) break;
    }
    return FromRocks(it->status(), "export");
  }

  Status Compact(TimeMs now, const StateOptions& options, const StepRunner& locked) override {
    // The steps that take a lock a request may wait for (the store's, a stripe's, RocksDB's queue
    // of writers) go through `locked`; reading and compacting do not.
    const StepRunner run = locked ? locked : StepRunner([](const Step& step) { return step(); });
    const TimeMs horizon = now - config_.retention;
    QM_RETURN_IF_ERROR(run([this] {
      MaybeReopen();
      return Status::Ok();
    }));
    std::shared_lock<std::shared_mutex> hold(db_mu_);
    QM_RETURN_IF_ERROR(Writable("compact", /*check_space=*/false));  // compaction is what frees space
    // The horizon only moves forward (a clock stepped back must not bring records back).
    if (horizon > filter_->horizon()) {
      std::string v;
      PutBigEndian(&v, OrderedTime(horizon));
      rocksdb::WriteBatch batch;
      batch.Put(kHorizonKey, v);
      QM_RETURN_IF_ERROR(run([&] { return Commit(write_, &batch, "compact"); }));
      filter_->Raise(horizon);
    }
    // Cap state: each customer's records past their horizons. Not synced (a lost rewrite is
    // redone by the next compaction), so a compaction costs no fsync per customer.
    rocksdb::WriteOptions unsynced = write_;
    unsynced.sync = false;
    // First a scan without locks, reading past the block cache (a million states would evict
    // what the pages read): only the customers with a record past its horizon are rewritten. A
    // record added since the scan is newer than `now`'s horizons, so a customer the scan skips
    // has nothing to drop. Then the rewrites, grouped by stripe, kChunk customers at a time: each
    // state read and compacted without a lock, then written under the stripe's lock: as compacted
    // if no request has taken the stripe since (its count of writes unchanged), else read again
    // and compacted afresh. So the lock is held mostly for one write, and that step goes through
    // `locked`: the caller runs the compaction at a low priority and these steps at a normal one.
    std::vector<std::vector<std::string>> by_stripe(kStripes);
    {
      rocksdb::ReadOptions scan;
      scan.fill_cache = false;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(scan));
      CustomerState state;
      for (it->Seek("s"); it->Valid() && it->key().starts_with("s"); it->Next()) {
        std::string c = it->key().ToString().substr(1);
        if (!DecodeState(std::string_view(it->value().data(), it->value().size()), &state)) {
          return Status::Corruption("bad contact state for customer '" + c + "'");
        }
        if (CompactState(now, options, &state)) by_stripe[Stripe(c)].push_back(std::move(c));
      }
      QM_RETURN_IF_ERROR(FromRocks(it->status(), "compact"));
    }
    for (size_t s = 0; s < kStripes; ++s) {
      QM_RETURN_IF_ERROR(CompactStripe(s, by_stripe[s], now, options, unsynced, run));
    }
    return Status::Ok();
  }

  Result<GovernedRecord> ReadRecord(const std::string& collection, const std::string& id) override {
    QM_RETURN_IF_ERROR(CheckRecordName(collection, &id));
    std::shared_lock<std::shared_mutex> hold(db_mu_);
    QM_RETURN_IF_ERROR(Readable());
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), RecordKey(collection, id), &v);
    if (s.IsNotFound()) return Status::NotFound("no " + collection + " record '" + id + "'");
    QM_RETURN_IF_ERROR(FromRocks(s, "read a record"));
    GovernedRecord r;
    if (!DecodeRecord(id, v, &r)) return Status::Corruption("bad " + collection + " record '" + id + "'");
    return r;
  }

  Result<std::vector<GovernedRecord>> ListRecords(const std::string& collection) override {
    QM_RETURN_IF_ERROR(CheckRecordName(collection, nullptr));
    std::shared_lock<std::shared_mutex> hold(db_mu_);
    QM_RETURN_IF_ERROR(Readable());
    const std::string prefix = RecordKey(collection, "");
    std::vector<GovernedRecord> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      GovernedRecord r;
      const std::string id = it->key().ToString().substr(prefix.size());
      if (!DecodeRecord(id, it->value().ToString(), &r)) {
        return Status::Corruption("bad " + collection + " record '" + id + "'");
      }
      out.push_back(std::move(r));
    }
    QM_RETURN_IF_ERROR(FromRocks(it->status(), "list records"));
    return out;
  }

  Status WriteRecord(const std::string& collection, const std::string& id, uint64_t expected_revision,
                     const std::string& value, const std::string& audit) override {
    QM_RETURN_IF_ERROR(CheckRecordName(collection, &id));
    MaybeReopen();
    std::shared_lock<std::shared_mutex> hold(db_mu_);
    QM_RETURN_IF_ERROR(Writable("write a record"));
    std::lock_guard<std::mutex> lock(records_mu_);  // one process holds the folder: this is the CAS
    std::string v;
    const std::string key = RecordKey(collection, id);
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key, &v);
    uint64_t revision = 0;
    if (!s.IsNotFound()) {
      QM_RETURN_IF_ERROR(FromRocks(s, "read a record"));
      GovernedRecord r;
      if (!DecodeRecord(id, v, &r)) return Status::Corruption("bad " + collection + " record '" + id + "'");
      revision = r.revision;
    }
    if (revision != expected_revision) {
      return Status::Conflict(collection + " record '" + id + "' is at revision " + std::to_string(revision) +
                              ", not " + std::to_string(expected_revision) + ": a concurrent change won");
    }
    std::string stored;
    PutBigEndian(&stored, revision + 1);
    stored += value;
    std::string audit_key = AuditPrefix(collection, id);
    PutBigEndian(&audit_key, revision + 1);
    rocksdb::WriteBatch batch;
    batch.Put(key, stored);
    batch.Put(audit_key, audit);
    return Write(&batch, /*sync=*/true, "write a record");
  }

  Status DeleteRecord(const std::string& collection, const std::string& id, uint64_t expected_revision) override {
    QM_RETURN_IF_ERROR(CheckRecordName(collection, &id));
    MaybeReopen();
    std::shared_lock<std::shared_mutex> hold(db_mu_);
    QM_RETURN_IF_ERROR(Writable("delete a record"));
    std::lock_guard<std::mutex> lock(records_mu_);
    std::string v;
    const std::string key = RecordKey(collection, id);
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key, &v);
    if (s.IsNotFound()) return Status::NotFound("no " + collection + " record '" + id + "'");
    QM_RETURN_IF_ERROR(FromRocks(s, "read a record"));
    GovernedRecord r;
    if (!DecodeRecord(id, v, &r)) return Status::Corruption("bad " + collection + " record '" + id + "'");
    if (r.revision != expected_revision) {
      return Status::Conflict(collection + " record '" + id + "' is at revision " + std::to_string(r.revision) +
                              ", not " + std::to_string(expected_revision) + ": a concurrent change won");
    }
    rocksdb::WriteBatch batch;
    batch.Delete(key);
    std::string audit_key = AuditPrefix(collection, id);
    for (uint64_t k = 1; k <= r.revision; ++k) {
      std::string ak = audit_key;
      PutBigEndian(&ak, k);
      batch.Delete(ak);
    }
    return Write(&batch, /*sync=*/true, "delete a record");
  }

  Result<std::vector<std::string>> RecordAudit(const std::string& collection, const std::string& id) override {
    QM_RETURN_IF_ERROR(CheckRecordName(collection, &id));
    std::shared_lock<std::shared_mutex> hold(db_mu_);
    QM_RETURN_IF_ERROR(Readable());
    const std::string prefix = AuditPrefix(collection, id);
    std::vector<std::string> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      out.push_back(it->value().ToString());
    }
    QM_RETURN_IF_ERROR(FromRocks(it->status(), "read an audit log"));
    return out;
  }

  Status Health() override {
    MaybeReopen();
    {
      std::shared_lock<std::shared_mutex> hold(db_mu_);
      if (!config_.read_only) QM_RETURN_IF_ERROR(Writable("writes"));
    }
    return EventStore::Health();
  }

  const char* backend() const override { return "embedded"; }

 private:
  // A customer's records under `tag` with ts >= since, newest first, at most `limit`.
  template <typename Record>
  Result<std::vector<Record>> NewestFirst(char tag, const std::string& customer_id, TimeMs since, size_t limit,
                                          bool (*decode)(std::string_view, Record*), const char* what) {
    std::shared_lock<std::shared_mutex> hold(db_mu_);
    QM_RETURN_IF_ERROR(Readable());
    std::vector<Record> out;
    const std::string prefix = LogPrefix(customer_id, tag);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (SeekToNewest(it.get(), tag, customer_id); it->Valid() && out.size() < limit; it->Prev()) {
      if (!it->key().starts_with(prefix)) break;
      if (LogKeyTime(it->key(), prefix.size()) < since) break;
      Record r;
      if (!decode(std::string_view(it->value().data(), it->value().size()), &r)) {
        return Status::Corruption(std::string("bad ") + what + " record for customer '" + customer_id + "'");
      }
      out.push_back(std::move(r));
    }
    QM_RETURN_IF_ERROR(FromRocks(it->status(), "log"));
    return out;
  }

  // Compact's rewrites of one stripe's customers (those its scan found with records past their
  // horizons), kChunk at a time.
  Status CompactStripe(size_t s, const std::vector<std::string>& customers, TimeMs now, const StateOptions& options,
                       const rocksdb::WriteOptions& unsynced, const StepRunner& run) {
    constexpr size_t kChunk = 16;
    // Read past the block cache, as the scan does: the first compaction of an old store rewrites
    // most of its customers, and their blocks would evict what the pages read.
    rocksdb::ReadOptions past_cache;
    past_cache.fill_cache = false;
    struct Rewrite {
      const std::string* customer;
      std::string before;  // the encoded state as read without the lock
      CustomerState after;
    };
    std::vector<Rewrite> chunk;
    for (size_t from = 0; from < customers.size(); from += kChunk) {
      chunk.clear();
      const uint64_t writes = writes_[s].load(std::memory_order_acquire);
      for (size_t i = from; i < std::min(customers.size(), from + kChunk); ++i) {
        Rewrite r{&customers[i], {}, {}};
        rocksdb::Status got = db_->Get(past_cache, StateKey(customers[i]), &r.before);
        if (got.IsNotFound()) continue;
        QM_RETURN_IF_ERROR(FromRocks(got, "compact"));
        if (!DecodeState(r.before, &r.after))
          return Status::Corruption("bad contact state for customer '" + customers[i] + "'");
        if (CompactState(now, options, &r.after)) chunk.push_back(std::move(r));
      }
      if (chunk.empty()) continue;
      QM_RETURN_IF_ERROR(run([&] {
        std::lock_guard<std::mutex> lock(mu_[s]);  // not counted: it rewrites only what it read
        const bool unchanged = writes_[s].load(std::memory_order_acquire) == writes;
        rocksdb::WriteBatch batch;
        std::string current;
        for (Rewrite& r : chunk) {
          if (!unchanged) {  // a request took the stripe since: read again what it may have written
            rocksdb::Status got = db_->Get(past_cache, StateKey(*r.customer), &current);
            if (got.IsNotFound()) continue;
            QM_RETURN_IF_ERROR(FromRocks(got, "compact"));
            if (current != r.before) {
              if (!DecodeState(current, &r.after))
                return Status::Corruption("bad contact state for customer '" + *r.customer + "'");
              if (!CompactState(now, options, &r.after)) continue;
            }
          }
          PutState(&batch, *r.customer, r.after);
        }
        return batch.Count() > 0 ? Commit(unsynced, &batch, "compact") : Status::Ok();
      }));
    }
    return Status::Ok();
  }

  size_t Stripe(std::string_view customer) const { return std::hash<std::string_view>()(customer) % kStripes; }

  // Locks the stripes of every customer named, in stripe order (so batches never deadlock).
  std::vector<StripeLock> LockCustomers(const std::vector<std::string_view>& customers) {
    std::vector<size_t> stripes;
    for (std::string_view c : customers) stripes.push_back(Stripe(c));
    std::sort(stripes.begin(), stripes.end());
    stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
    std::vector<StripeLock> locks;
    locks.reserve(stripes.size());
    for (size_t st : stripes) locks.emplace_back(mu_[st], writes_[st]);
    return locks;
  }

  static Status CheckPlan(const ContactPlan& plan) {
    if (!ValidCustomer(plan.customer_id)) return Status::InvalidArgument("plan without a valid customer id");
    if (plan.max_take > 0 && plan.request_id.empty())
      return Status::InvalidArgument("a reservation needs a request id");
    return Status::Ok();
  }

  // Runs a reserving plan on the customer's state (REQUIRES the customer's stripe lock): the sends
  // it took go into `batch` as log records. *changed is set when the state must be written; *sync
  // when that write must reach the disk (anything but an expiring app_home reservation, unless
  // store.sync_reservations).
  PlanOutcome ReserveInBatch(const ContactPlan& plan, CustomerState* state, rocksdb::WriteBatch* batch, bool* changed,
                             bool* sync) const {
    PlanOutcome out =
        RunReserving(plan, state, changed, [&](const StoredEvent& e) { batch->Put(LogKey(e), EncodeEvent(e)); });
    if (*changed && (plan.expires == 0 || config_.sync_reservations)) *sync = true;
    return out;
  }

  // Writes `batch`; synced (when the store syncs at all) if `sync`.
  Status Write(rocksdb::WriteBatch* batch, bool sync, const char* what = "reserve") {
    rocksdb::WriteOptions wo = write_;
    if (!sync) wo.sync = false;
    return Commit(wo, batch, what);
  }

  // Every write goes through here (REQUIRES a hold of db_mu_). A write that fails for the disk
  // (full, or an I/O error) marks the store broken: RocksDB 7.8 must not write to a WAL after a
  // failed write to it (Debian's build asserts and aborts; fixed upstream in 9.x), so nothing is
  // written until MaybeReopen has closed and reopened the database.
  // A synced write is written unsynced, then made durable by Durable() (group commit outside
  // RocksDB's write queue): a synced write inside that queue holds every later write, the
  // unsynced ones of served pages too, until its fsync returns, and an fsync takes milliseconds
  // on a busy disk. The write is visible to readers before it is durable; it is acknowledged
  // only after.
  Status Commit(const rocksdb::WriteOptions& wo, rocksdb::WriteBatch* batch, const char* what) {
    rocksdb::WriteOptions unsynced = wo;
    unsynced.sync = false;
    rocksdb::Status s = db_->Write(unsynced, batch);
    if (s.ok() && wo.sync) s = Durable(db_->GetLatestSequenceNumber());
    if (s.IsIOError()) {
      std::lock_guard<std::mutex> lock(reopen_mu_);
      broken_reason_ = s.ToString();
      broken_ = true;
    }
    return FromRocks(s, what);
  }

  // Returns once the WAL is synced up to sequence number `seq` (a write that has returned): one
  // caller syncs everything written so far while the others wait and share its fsync.
  rocksdb::Status Durable(rocksdb::SequenceNumber seq) {
    std::unique_lock<std::mutex> lock(sync_mu_);
    for (;;) {
      if (synced_seq_ >= seq) return rocksdb::Status::OK();
      if (!syncing_) break;
      sync_cv_.wait(lock);
    }
    syncing_ = true;
    const rocksdb::SequenceNumber target = db_->GetLatestSequenceNumber();
    lock.unlock();
    rocksdb::Status s = db_->SyncWAL();
    lock.lock();
    syncing_ = false;
    if (s.ok()) synced_seq_ = std::max(synced_seq_, target);
    sync_cv_.notify_all();
    return s;
  }

  // Whether the database can be read (REQUIRES a hold of db_mu_).
  Status Readable() const {
    if (db_) return Status::Ok();
    std::lock_guard<std::mutex> lock(reopen_mu_);
    return Status::Unavailable("the event store is closed after a failed write (" + broken_reason_ +
                               ") and could not be reopened yet");
  }

  // Whether a write may go to the database now (REQUIRES a hold of db_mu_): it is open, no earlier
  // write failed since it was opened, and (check_space) the disk keeps [store] min_free_mb free.
  Status Writable(const char* what, bool check_space = true) {
    QM_RETURN_IF_ERROR(Readable());
    if (broken_) {
      std::lock_guard<std::mutex> lock(reopen_mu_);
      return Status::Unavailable(std::string(what) + ": an earlier write to the event store failed (" + broken_reason_ +
                                 "); it reopens when the disk works again. Nothing was written (retry)");
    }
    if (!check_space || config_.min_free_mb <= 0) return Status::Ok();
    const int64_t now =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count();
    if (now - space_checked_ms_.load(std::memory_order_relaxed) >= kSpaceCheckMs) {
      struct statvfs fs;
      if (statvfs(config_.path.c_str(), &fs) == 0) {
        free_bytes_.store(static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize));
      }
      space_checked_ms_.store(now, std::memory_order_relaxed);
    }
    const int64_t free_mb = free_bytes_.load() >> 20;
    if (free_mb >= config_.min_free_mb) return Status::Ok();
    return Status::Unavailable(std::string(what) + ": the event store's disk is full (" + std::to_string(free_mb) +
                               " MB free, [store] min_free_mb = " + std::to_string(config_.min_free_mb) +
                               "), nothing was written (retry)");
  }

  // After a failed write: closes the database and opens it again (at most every kReopenEvery),
  // so the next write goes to a new WAL. Until it succeeds writes are refused; reads go on while
  // the database is open.
  void MaybeReopen() {
    if (!broken_) return;
    {
      std::lock_guard<std::mutex> lock(reopen_mu_);
      const auto now = std::chrono::steady_clock::now();
      if (now - last_reopen_ < kReopenEvery) return;
      last_reopen_ = now;
    }
    std::unique_lock<std::shared_mutex> exclusive(db_mu_);
    if (!broken_) return;
    db_.reset();
    auto db = OpenDb(config_, filter_.get());
    std::lock_guard<std::mutex> lock(reopen_mu_);
    if (!db.ok()) {
      broken_reason_ = db.status().message();
      return;
    }
    db_ = std::move(*db);
    broken_ = false;
    broken_reason_.clear();
  }

  Status ReadState(const std::string& customer, CustomerState* state) {
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), StateKey(customer), &v);
    if (s.IsNotFound()) {
      state->records.clear();
      return Status::Ok();
    }
    QM_RETURN_IF_ERROR(FromRocks(s, "read state"));
    if (!DecodeState(v, state)) return Status::Corruption("bad contact state for customer '" + customer + "'");
    return Status::Ok();
  }

  static std::string RecordKey(const std::string& collection, const std::string& id) {
    std::string k = "r" + collection;
    k.push_back('\0');
    return k + id;
  }
  static std::string AuditPrefix(const std::string& collection, const std::string& id) {
    std::string k = "a" + collection;
    k.push_back('\0');
    k += id;
    k.push_back('\0');
    return k;
  }
  static bool DecodeRecord(const std::string& id, const std::string& v, GovernedRecord* r) {
    if (v.size() < 8) return false;
    r->id = id;
    r->revision = 0;
    for (size_t i = 0; i < 8; ++i) r->revision = r->revision << 8 | static_cast<uint8_t>(v[i]);
    r->value = v.substr(8);
    return true;
  }

  static void PutState(rocksdb::WriteBatch* b, const std::string& customer, const CustomerState& s) {
    if (s.records.empty())
      b->Delete(StateKey(customer));
    else
      b->Put(StateKey(customer), EncodeState(s));
  }

  // Sorted table files of at most about kFileBytes each, written in key order (SstFileWriter).
  class TableFiles {
   public:
    TableFiles(const rocksdb::Options& options, std::string stem) : options_(options), stem_(std::move(stem)) {}
    Status Put(const std::string& key, const std::string& value) {
      if (!writer_) {
        // The files stay in the page cache: by default SstFileWriter has the OS drop each MB it
        // writes, and the server's first reads of a freshly seeded store then went to the disk
        // (workers waiting on reads of up to 15 ms: docs/BENCHMARKS.md).
        writer_ = std::make_unique<rocksdb::SstFileWriter>(rocksdb::EnvOptions(), options_, nullptr,
                                                           /*invalidate_page_cache=*/false);
        files_.push_back(stem_ + "-" + std::to_string(files_.size()) + ".sst");
        QM_RETURN_IF_ERROR(FromRocks(writer_->Open(files_.back()), "seed the event store"));
      }
      QM_RETURN_IF_ERROR(FromRocks(writer_->Put(key, value), "seed the event store"));
      return writer_->FileSize() >= kFileBytes ? Close() : Status::Ok();
    }
    Status Close() {
      if (!writer_) return Status::Ok();
      rocksdb::Status s = writer_->Finish();
      writer_.reset();
      return FromRocks(s, "seed the event store");
    }
    const std::vector<std::string>& files() const { return files_; }

   private:
    static constexpr uint64_t kFileBytes = uint64_t{128} << 20;
    rocksdb::Options options_;
    std::string stem_;
    std::unique_ptr<rocksdb::SstFileWriter> writer_;
    std::vector<std::string> files_;
  };

  // The bulk load of an empty store: each customer's state and log records as Append computes
  // them, written in key order into table files, per part ('l' records and 's' states in files of
  // their own: the parts' id ranges follow each other, so no two files overlap), ingested into
  // the database at Finish.
  class BulkSeeder final : public Seeder {
   public:
    BulkSeeder(RocksStore* store, const StateOptions& options, const rocksdb::Options& table_options, std::string dir,
               int parts)
        : store_(store), options_(options), dir_(std::move(dir)), order_(parts) {
      for (int p = 0; p < parts; ++p) {
        const std::string stem = dir_ + "/" + std::to_string(p);
        parts_.push_back(std::make_unique<Part>(table_options, stem));
      }
    }
    ~BulkSeeder() override {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }

    Status Add(int part, const std::vector<StoredEvent>& events) override {
      QM_RETURN_IF_ERROR(order_.Check(part, events));
      if (events.empty()) return Status::Ok();
      Part& p = *parts_[static_cast<size_t>(part)];
      CustomerState state;
      p.records.clear();
      p.events.clear();
      for (const StoredEvent& e : events) p.events.push_back(&e);
      ApplyCustomerEvents(p.events, options_, &state,
                          [&](const StoredEvent& e) { p.records.emplace_back(LogKey(e), EncodeEvent(e)); });
      // Key order; of records with one key the last, as Append's batch keeps the last Put.
      std::stable_sort(p.records.begin(), p.records.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      for (size_t i = 0; i < p.records.size(); ++i) {
        if (i + 1 < p.records.size() && p.records[i + 1].first == p.records[i].first) continue;
        QM_RETURN_IF_ERROR(p.log.Put(p.records[i].first, p.records[i].second));
      }
      if (!state.records.empty()) {
        QM_RETURN_IF_ERROR(p.states.Put(StateKey(events[0].customer_id), EncodeState(state)));
      }
      return Status::Ok();
    }

    Status Finish() override {
      QM_RETURN_IF_ERROR(order_.CheckParts());
      std::vector<std::string> files;
      for (auto& p : parts_) {
        QM_RETURN_IF_ERROR(p->log.Close());
        files.insert(files.end(), p->log.files().begin(), p->log.files().end());
      }
      for (auto& p : parts_) {
        QM_RETURN_IF_ERROR(p->states.Close());
        files.insert(files.end(), p->states.files().begin(), p->states.files().end());
      }
      if (files.empty()) return Status::Ok();
      std::shared_lock<std::shared_mutex> hold(store_->db_mu_);
      QM_RETURN_IF_ERROR(store_->Writable("seed the event store"));
      rocksdb::IngestExternalFileOptions ingest;
      ingest.move_files = true;  // hard links: the files are not copied
      return FromRocks(store_->db_->IngestExternalFile(files, ingest), "seed the event store (ingest)");
    }

   private:
    struct Part {
      Part(const rocksdb::Options& options, const std::string& stem)
          : log(options, stem + "-log"), states(options, stem + "-state") {}
      TableFiles log, states;
      std::vector<std::pair<std::string, std::string>> records;  // one customer's, reused
      std::vector<const StoredEvent*> events;                    // likewise
    };

    RocksStore* store_;
    StateOptions options_;
    std::string dir_;
    SeedOrder order_;
    std::vector<std::unique_ptr<Part>> parts_;
  };

  std::shared_ptr<RetentionFilter> filter_;  // outlives db_ (declared before it)
  std::unique_ptr<rocksdb::DB> db_;
  StoreConfig config_;
  rocksdb::WriteOptions write_;
  std::array<std::mutex, kStripes> mu_;                   // mu_[Stripe(c)] guards customer c's state (StripeLock)
  std::array<std::atomic<uint64_t>, kStripes> writes_{};  // releases of mu_[s] by StripeLock
  std::mutex records_mu_;                                 // guards every governed record's read-compare-write
  // db_ may be closed and reopened (MaybeReopen): every public method holds db_mu_ shared while it
  // uses db_ (once: never nested), the reopen holds it exclusively.
  std::shared_mutex db_mu_;
  static constexpr std::chrono::seconds kReopenEvery{1};
  static constexpr int64_t kSpaceCheckMs = 100;  // statvfs at most this often
  mutable std::mutex reopen_mu_;                 // guards broken_reason_, last_reopen_
  std::atomic<bool> broken_{false};              // a write failed: nothing is written until reopened
  std::string broken_reason_;
  std::chrono::steady_clock::time_point last_reopen_{};
  std::atomic<int64_t> space_checked_ms_{-kSpaceCheckMs};
  std::atomic<int64_t> free_bytes_{INT64_MAX};
  std::mutex sync_mu_;  // guards synced_seq_, syncing_ (Durable's group commit)
  std::condition_variable sync_cv_;
  rocksdb::SequenceNumber synced_seq_ = 0;  // the WAL is synced up to here
  bool syncing_ = false;                    // a caller is in SyncWAL
};

}  // namespace

Result<std::unique_ptr<EventStore>> OpenRocksStore(const StoreConfig& config) {
  if (config.read_only) {
    // No lock: a reader beside the process that writes. It sees the store as of opening.
    if (!std::filesystem::exists(std::filesystem::path(config.path) / "CURRENT")) {
      return Status::NotFound("no event store at '" + config.path + "'");
    }
  } else {
    std::error_code ec;
    std::filesystem::create_directories(config.path, ec);
    if (ec) return Status::IoError("cannot create store folder '" + config.path + "': " + ec.message());
  }
  auto filter = std::make_shared<RetentionFilter>();
  QM_ASSIGN_OR_RETURN(std::unique_ptr<rocksdb::DB> db, OpenDb(config, filter.get()));
  auto store = std::make_unique<RocksStore>(filter, std::move(db), config);
  QM_RETURN_IF_ERROR(store->LoadHorizon());
  return std::unique_ptr<EventStore>(std::move(store));
}

}  // namespace qm::policy
