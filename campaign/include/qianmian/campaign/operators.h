// Operator accounts of the console (issue 19): a name, a role, an Argon2id password hash
// (libsodium's crypto_pwhash_str), disabled or not; and every operator's own append-only action
// log (logins, campaign transitions, reloads, customer lookups). Both are governed records of
// the event store, so every replica sharing a Redis store sees the same accounts, and an
// account's audit log holds every version of it (never a hash: only what changed).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qianmian/campaign/campaign.h"
#include "qianmian/core/status.h"
#include "qianmian/policy/event_store.h"

namespace qm::campaign {

// What an operator may do (the console's permission table is in server/src/console.cc):
// viewer reads; marketer drafts and submits (the maker); approver approves or rejects (the
// checker); service_agent looks up customers (attributes masked); admin everything.
enum class Role : uint8_t { kViewer, kMarketer, kApprover, kServiceAgent, kAdmin };

const char* RoleName(Role r);
std::optional<Role> ParseRole(std::string_view name);

struct OperatorAccount {
  std::string name;
  Role role = Role::kViewer;
  bool disabled = false;
  TimeMs created_at = 0;
  std::string created_by;
  TimeMs password_set_at = 0;  // sessions opened before it end
  TimeMs changed_at = 0;       // the last write (role, disabling, password)
  uint64_t revision = 0;
};

// One entry of an operator's action log.
struct OperatorAction {
  TimeMs ts = 0;
  std::string from;    // "console:127.0.0.1", "cli"
  std::string action;  // login, login_failed, logout, lookup, campaigns.transition, reload, users.add, ...
  std::string detail;  // e.g. "customer C0000028", "demo-1 -> approved"
};

// An account as the console and `qianmian user list` show it (never the hash): name, role,
// disabled, created_at, created_by, password_set_at, revision.
std::string OperatorAccountJson(const OperatorAccount& a);
// An action log entry: ts, from, action, detail.
std::string OperatorActionJson(const OperatorAction& a);

// Names: 1..64 of [A-Za-z0-9_.-]. Passwords: 10..256 bytes of UTF-8, not the name.
[[nodiscard]] Status CheckOperatorName(const std::string& name);
[[nodiscard]] Status CheckPassword(const std::string& name, const std::string& password);

// The operator accounts of one event store. Thread-safe (the store is).
class Operators {
 public:
  explicit Operators(policy::EventStore* store);

  // AlreadyExists for a taken name; InvalidArgument for a bad name, role or password.
  [[nodiscard]] Result<OperatorAccount> Add(const std::string& name, Role role, const std::string& password,
                                            const Actor& by);
  [[nodiscard]] Result<OperatorAccount> SetPassword(const std::string& name, const std::string& password,
                                                    const Actor& by);
  [[nodiscard]] Result<OperatorAccount> SetRole(const std::string& name, Role role, const Actor& by);
  [[nodiscard]] Result<OperatorAccount> SetDisabled(const std::string& name, bool disabled, const Actor& by);
  [[nodiscard]] Result<OperatorAccount> Get(const std::string& name) const;  // NotFound naming it
  [[nodiscard]] Result<std::vector<OperatorAccount>> List() const;
  // The account's own audit log (one JSON object per write: revision, ts, who, from, action).
  [[nodiscard]] Result<std::vector<std::string>> AccountAudit(const std::string& name) const;

  // A login: the account when `password` is its password and it is not disabled; otherwise
  // PermissionDenied "wrong name or password" (the same words, and about the same time, whether
  // the name exists or not) or "account disabled". Argon2id takes ~0.1 s and 64 MiB by design.
  [[nodiscard]] Result<OperatorAccount> Verify(const std::string& name, const std::string& password) const;

  // Appends to operator `who`'s action log; the entries of a name that is no account (a failed
  // login's, a command line user's) go to "_unknown", the name in the detail. Retries
  // compare-and-set conflicts with concurrent appends.
  [[nodiscard]] Status LogAction(const std::string& who, const OperatorAction& action);
  // `who`'s action log, oldest first ("_unknown": the names that are no account).
  [[nodiscard]] Result<std::vector<OperatorAction>> Actions(const std::string& who) const;

 private:
  Result<OperatorAccount> Change(const std::string& name, const Actor& by, const std::string& action,
                                 const std::function<void(OperatorAccount*, std::string* hash)>& edit);
  policy::EventStore* store_;
};

}  // namespace qm::campaign
