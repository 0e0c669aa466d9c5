// The event catalogue, business events and conditions on their attributes (trigger.h).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "qianmian/campaign/trigger.h"

namespace qm::campaign {

namespace {

using json = nlohmann::json;
constexpr AttrKind N = AttrKind::kNumber, T = AttrKind::kText;

bool ValidEventId(const std::string& s) {
  return !s.empty() && s.size() <= 64 &&
         s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-") == std::string::npos;
}

std::string AttrNames(const EventTypeInfo& t) {
  std::string out;
  for (const auto& [name, _] : t.attributes) out += (out.empty() ? "" : ", ") + name;
  return out.empty() ? "none" : out;
}

std::optional<AttrKind> KindOf(const EventTypeInfo& t, const std::string& attr) {
  for (const auto& [name, kind] : t.attributes) {
    if (name == attr) return kind;
  }
  return std::nullopt;
}

}  // namespace

const std::vector<EventTypeInfo>& EventTypes() {
  static const std::vector<EventTypeInfo> kTypes = {
      {"salary_credited", "a salary payment reached the customer's account", {{"amount", N}, {"employer", T}}},
      {"deposit_matured", "a time deposit matured", {{"amount", N}, {"product", T}, {"term_months", N}}},
      {"wealth_product_matured", "a wealth-management product matured", {{"amount", N}, {"product", T}}},
      {"large_inflow", "an unusually large incoming transfer", {{"amount", N}, {"counterparty", T}}},
      {"large_outflow", "an unusually large outgoing transfer", {{"amount", N}, {"counterparty", T}}},
      {"balance_low", "the balance fell below the customer's usual level", {{"balance", N}, {"change", N}}},
      {"card_activated", "a card was activated", {{"card_type", T}}},
      {"login", "the customer logged in", {{"channel", T}}},
  };
  return kTypes;
}

const EventTypeInfo* FindEventType(std::string_view name) {
  for (const EventTypeInfo& t : EventTypes()) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::string EventTypeNames() {
  std::string out;
  for (const EventTypeInfo& t : EventTypes()) out += (out.empty() ? "" : ", ") + t.name;
  return out;
}

Status CheckEvent(const BusinessEvent& e, const std::string& where) {
  auto bad = [&](const std::string& field, const std::string& why) {
    return Status::InvalidArgument(where + "." + field + ": " + why);
  };
  if (!ValidEventId(e.id)) return bad("event_id", "required: 1..64 letters, digits, '_', '.', ':' or '-'");
  if (e.customer_id.empty() || e.customer_id.size() > 256) return bad("customer_id", "required: 1..256 characters");
  const EventTypeInfo* t = FindEventType(e.type);
  if (!t) return bad("type", "unknown event type '" + e.type + "' (known: " + EventTypeNames() + ")");
  if (e.ts == kNoTime || e.ts < 0) return bad("ts_ms", "required: the event's time, ms since the epoch");
  for (const auto& [name, v] : e.numbers) {
    const auto kind = KindOf(*t, name);
    if (!kind) return bad("attrs." + name, "not an attribute of " + e.type + " (known: " + AttrNames(*t) + ")");
    if (*kind != AttrKind::kNumber) return bad("attrs." + name, "must be text");
    if (!std::isfinite(v)) return bad("attrs." + name, "must be a finite number");
  }
  for (const auto& [name, v] : e.texts) {
    const auto kind = KindOf(*t, name);
    if (!kind) return bad("attrs." + name, "not an attribute of " + e.type + " (known: " + AttrNames(*t) + ")");
    if (*kind != AttrKind::kText) return bad("attrs." + name, "must be a number");
    if (v.size() > 256) return bad("attrs." + name, "at most 256 characters");
  }
  return Status::Ok();
}

Result<BusinessEvent> ParseEvent(std::string_view json_text, const std::string& where) {
  json j = json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument(where + ": must be a JSON object");
  BusinessEvent e;
  for (const auto& [key, v] : j.items()) {
    const std::string field = where + "." + key;
    if (key == "event_id" || key == "customer_id" || key == "type") {
      if (!v.is_string()) return Status::InvalidArgument(field + ": must be a string");
      (key == "event_id" ? e.id : key == "customer_id" ? e.customer_id : e.type) = v.get<std::string>();
    } else if (key == "ts_ms") {
      if (!v.is_number_integer()) return Status::InvalidArgument(field + ": must be a whole number (ms)");
      e.ts = v.get<int64_t>();
    } else if (key == "attrs") {
      if (!v.is_object()) return Status::InvalidArgument(field + ": must be a map of attribute to value");
      for (const auto& [name, a] : v.items()) {
        if (a.is_number()) {
          e.numbers[name] = a.get<double>();
        } else if (a.is_string()) {
          e.texts[name] = a.get<std::string>();
        } else {
          return Status::InvalidArgument(field + "." + name + ": must be a number or a string");
        }
      }
    } else {
      return Status::InvalidArgument(field + ": unknown field (known: event_id, customer_id, type, ts_ms, attrs)");
    }
  }
  QM_RETURN_IF_ERROR(CheckEvent(e, where));
  return e;
}

std::string EventJson(const BusinessEvent& e) {
  json attrs = json::object();
  for (const auto& [k, v] : e.numbers) attrs[k] = v;
  for (const auto& [k, v] : e.texts) attrs[k] = v;
  return json{{"event_id", e.id}, {"customer_id", e.customer_id}, {"type", e.type}, {"ts_ms", e.ts}, {"attrs", attrs}}
      .dump();
}

// ---- EventCondition ---------------------------------------------------------------------------

struct EventCondition::Clause {
  std::string attr;
  AttrKind kind = AttrKind::kNumber;
  std::string op;                  // = != < <= > >= in "not in"
  std::vector<double> numbers;     // the value(s), numeric attributes
  std::vector<std::string> texts;  // the value(s), text attributes

  bool Matches(const BusinessEvent& e) const {
    const bool negative = op == "!=" || op == "not in";
    if (kind == AttrKind::kNumber) {
      auto it = e.numbers.find(attr);
      if (it == e.numbers.end()) return negative;
      const double v = it->second;
      if (op == "in" || op == "not in") {
        const bool in = std::find(numbers.begin(), numbers.end(), v) != numbers.end();
        return in != negative;
      }
      const double x = numbers[0];
      if (op == "=") return v == x;
      if (op == "!=") return v != x;
      if (op == "<") return v < x;
      if (op == "<=") return v <= x;
      if (op == ">") return v > x;
      return v >= x;
    }
    auto it = e.texts.find(attr);
    if (it == e.texts.end()) return negative;
    const bool in = std::find(texts.begin(), texts.end(), it->second) != texts.end();
    return in != negative;
  }
};

namespace {

// A tiny tokenizer: names/bare values, quoted strings, numbers, operators, '(' ',' ')'.
struct Lexer {
  std::string_view s;
  size_t pos = 0;

  void Skip() {
    while (pos < s.size() && std::isspace(static_cast<unsigned char>(s[pos]))) ++pos;
  }
  bool AtEnd() {
    Skip();
    return pos >= s.size();
  }
  // The next token; `quoted` set when it was a quoted string.
  Result<std::string> Next(bool* quoted = nullptr) {
    Skip();
    if (quoted) *quoted = false;
    if (pos >= s.size()) return Status::InvalidArgument("position " + std::to_string(pos + 1) + ": unexpected end");
    const char c = s[pos];
    if (c == '"' || c == '\'') {
      const size_t end = s.find(c, pos + 1);
      if (end == std::string_view::npos) {
        return Status::InvalidArgument("position " + std::to_string(pos + 1) + ": unterminated string");
      }
      std::string out(s.substr(pos + 1, end - pos - 1));
      pos = end + 1;
      if (quoted) *quoted = true;
      return out;
    }
    if (c == '(' || c == ')' || c == ',') return std::string(1, s[pos++]);
    if (c == '<' || c == '>' || c == '!' || c == '=') {
      std::string op(1, c);
      ++pos;
      if (pos < s.size() && s[pos] == '=') op += s[pos++];
      if (op == "!") return Status::InvalidArgument("position " + std::to_string(pos) + ": '!' must be '!='");
      if (op == "==") op = "=";
      return op;
    }
    const size_t start = pos;
    while (pos < s.size() && (std::isalnum(static_cast<unsigned char>(s[pos])) || s[pos] == '_' || s[pos] == '-' ||
                              s[pos] == '.' || s[pos] == ':' || s[pos] == '+')) {
      ++pos;
    }
    if (pos == start) {
      return Status::InvalidArgument("position " + std::to_string(pos + 1) + ": unexpected '" + std::string(1, c) +
                                     "'");
    }
    return std::string(s.substr(start, pos - start));
  }
};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Status AddValue(EventCondition::Clause* c, const std::string& v, bool quoted, size_t pos) {
  if (c->kind == AttrKind::kText) {
    c->texts.push_back(v);
    return Status::Ok();
  }
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (quoted || v.empty() || *end != '\0' || !std::isfinite(x)) {
    return Status::InvalidArgument("position " + std::to_string(pos) + ": '" + c->attr + "' is a number, not '" + v +
                                   "'");
  }
  c->numbers.push_back(x);
  return Status::Ok();
}

}  // namespace

Result<EventCondition> EventCondition::Compile(std::string_view text, const std::string& event_type) {
  const EventTypeInfo* t = FindEventType(event_type);
  if (!t) return Status::InvalidArgument("unknown event type '" + event_type + "' (known: " + EventTypeNames() + ")");
  EventCondition out;
  Lexer lx{text};
  while (!lx.AtEnd()) {
    if (!out.clauses_.empty()) {
      const size_t at = lx.pos + 1;
      QM_ASSIGN_OR_RETURN(std::string word, lx.Next());
      if (Lower(word) != "and") {
        return Status::InvalidArgument("position " + std::to_string(at) + ": expected 'and', not '" + word + "'");
      }
    }
    auto c = std::make_shared<Clause>();
    lx.Skip();
    const size_t attr_at = lx.pos + 1;
    QM_ASSIGN_OR_RETURN(c->attr, lx.Next());
    const auto kind = KindOf(*t, c->attr);
    if (!kind) {
      return Status::InvalidArgument("position " + std::to_string(attr_at) + ": '" + c->attr +
                                     "' is not an attribute of " + event_type + " (known: " + AttrNames(*t) + ")");
    }
    c->kind = *kind;
    lx.Skip();
    const size_t op_at = lx.pos + 1;
    QM_ASSIGN_OR_RETURN(std::string op, lx.Next());
    if (Lower(op) == "not") {
      QM_ASSIGN_OR_RETURN(std::string in, lx.Next());
      if (Lower(in) != "in") return Status::InvalidArgument("position " + std::to_string(op_at) + ": 'not' needs 'in'");
      op = "not in";
    } else if (Lower(op) == "in") {
      op = "in";
    }
    c->op = op;
    static const std::vector<std::string> kOps = {"=", "!=", "<", "<=", ">", ">=", "in", "not in"};
    if (std::find(kOps.begin(), kOps.end(), op) == kOps.end()) {
      return Status::InvalidArgument("position " + std::to_string(op_at) +
                                     ": expected an operator (= != < <= > >= in), "
                                     "not '" +
                                     op + "'");
    }
    if (c->kind == AttrKind::kText && op != "=" && op != "!=" && op != "in" && op != "not in") {
      return Status::InvalidArgument("position " + std::to_string(op_at) + ": '" + c->attr +
                                     "' is text: only =, !=, in and not in");
    }
    bool quoted = false;
    if (op == "in" || op == "not in") {
      QM_ASSIGN_OR_RETURN(std::string open, lx.Next());
      if (open != "(") return Status::InvalidArgument("position " + std::to_string(lx.pos) + ": expected '('");
      for (;;) {
        const size_t at = lx.pos + 1;
        QM_ASSIGN_OR_RETURN(std::string v, lx.Next(&quoted));
        QM_RETURN_IF_ERROR(AddValue(c.get(), v, quoted, at));
        QM_ASSIGN_OR_RETURN(std::string sep, lx.Next());
        if (sep == ")") break;
        if (sep != ",") return Status::InvalidArgument("position " + std::to_string(lx.pos) + ": expected ',' or ')'");
      }
    } else {
      const size_t at = lx.pos + 1;
      QM_ASSIGN_OR_RETURN(std::string v, lx.Next(&quoted));
      QM_RETURN_IF_ERROR(AddValue(c.get(), v, quoted, at));
    }
    out.clauses_.push_back(std::move(c));
  }
  return out;
}

bool EventCondition::Matches(const BusinessEvent& e) const {
  for (const auto& c : clauses_) {
    if (!c->Matches(e)) return false;
  }
  return true;
}

std::string DecisionJson(const TriggerDecision& d) {
  json j = {{"key", d.key},
            {"event_id", d.event_id},
            {"customer_id", d.customer_id},
            {"campaign_id", d.campaign_id},
            {"outcome", d.outcome},
            {"event_ts_ms", d.event_ts},
            {"decided_ms", d.decided_ms},
            {"replayed", d.replayed}};
  if (!d.skipped_by.empty()) j["skipped_by"] = d.skipped_by;
  if (!d.item_id.empty()) {
    j["item_id"] = d.item_id;
    j["channel"] = d.channel;
    if (!d.reason.empty()) j["reason"] = d.reason;
    j["send_at_ms"] = d.send_at;
    j["p_click"] = d.p_click;
    j["p_convert"] = d.p_convert;
  }
  if (d.due_ms != kNoTime) j["due_ms"] = d.due_ms;
  return j.dump();
}

}  // namespace qm::campaign
