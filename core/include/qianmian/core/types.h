// Module core: the foundation: Status, domain types, CSV, time, configuration, dataset loading. May
// depend on: the standard library; toml++ and date (private).
// Domain types of SPEC §1: customers, items, events, channels, and the string dictionaries
// that keep them compact (1M customers, 100k items and 30M events fit in well under 8 GB).
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "qianmian/core/status.h"

namespace qm {

// Unix epoch milliseconds (UTC).
using TimeMs = int64_t;
inline constexpr TimeMs kNoTime = std::numeric_limits<TimeMs>::min();
inline constexpr TimeMs kMsPerSecond = 1000;
inline constexpr TimeMs kMsPerMinute = 60 * kMsPerSecond;
inline constexpr TimeMs kMsPerHour = 60 * kMsPerMinute;
inline constexpr TimeMs kMsPerDay = 24 * kMsPerHour;

enum class Tier : uint8_t { kMass = 0, kAffluent = 1, kPrivate = 2 };
inline constexpr int kNumTiers = 3;
const char* TierName(Tier t);
std::optional<Tier> ParseTier(std::string_view s);

enum class ItemKind : uint8_t { kProduct = 0, kContent = 1 };
const char* ItemKindName(ItemKind k);
std::optional<ItemKind> ParseItemKind(std::string_view s);

enum class EventType : uint8_t {
  kImpression = 0,
  kClick = 1,
  kConvert = 2,
  kDismiss = 3,
  kPushSent = 4,
  kPushOpen = 5,
  // The customer withdrew consent to marketing on the event's channel (e.g. unfollowed after the
  // event's item was pushed). Kept in the contact state for good: SPEC §6's consent rule then
  // blocks every marketing item on that channel, as the customer's `opt_out` attribute does.
  kOptOut = 6,
};
inline constexpr int kNumEventTypes = 7;
const char* EventTypeName(EventType t);
std::optional<EventType> ParseEventType(std::string_view s);
// Click, convert and push_open: the events that mean "the customer wanted this".
inline bool IsPositive(EventType t) {
  return t == EventType::kClick || t == EventType::kConvert || t == EventType::kPushOpen;
}

// Risk: customer tolerance C1..C5 and product risk R1..R5 are both stored as 1..5;
// 0 means "none" (no assessment for a customer; not an investment product for an item).
using RiskLevel = uint8_t;
inline constexpr RiskLevel kNoRisk = 0;
// Parses "C3"/"R3" (prefix given) or "3"; empty -> kNoRisk. nullopt when malformed.
std::optional<RiskLevel> ParseRisk(std::string_view s, char prefix);

// Channel ids are small integers: 0 = app_home, 1 = wechat_push, then declared channels.
using ChannelId = uint8_t;
inline constexpr ChannelId kAppHome = 0;
inline constexpr ChannelId kWechatPush = 1;
inline constexpr int kMaxChannels = 32;  // channel sets are 32-bit masks
using ChannelMask = uint32_t;            // bit c set = channel c; 0 in an item = all channels

class ChannelRegistry {
 public:
  ChannelRegistry();  // app_home and wechat_push
  // Declares a channel; idempotent. InvalidArgument for a bad name or more than kMaxChannels.
  Status Declare(std::string_view name);
  std::optional<ChannelId> Find(std::string_view name) const;
  const std::string& Name(ChannelId id) const { return names_[id]; }
  int size() const { return static_cast<int>(names_.size()); }

 private:
  std::vector<std::string> names_;
};

// Interns strings as dense uint32 codes 0..size()-1. Not thread-safe for writers.
class Dictionary {
 public:
  uint32_t Intern(std::string_view s);
  std::optional<uint32_t> Find(std::string_view s) const;
  const std::string& Name(uint32_t code) const { return names_[code]; }
  uint32_t size() const { return static_cast<uint32_t>(names_.size()); }

 private:
  std::vector<std::string> names_;
  std::unordered_map<std::string, uint32_t> codes_;
};

struct Customer {
  std::string id;
  Tier tier = Tier::kMass;
  RiskLevel risk = kNoRisk;        // tolerance C1..C5 as 1..5; kNoRisk = never assessed
  TimeMs risk_assessed = kNoTime;  // when the tolerance was assessed
  uint32_t region = 0;             // Dataset::regions code; 0 is "" (unknown)
  std::vector<uint32_t> tags;      // Dataset::labels codes, sorted, unique
  std::vector<uint32_t> holdings;  // item indexes of held products, sorted, unique
  ChannelMask opt_out = 0;         // channels the customer opted out of (marketing)
};

// The fields every request reads of each of its few hundred candidates (the policy's stateless
// rules, the rank stage, the page layout) come first and fill the first 64 bytes: with the item
// aligned to a cache line, one line of a candidate is read instead of four (the item array is tens
// of megabytes, and each candidate's first touch was a miss of its own).
struct alignas(64) Item {
  ItemKind kind = ItemKind::kContent;
  RiskLevel risk = kNoRisk;  // R1..R5 as 1..5; kNoRisk = not an investment product
  uint8_t tiers = 0;         // bit t = Tier t eligible; 0 = all tiers
  bool service = false;      // service message (not marketing)
  uint32_t category = 0;     // Dataset::categories code; 0 is ""
  ChannelMask channels = 0;  // 0 = all channels
  uint32_t campaign = 0;     // Dataset::campaigns code; 0 = no campaign
  float value = 1.0f;        // business value of a conversion
  float boost = 1.0f;        // operator boost
  TimeMs start = kNoTime;    // validity window [start, end); kNoTime = open
  TimeMs end = kNoTime;
  std::vector<uint32_t> regions;  // Dataset::regions codes; empty = all regions
  // Read for the served items only.
  std::string id;
  std::string title;
  std::vector<uint32_t> tags;  // Dataset::item_tags codes, sorted, unique
  std::string text;            // body (content)
};

// Events as columns (structure of arrays): 22 bytes an event plus request ids.
struct EventLog {
  std::vector<TimeMs> ts;
  std::vector<uint32_t> customer;  // customer index
  std::vector<uint32_t> item;      // item index
  std::vector<EventType> type;
  std::vector<ChannelId> channel;
  std::vector<uint32_t> request;  // index into request_ids; 0 = none

  // Request ids, each stored once per run of equal consecutive ids; request_ids[0] is "".
  std::vector<uint64_t> request_offsets{0, 0};
  std::string request_chars;

  size_t size() const { return ts.size(); }
  std::string_view RequestId(size_t event) const;
  // Appends one event. request may be empty.
  void Append(TimeMs t, uint32_t cust, uint32_t it, EventType ty, ChannelId ch, std::string_view request_id);
  void Reserve(size_t n);
};

}  // namespace qm
