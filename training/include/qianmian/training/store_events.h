// Module training: offline training and evaluation runs. May depend on: core, metrics, features,
// recall, rank, policy; artifacts, Eigen (private).
// The loop serve -> feedback -> train: events recorded in the event store (SPEC §6: after
// events.csv seeded it, the store is the record) are added to a dataset for training.
#pragma once

#include <cstdint>

#include "qianmian/core/dataset.h"
#include "qianmian/core/status.h"
#include "qianmian/policy/event_store.h"

namespace qm::training {

struct StoreMergeStats {
  uint64_t read = 0;              // events exported from the store
  uint64_t added = 0;             // appended to the dataset (not in events.csv)
  uint64_t duplicates = 0;        // already in events.csv (e.g. seeded from it)
  uint64_t unknown_customer = 0;  // customer or item not in the data files: skipped, counted
  uint64_t unknown_item = 0;
  uint64_t unknown_channel = 0;
};

// Appends to ds->events every store event that events.csv does not already hold (same time,
// customer, item, type and channel). Customers and items missing from the files are counted and
// skipped. The store is only read.
Status MergeStoreEvents(policy::EventStore& store, Dataset* ds, StoreMergeStats* stats);

}  // namespace qm::training
