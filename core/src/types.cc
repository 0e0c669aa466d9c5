#include "qianmian/core/types.h"

#include <cctype>

namespace qm {

const char* TierName(Tier t) {
  switch (t) {
    case Tier::kMass:
      return "mass";
    case Tier::kAffluent:
      return "affluent";
    case Tier::kPrivate:
      return "private";
  }
  return "?";
}

std::optional<Tier> ParseTier(std::string_view s) {
  if (s == "mass") return Tier::kMass;
  if (s == "affluent") return Tier::kAffluent;
  if (s == "private") return Tier::kPrivate;
  return std::nullopt;
}

const char* ItemKindName(ItemKind k) { return k == ItemKind::kProduct ? "product" : "content"; }

std::optional<ItemKind> ParseItemKind(std::string_view s) {
  if (s == "product") return ItemKind::kProduct;
  if (s == "content") return ItemKind::kContent;
  return std::nullopt;
}

const char* EventTypeName(EventType t) {
  switch (t) {
    case EventType::kImpression:
      return "impression";
    case EventType::kClick:
      return "click";
    case EventType::kConvert:
      return "convert";
    case EventType::kDismiss:
      return "dismiss";
    case EventType::kPushSent:
      return "push_sent";
    case EventType::kPushOpen:
      return "push_open";
    case EventType::kOptOut:
      return "opt_out";
  }
  return "?";
}

std::optional<EventType> ParseEventType(std::string_view s) {
  for (int i = 0; i < kNumEventTypes; ++i) {
    if (s == EventTypeName(static_cast<EventType>(i))) return static_cast<EventType>(i);
  }
  return std::nullopt;
}

std::optional<RiskLevel> ParseRisk(std::string_view s, char prefix) {
  if (s.empty()) return kNoRisk;
  if (s.size() == 2 && (s[0] == prefix || s[0] == prefix + ('a' - 'A'))) s.remove_prefix(1);
  if (s.size() == 1 && s[0] >= '1' && s[0] <= '5') return static_cast<RiskLevel>(s[0] - '0');
  return std::nullopt;
}

ChannelRegistry::ChannelRegistry() : names_{"app_home", "wechat_push"} {}

Status ChannelRegistry::Declare(std::string_view name) {
  if (Find(name)) return Status::Ok();
  if (name.empty()) return Status::InvalidArgument("empty channel name");
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) {
      return Status::InvalidArgument("bad channel name '" + std::string(name) +
                                     "' (letters, digits, '_' and '-' only)");
    }
  }
  if (names_.size() >= kMaxChannels) {
    return Status::InvalidArgument("more than " + std::to_string(kMaxChannels) + " channels");
  }
  names_.emplace_back(name);
  return Status::Ok();
}

std::optional<ChannelId> ChannelRegistry::Find(std::string_view name) const {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return static_cast<ChannelId>(i);
  }
  return std::nullopt;
}

uint32_t Dictionary::Intern(std::string_view s) {
  auto it = codes_.find(std::string(s));
  if (it != codes_.end()) return it->second;
  uint32_t code = static_cast<uint32_t>(names_.size());
  names_.emplace_back(s);
  codes_.emplace(names_.back(), code);
  return code;
}

std::optional<uint32_t> Dictionary::Find(std::string_view s) const {
  auto it = codes_.find(std::string(s));
  if (it == codes_.end()) return std::nullopt;
  return it->second;
}

std::string_view EventLog::RequestId(size_t event) const {
  uint32_t r = request[event];
  return std::string_view(request_chars).substr(request_offsets[r], request_offsets[r + 1] - request_offsets[r]);
}

void EventLog::Append(TimeMs t, uint32_t cust, uint32_t it, EventType ty, ChannelId ch, std::string_view request_id) {
  ts.push_back(t);
  customer.push_back(cust);
  item.push_back(it);
  type.push_back(ty);
  channel.push_back(ch);
  if (request_id.empty()) {
    request.push_back(0);
    return;
  }
  uint32_t last = static_cast<uint32_t>(request_offsets.size() - 2);
  if (last > 0) {
    std::string_view prev = std::string_view(request_chars)
                                .substr(request_offsets[last], request_offsets[last + 1] - request_offsets[last]);
    if (prev == request_id) {
      request.push_back(last);
      return;
    }
  }
  request_chars.append(request_id);
  request_offsets.push_back(request_chars.size());
  request.push_back(last + 1);
}

void EventLog::Reserve(size_t n) {
  ts.reserve(n);
  customer.reserve(n);
  item.reserve(n);
  type.reserve(n);
  channel.reserve(n);
  request.reserve(n);
}

}  // namespace qm
