// Online value on a generated bank: what a served page earns under the planted response model
// (truth/), beside the pages the oracle, the attribute oracle, the bank's old logging policy
// (as logged, segment targeting alone, popularity alone) and random choice would show the same
// customers at the same moment, laid out by the same page rules. Private to training.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "qianmian/core/dataset.h"
#include "qianmian/core/status.h"

namespace qm::training {

struct OnlineValueOptions {
  int customers = 2000;  // the bank's first customers (drawn i.i.d., so a fair sample)
  TimeMs at = kNoTime;   // when every page is shown: the held-out start (a local midnight)
  int page_size = 10;
  std::vector<int> slot_kinds;  // the page layout (0 product, 1 content, -1 either), as served
  int max_per_category = 0;     // diversity, as served
  int draws = 4;                // logging-policy and random pages: the mean over this many draws
  uint64_t seed = 42;
};

// The served page of `customer_id` at `at` (item ids, best first).
using ServePage = std::function<Status(const std::string& customer_id, TimeMs at, std::vector<std::string>* items)>;

// For each customer: every page's expected clicks (the sum of P(click | shown), given the
// customer's state then: fatigue included, the page's own items not) and expected converted
// value (P(click) x P(convert | click) x the item's value). Returns "value.<page>.clicks" and
// "value.<page>.converted_value" for page in served, oracle (ranked by true P(click)),
// value_oracle (ranked by true converted value), attribute_oracle (by the P(click) the customers'
// attributes imply), logging, segment_targeting, popularity, random; "value.customers"; and the
// served page's shares of the attribute oracle and of segment targeting. An empty map when
// `data_dir` is not a generated bank.
Result<std::map<std::string, double>> OnlineValue(const std::string& data_dir, const Dataset& ds,
                                                  const OnlineValueOptions& options, const ServePage& serve);

}  // namespace qm::training
