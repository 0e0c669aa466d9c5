// Module policy: the contact policy and the event store. May depend on: core; RocksDB, hiredis
// (private).
// The decision log (issue 17, SPEC §7): what the engine decided to show or send, and why. Every
// item of a served page, every push send and every ghost (the would-be send to a customer in a
// control arm: recorded, never sent, never counted against a cap) is one DecisionRecord, kept by
// the event store beside the events (EventStore::AppendDecisions) with the same retention.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qianmian/core/types.h"

namespace qm::policy {

enum class DecisionKind : uint8_t {
  kServed = 0,    // an item of a page served by Engine::Recommend
  kPushSend = 1,  // a push run's send
  kGhost = 2,     // a control-arm customer's would-be push send: never sent or counted
};
inline constexpr int kNumDecisionKinds = 3;
// "served" | "push_send" | "ghost".
const char* DecisionKindName(DecisionKind k);
std::optional<DecisionKind> ParseDecisionKind(std::string_view name);

struct DecisionRecord {
  TimeMs ts = 0;            // when decided (a push send: its send time)
  std::string request_id;   // the serving request id or the push run id
  std::string customer_id;  // REQUIRES non-empty, no '\0'
  std::string channel;      // channel name
  std::string item_id;
  int position = 0;  // 0-based place on the page / in the customer's sends
  double score = 0;  // the re-rank score
  float p_click = 0, p_convert = 0;
  std::string model_version;
  std::vector<std::string> arms;     // "<layer>=<arm>" per layer, or "holdout"; empty without experiments
  std::vector<std::string> reasons;  // the item's reason codes, as in the reply
  DecisionKind kind = DecisionKind::kServed;
  bool operator==(const DecisionRecord& o) const;
};

// The stored form of a record (binary, versioned; the same in both backends) and back. Decode
// returns false for anything that is not a record.
std::string EncodeDecision(const DecisionRecord& d);
bool DecodeDecision(std::string_view data, DecisionRecord* d);

// A page: records with the same time, kind, request, customer, channel, model version and arms.
// The embedded store keeps a page's items as one value with the shared fields once: a ten-item
// page is one write instead of ten, a third of the bytes (issue 20's soak).
bool SameDecisionPage(const DecisionRecord& a, const DecisionRecord& b);
// REQUIRES n >= 1 and every record SameDecisionPage as records[0].
std::string EncodeDecisionPage(const DecisionRecord* records, size_t n);
// Appends the records of a stored value of either form (EncodeDecision or EncodeDecisionPage) to
// *out; false, with *out as it was, for anything that is neither.
bool DecodeDecisions(std::string_view data, std::vector<DecisionRecord>* out);

}  // namespace qm::policy
