// Module policy: the contact policy and the event store. May depend on: core; RocksDB, hiredis
// (private).
// policy's settings: the contact policy (SPEC §6, the [policy] section of the engine's TOML file)
// and the event store ([store]), each read by one function next to it; and the stable names of
// the rules that can block an item (`blocked_by` in `score`/`debug` replies).
#pragma once

#include <string>
#include <vector>

#include "qianmian/core/config.h"
#include "qianmian/core/types.h"

namespace qm::policy {

// Stable `blocked_by` names. Clients and dashboards rely on these strings: never rename one.
namespace blocked {
inline constexpr const char* kConsent = "consent";          // marketing opt-out
inline constexpr const char* kSuitability = "suitability";  // risk vs tolerance/age
inline constexpr const char* kTier = "eligibility.tier";
inline constexpr const char* kRegion = "eligibility.region";
inline constexpr const char* kChannel = "eligibility.channel";      // item not for channel
inline constexpr const char* kValidity = "eligibility.validity";    // outside [start, end)
inline constexpr const char* kHeld = "eligibility.held";            // product already held
inline constexpr const char* kClicked = "eligibility.clicked";      // content clicked/opened
inline constexpr const char* kDismissed = "eligibility.dismissed";  // dismissed recently
inline constexpr const char* kCapCustomerChannel = "cap.customer_channel";
inline constexpr const char* kCapCustomerItem = "cap.customer_item";
inline constexpr const char* kCapCustomerCampaign = "cap.customer_campaign";
inline constexpr const char* kCapCustomerCategory = "cap.customer_category";
inline constexpr const char* kCapCustomerMarketing = "cap.customer_marketing";
inline constexpr const char* kCooldown = "cooldown";
inline constexpr const char* kQuietHours = "quiet_hours";  // quiet window, action drop
}  // namespace blocked

enum class CapScope : uint8_t {
  kCustomerChannel,    // one counter per customer x channel
  kCustomerItem,       // per customer x item
  kCustomerCampaign,   // per customer x campaign (items without a campaign are not capped)
  kCustomerCategory,   // per customer x category (items without a category are not capped)
  kCustomerMarketing,  // per customer, across every channel (marketing contacts only)
};
// "customer_channel", ...; and back (nullopt when unknown).
const char* CapScopeName(CapScope s);
// The `blocked_by` name of a cap at this scope ("cap.customer_channel", ...).
const char* CapBlockedName(CapScope s);

enum class WindowKind : uint8_t {
  kRolling,       // the last `window` ms
  kCalendarDay,   // since local midnight in the bank's time zone
  kCalendarWeek,  // since local Monday 00:00
};

// `max limit events of kind event in a window` at one scope.
struct CapRule {
  std::string name;  // shown in `history`; default "cap.<scope>"
  CapScope scope = CapScope::kCustomerChannel;
  std::string channel;            // only contacts on this channel; "" = every channel
  std::string event = "contact";  // "contact" (impression or push_sent) or an event type
  int limit = 1;                  // the limit-th event is allowed, the next one blocked
  TimeMs window = kMsPerDay;      // rolling window length (ignored for calendar)
  WindowKind calendar = WindowKind::kRolling;
};

// Minimum gap between two contacts (requests / push runs) on a channel.
struct CooldownRule {
  std::string channel;
  TimeMs gap = 4 * kMsPerHour;
};

enum class QuietAction : uint8_t { kSchedule, kDrop };

// A channel's quiet window in local time, [start, end), wrapping midnight when start > end.
struct QuietHoursRule {
  std::string channel;
  int start_minute = 21 * 60;                   // "21:00"
  int end_minute = 8 * 60;                      // "08:00"
  QuietAction action = QuietAction::kSchedule;  // schedule at the window's end, or drop
};

std::vector<CapRule> DefaultCaps();

// [policy]: every contact rule. Defaults are a conservative bank's.
struct PolicyConfig {
  TimeMs suitability_max_age = 365 * kMsPerDay;  // risk assessment valid this long (12 months)
  TimeMs dismiss_suppression = 30 * kMsPerDay;   // a dismissed item is hidden this long
  TimeMs clicked_horizon = 90 * kMsPerDay;       // content clicked/opened this recently: hidden
  TimeMs reservation_ttl = 30 * kMsPerMinute;    // unconfirmed app_home reservations expire
  bool count_service_contacts = false;           // service contacts use up marketing caps
  // Channels where serving only reserves (an `impression` confirms); elsewhere a send counts.
  std::vector<std::string> reserve_channels = {"app_home"};
  std::vector<CapRule> caps = DefaultCaps();  // [[policy.caps]] replaces the defaults
  std::vector<CooldownRule> cooldowns = {{"wechat_push", 4 * kMsPerHour}};
  std::vector<QuietHoursRule> quiet_hours = {{"wechat_push", 21 * 60, 8 * 60, QuietAction::kSchedule}};
};

// Reads [policy] into `c`. Bad values are reported through `t` naming the rule, e.g.
// "'policy.caps[2].window': must be positive". Channel names are checked by Policy::Create.
// [[policy.caps]] keys: name, scope, channel, event, limit, window, calendar ("rolling"|"day"|"week").
// [[policy.cooldowns]] keys: channel, gap. [[policy.quiet_hours]] keys: channel, start, end
// ("HH:MM"), action ("schedule"|"drop").
void ReadPolicyConfig(ConfigTable t, PolicyConfig* c);

// [store]: where the event store keeps events and contact state.
struct StoreConfig {
  std::string backend = "embedded";  // "embedded" | "redis"
  std::string path = "data/store";   // embedded: the RocksDB folder (created)
  bool sync = true;                  // embedded: fsync the WAL before acknowledging
  bool sync_reservations = false;    // embedded: also fsync app_home reservations (those
                                     // that expire). Off: they reach the WAL (they survive
                                     // a process crash) but a power loss may release them
                                     // early; the client's impression, which is always
                                     // durable, then counts the contact. Sends and
                                     // feedback are always synced when `sync` is on.
  bool sync_decisions = false;       // embedded: fsync the decision log's writes (a served
                                     // page's decisions, a push run's) as feedback (when
                                     // `sync`). Off: they reach the WAL before the reply (they
                                     // survive a process crash or SIGKILL) without waiting for
                                     // the disk: a power loss may lose the last ones.
  int64_t min_free_mb = 256;         // embedded: writes are refused (unavailable) while the
                                     // store's disk has less free space (0 = no check); RocksDB
                                     // needs room to flush and compact
  int64_t memory_mb = 256;           // embedded: RocksDB's block cache (data, index and filter
                                     // blocks), fixed whatever the store's size; the memtables
                                     // add up to 2 x 64 MB
  int64_t background_mb_per_s = 32;  // embedded: RocksDB's flushes and compactions write at most
                                     // this fast (0 = no limit): a compaction spread over seconds
                                     // instead of a burst that takes the workers' cores
  bool read_only = false;            // embedded: open without the lock, for readers
                                     // (e.g. `train` beside a running server); writes fail
  std::string redis_host = "127.0.0.1";
  int redis_port = 6379;
  std::string redis_password;               // AUTH on connect ("" = none); a secret: read it from a file
                                            // with redis_password_file or QIANMIAN_STORE_REDIS_PASSWORD_FILE
  std::string redis_user;                   // the ACL user of AUTH ("" = Redis's default user)
  std::string redis_prefix = "qm";          // key prefix: <prefix>:{<customer>}:s / :l
  TimeMs redis_timeout = 2 * kMsPerSecond;  // connect and command timeout
  int redis_connections = 8;                // pooled connections per store instance (per node of a cluster)
  bool redis_cluster = false;               // redis_host:redis_port is a node of a Redis Cluster (issue 21)
  TimeMs retention = 90 * kMsPerDay;        // events older than this are compacted away
};
void ReadStoreConfig(ConfigTable t, StoreConfig* c);

}  // namespace qm::policy
