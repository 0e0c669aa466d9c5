// Operator accounts and action logs over the event store's governed records (operators.h).
#include "qianmian/campaign/operators.h"

#include <sodium.h>

#include <nlohmann/json.hpp>

#include "qianmian/core/time.h"
#include "qianmian/core/utf8.h"

namespace qm::campaign {

namespace {

using json = nlohmann::json;

constexpr const char* kAccounts = "operators";
constexpr const char* kActions = "operator_actions";
constexpr const char* kUnknown = "_unknown";  // the action log of names that are no account

Status InitSodium() {
  static const int rc = sodium_init();  // thread-safe, idempotent
  if (rc < 0) return Status::Internal("libsodium could not be initialised");
  return Status::Ok();
}

Result<std::string> Hash(const std::string& password) {
  QM_RETURN_IF_ERROR(InitSodium());
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    return Status::ResourceExhausted("Argon2id needs 64 MiB of memory and could not get it");
  }
  return std::string(out);
}

TimeMs Now(const Actor& a) { return a.now == kNoTime ? NowMs() : a.now; }

// The fields an account shows (the CLI's list, the console); the stored record adds the rest.
json ShownFields(const OperatorAccount& a) {
  return json{{"name", a.name},
              {"role", RoleName(a.role)},
              {"disabled", a.disabled},
              {"created_at", a.created_at},
              {"created_by", a.created_by},
              {"password_set_at", a.password_set_at}};
}

json AccountJson(const OperatorAccount& a, const std::string& hash) {
  json j = ShownFields(a);
  j["changed_at"] = a.changed_at;
  j["hash"] = hash;
  return j;
}

Result<OperatorAccount> FromRecord(const policy::GovernedRecord& r, std::string* hash) {
  const json j = json::parse(r.value, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption("operator record '" + r.id + "' is not JSON");
  OperatorAccount a;
  a.name = j.value("name", r.id);
  const std::optional<Role> role = ParseRole(j.value("role", ""));
  if (!role) return Status::Corruption("operator record '" + r.id + "' has an unknown role");
  a.role = *role;
  a.disabled = j.value("disabled", false);
  a.created_at = j.value("created_at", TimeMs{0});
  a.created_by = j.value("created_by", "");
  a.password_set_at = j.value("password_set_at", TimeMs{0});
  a.changed_at = j.value("changed_at", TimeMs{0});
  a.revision = r.revision;
  if (hash) *hash = j.value("hash", "");
  return a;
}

// The hash a missing account is "verified" against, so that a wrong name takes as long as a
// wrong password.
const std::string& DummyHash() {
  static const std::string h = [] {
    Result<std::string> r = Hash("not a password of anyone: qianmian");
    return r.ok() ? *r : std::string();
  }();
  return h;
}

}  // namespace

const char* RoleName(Role r) {
  switch (r) {
    case Role::kViewer:
      return "viewer";
    case Role::kMarketer:
      return "marketer";
    case Role::kApprover:
      return "approver";
    case Role::kServiceAgent:
      return "service_agent";
    case Role::kAdmin:
      return "admin";
  }
  return "viewer";
}

std::optional<Role> ParseRole(std::string_view name) {
  for (Role r : {Role::kViewer, Role::kMarketer, Role::kApprover, Role::kServiceAgent, Role::kAdmin}) {
    if (name == RoleName(r)) return r;
  }
  return std::nullopt;
}

std::string OperatorAccountJson(const OperatorAccount& a) {
  json j = ShownFields(a);
  j["revision"] = a.revision;
  return j.dump();
}

std::string OperatorActionJson(const OperatorAction& a) {
  return json{{"ts", a.ts}, {"from", a.from}, {"action", a.action}, {"detail", a.detail}}.dump();
}

Status CheckOperatorName(const std::string& name) {
  if (name.empty() || name.size() > 64 ||
      name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") !=
          std::string::npos ||
      name[0] == '_') {
    return Status::InvalidArgument("'name': 1..64 letters, digits, '_', '.' or '-', not starting with '_' (got '" +
                                   ToValidUtf8(name.substr(0, 80)) + "')");
  }
  return Status::Ok();
}

Status CheckPassword(const std::string& name, const std::string& password) {
  if (password.size() < 10) return Status::InvalidArgument("'password': at least 10 characters");
  if (password.size() > 256) return Status::InvalidArgument("'password': at most 256 bytes");
  if (FirstInvalidUtf8(password) != std::string::npos) return Status::InvalidArgument("'password': not UTF-8");
  if (password == name) return Status::InvalidArgument("'password': must not be the account's name");
  return Status::Ok();
}

Operators::Operators(policy::EventStore* store) : store_(store) {}

Result<OperatorAccount> Operators::Add(const std::string& name, Role role, const std::string& password,
                                       const Actor& by) {
  if (by.who.empty()) return Status::InvalidArgument("'operator': required (who makes the change)");
  QM_RETURN_IF_ERROR(CheckOperatorName(name));
  QM_RETURN_IF_ERROR(CheckPassword(name, password));
  Result<policy::GovernedRecord> cur = store_->ReadRecord(kAccounts, name);
  if (cur.ok()) return Status::AlreadyExists("operator '" + name + "' exists");
  if (cur.status().code() != StatusCode::kNotFound) return cur.status();
  QM_ASSIGN_OR_RETURN(std::string hash, Hash(password));
  const TimeMs now = Now(by);
  OperatorAccount a;
  a.name = name;
  a.role = role;
  a.created_at = a.password_set_at = a.changed_at = now;
  a.created_by = by.who;
  a.revision = 1;
  const std::string audit = json{{"revision", 1},   {"ts", now},       {"who", by.who},
                                 {"from", by.from}, {"action", "add"}, {"role", RoleName(role)}}
                                .dump();
  Status st = store_->WriteRecord(kAccounts, name, 0, AccountJson(a, hash).dump(), audit);
  if (st.code() == StatusCode::kConflict) return Status::AlreadyExists("operator '" + name + "' exists");
  QM_RETURN_IF_ERROR(st);
  return a;
}

Result<OperatorAccount> Operators::Change(const std::string& name, const Actor& by, const std::string& action,
                                          const std::function<void(OperatorAccount*, std::string*)>& edit) {
  if (by.who.empty()) return Status::InvalidArgument("'operator': required (who makes the change)");
  QM_RETURN_IF_ERROR(CheckOperatorName(name));
  for (int attempt = 0; attempt < 20; ++attempt) {
    Result<policy::GovernedRecord> r = store_->ReadRecord(kAccounts, name);
    if (r.status().code() == StatusCode::kNotFound) return Status::NotFound("no operator '" + name + "'");
    QM_RETURN_IF_ERROR(r.status());
    std::string hash;
    QM_ASSIGN_OR_RETURN(OperatorAccount a, FromRecord(*r, &hash));
    edit(&a, &hash);
    a.changed_at = Now(by);
    a.revision = r->revision + 1;
    const std::string audit =
        json{{"revision", a.revision}, {"ts", a.changed_at},       {"who", by.who},         {"from", by.from},
             {"action", action},       {"role", RoleName(a.role)}, {"disabled", a.disabled}}
            .dump();
    Status st = store_->WriteRecord(kAccounts, name, r->revision, AccountJson(a, hash).dump(), audit);
    if (st.code() == StatusCode::kConflict) continue;
    QM_RETURN_IF_ERROR(st);
    return a;
  }
  return Status::Conflict("operator '" + name + "' keeps changing; try again");
}

Result<OperatorAccount> Operators::SetPassword(const std::string& name, const std::string& password, const Actor& by) {
  QM_RETURN_IF_ERROR(CheckPassword(name, password));
  QM_ASSIGN_OR_RETURN(std::string fresh, Hash(password));
  const TimeMs now = Now(by);
  return Change(name, by, "passwd", [&](OperatorAccount* a, std::string* hash) {
    *hash = fresh;
    a->password_set_at = now;
  });
}

Result<OperatorAccount> Operators::SetRole(const std::string& name, Role role, const Actor& by) {
  return Change(name, by, "role", [&](OperatorAccount* a, std::string*) { a->role = role; });
}

Result<OperatorAccount> Operators::SetDisabled(const std::string& name, bool disabled, const Actor& by) {
  return Change(name, by, disabled ? "disable" : "enable",
                [&](OperatorAccount* a, std::string*) { a->disabled = disabled; });
}

Result<OperatorAccount> Operators::Get(const std::string& name) const {
  QM_RETURN_IF_ERROR(CheckOperatorName(name));
  Result<policy::GovernedRecord> r = store_->ReadRecord(kAccounts, name);
  if (r.status().code() == StatusCode::kNotFound) return Status::NotFound("no operator '" + name + "'");
  QM_RETURN_IF_ERROR(r.status());
  return FromRecord(*r, nullptr);
}

Result<std::vector<OperatorAccount>> Operators::List() const {
  QM_ASSIGN_OR_RETURN(std::vector<policy::GovernedRecord> records, store_->ListRecords(kAccounts));
  std::vector<OperatorAccount> out;
  for (const policy::GovernedRecord& r : records) {
    QM_ASSIGN_OR_RETURN(OperatorAccount a, FromRecord(r, nullptr));
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::vector<std::string>> Operators::AccountAudit(const std::string& name) const {
  QM_RETURN_IF_ERROR(CheckOperatorName(name));
  return store_->RecordAudit(kAccounts, name);
}

Result<OperatorAccount> Operators::Verify(const std::string& name, const std::string& password) const {
  QM_RETURN_IF_ERROR(InitSodium());
  const Status wrong = Status::PermissionDenied("wrong name or password");
  std::string hash;
  Result<OperatorAccount> a = Status::NotFound("");
  if (CheckOperatorName(name).ok()) {
    Result<policy::GovernedRecord> r = store_->ReadRecord(kAccounts, name);
    if (!r.ok() && r.status().code() != StatusCode::kNotFound) return r.status();  // the store is down
    if (r.ok()) a = FromRecord(*r, &hash);
  }
  if (!a.ok()) {
    const std::string& dummy = DummyHash();
    (void)crypto_pwhash_str_verify(dummy.c_str(), password.data(), password.size());
    return wrong;
  }
  if (crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) != 0) return wrong;
  if (a->disabled) return Status::PermissionDenied("account disabled");
  return a;
}

Status Operators::LogAction(const std::string& who, const OperatorAction& action) {
  std::string id = who;
  OperatorAction entry = action;
  bool account = CheckOperatorName(who).ok();
  if (account) {
    Result<policy::GovernedRecord> r = store_->ReadRecord(kAccounts, who);
    if (!r.ok() && r.status().code() != StatusCode::kNotFound) return r.status();
    account = r.ok();
  }
  if (!account) {
    id = kUnknown;
    entry.detail = "name '" + ToValidUtf8(who.substr(0, 64)) + "'" + (entry.detail.empty() ? "" : "; " + entry.detail);
  }
  const std::string audit = json{{"ts", entry.ts == 0 ? NowMs() : entry.ts},
                                 {"from", entry.from},
                                 {"action", entry.action},
                                 {"detail", ToValidUtf8(entry.detail)}}
                                .dump();
  for (int attempt = 0; attempt < 50; ++attempt) {
    uint64_t revision = 0;
    Result<policy::GovernedRecord> r = store_->ReadRecord(kActions, id);
    if (r.ok()) {
      revision = r->revision;
    } else if (r.status().code() != StatusCode::kNotFound) {
      return r.status();
    }
    Status st = store_->WriteRecord(kActions, id, revision, json{{"entries", revision + 1}}.dump(), audit);
    if (st.code() != StatusCode::kConflict) return st;
  }
  return Status::Conflict("operator '" + id + "''s action log keeps changing; the action was not logged");
}

Result<std::vector<OperatorAction>> Operators::Actions(const std::string& who) const {
  const std::string id = who == kUnknown || !CheckOperatorName(who).ok() ? std::string(kUnknown) : who;
  QM_ASSIGN_OR_RETURN(std::vector<std::string> entries, store_->RecordAudit(kActions, id));
  std::vector<OperatorAction> out;
  out.reserve(entries.size());
  for (const std::string& e : entries) {
    const json j = json::parse(e, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Status::Corruption("operator action log of '" + id + "'");
    out.push_back({j.value("ts", TimeMs{0}), j.value("from", ""), j.value("action", ""), j.value("detail", "")});
  }
  return out;
}

}  // namespace qm::campaign
