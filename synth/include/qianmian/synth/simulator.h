// qianmian::synth: the synthetic bank (see bank.h; depends on core and metrics only).
//
// simulator.h: the bank driven one local day at a time. Each customer has planned contacts (app
// sessions, marketing pushes, service pushes) over the period; on each day the bank's old logging
// policy chooses what every contact shows and the true model draws the customer's response. A
// caller can also ask the true response to items it shows itself (the closed-loop case).
// Driving every day by hand yields exactly the events.csv of `qianmian generate`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "qianmian/core/status.h"
#include "qianmian/core/types.h"
#include "qianmian/synth/bank.h"

namespace qm::synth {

// Set in Event::request for a push (else an app_home session).
inline constexpr uint32_t kPushRequest = 0x80000000u;

// One simulated event (24 bytes; indexes into the Bank). `request` is 0 (none) or the customer's
// contact number (1-based, counted per kind), with kPushRequest set for pushes.
struct Event {
  TimeMs ts;
  uint32_t customer;
  uint32_t item;
  uint32_t request;
  EventType type;
  ChannelId channel;  // kAppHome or kWechatPush
  // events.csv order: by ts, then customer, request, type, item, channel.
  bool operator<(const Event& o) const {
    if (ts != o.ts) return ts < o.ts;
    if (customer != o.customer) return customer < o.customer;
    if (request != o.request) return request < o.request;
    if (type != o.type) return type < o.type;
    if (item != o.item) return item < o.item;
    return channel < o.channel;
  }
};
static_assert(sizeof(Event) == 24, "Event must stay compact");

// The request id events.csv writes for `e`: "r<customer number>-<n>" for an app_home session,
// "p<customer number>-<n>" for a push (customer number = index + 1), "" for none.
std::string RequestIdText(const Event& e);

// A contact handed to the caller in the closed loop (Simulator::NextDaysClosedLoop): an app
// session (kAppHome: the customer opens the app home page at ts), a marketing push slot
// (kWechatPush: the bank's schedule would push the customer at ts), or a service push (`service`:
// the bank's own service message, run with Simulator::RunServicePush in its time order).
struct PlannedContact {
  uint32_t customer = 0;
  TimeMs ts = 0;
  ChannelId channel = kAppHome;
  bool service = false;
  bool operator<(const PlannedContact& o) const {
    if (ts != o.ts) return ts < o.ts;
    if (customer != o.customer) return customer < o.customer;
    return channel < o.channel;
  }
};

// One item shown to one customer.
struct Exposure {
  uint32_t customer = 0;
  uint32_t item = 0;
  ChannelId channel = kAppHome;  // kAppHome (an impression) or kWechatPush (a push)
  TimeMs ts = 0;
};

// The true model's probabilities for one exposure, given what the customer was shown before it
// (the fatigue of truth.json's "response_model"). Fields that do not apply are 0.
struct ResponseProbabilities {
  float click = 0;    // app_home: P(click | impression)
  float convert = 0;  // app_home, products: P(convert | click)
  float dismiss = 0;  // app_home: P(dismiss | impression without a click)
  float open = 0;     // wechat_push: P(push_open | push_sent)
};

// Whose knowledge of the customers a probability uses: the truth, or only the customers.csv
// attributes (each customer's latent replaced by its attribute part: the attribute oracle).
enum class Knowledge : uint8_t { kTruth, kAttributes };

// How a page of the bank's old logging policy is drawn: as the policy logged (its mixture of
// popularity, segment targeting and uniform exploration), or by one of its two targeting rules.
enum class LoggingMode : uint8_t { kAsLogged, kSegmentTargeting, kPopularity };

struct SimulatorOptions {
  // The customers simulated: [first_customer, end_customer); end_customer 0 = to the last one.
  // Customers are independent, so slices of a large bank can be driven separately.
  uint32_t first_customer = 0;
  uint32_t end_customer = 0;
  int threads = 0;  // worker threads of NextDay; 0 = all cores. Never changes the output.
  // The cost of contact pressure (truth.json's response_model "opt_out"): every marketing push
  // may make its customer opt out of wechat_push (an opt_out event), more likely the more
  // marketing pushes the customer had in the last 7 days; the logging policy then pushes them no
  // more marketing. Off by default, so `generate`'s events stay as they were; the closed loop
  // (`qianmian simulate`) turns it on.
  bool opt_outs = false;
};

// The bank's logging policy and its customers' true responses, one local day (Asia/Shanghai) at
// a time. Holds each simulated customer's contact plan, random stream and state (about 0.6 KB per
// customer, plus 16 bytes per planned contact and 8 per item shown; drive a very large bank in
// slices).
// Not thread-safe: one caller at a time (NextDay uses `threads` workers inside).
class Simulator {
 public:
  // Plans every contact of the slice over the period. REQUIRES: `bank` outlives the simulator.
  // InvalidArgument for an empty or out-of-range slice or a negative thread count.
  [[nodiscard]] static Result<std::unique_ptr<Simulator>> Create(const Bank& bank,
                                                                 const SimulatorOptions& options = {});
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  // Local days overlapping the period (its days, plus one when the end is not a local midnight).
  int64_t num_days() const;
  // Days simulated so far, 0 .. num_days().
  int64_t day() const;
  bool done() const { return day() == num_days(); }
  // The local midnight starting day `d` (UTC ms); DayStart(num_days()) is at or after the end.
  TimeMs DayStart(int64_t d) const;

  // Simulates day `day()` for every customer of the slice and replaces `events` with what it
  // logged, sorted (Event::operator<): the contacts that start that day and the responses they
  // drew, a response possibly falling after midnight (never at or after the bank's end).
  // FailedPrecondition once done().
  [[nodiscard]] Status NextDay(std::vector<Event>* events) { return NextDays(1, events); }
  // The same for the next `days` days at once (fewer when fewer are left), as one sorted list:
  // what `days` calls of NextDay log, merged. InvalidArgument when days < 1.
  [[nodiscard]] Status NextDays(int64_t days, std::vector<Event>* events);
  // The closed loop: NextDays, except that for the customers `caller_serves` selects, the
  // planned contacts are not run by the logging policy but returned in `contacts` (sorted by
  // time) for the caller to decide, in time order, what app sessions and marketing pushes show
  // (Show draws the responses) and to run service pushes (RunServicePush). The plan is the same
  // either way: a customer's contacts do not depend on who serves them. `caller_serves` must be
  // a pure function of the customer.
  [[nodiscard]] Status NextDaysClosedLoop(int64_t days, const std::function<bool(uint32_t customer)>& caller_serves,
                                          std::vector<Event>* events, std::vector<PlannedContact>* contacts);

  // The true response to `n` exposures, each given its customer's state now (out[i] for
  // shown[i]); changes nothing. InvalidArgument for a customer outside the slice, an unknown
  // item or a channel other than app_home and wechat_push. REQUIRES: out holds n entries.
  [[nodiscard]] Status Probabilities(const Exposure* shown, size_t n, ResponseProbabilities* out) const {
    return Probabilities(shown, n, Knowledge::kTruth, out);
  }
  // The same as `knowledge` believes it (kAttributes: the attribute oracle's belief; evaluate a
  // page chosen by it with kTruth).
  [[nodiscard]] Status Probabilities(const Exposure* shown, size_t n, Knowledge knowledge,
                                     ResponseProbabilities* out) const;

  // Whether the bank may show `item` on app_home to `customer` at t: truth.json's static
  // eligibility (channel, consent, tier, region, validity, suitability), not a product the
  // customer holds, not an item the customer's state blocks (dismissed, converted, content
  // clicked). REQUIRES: customer in the slice, item in range.
  bool EligibleOnAppHome(uint32_t customer, uint32_t item, TimeMs t) const;
  // Whether the bank may push `item` as marketing to `customer` at t: a content item (not a
  // service message) truth.json's static eligibility allows on wechat_push, not pushed to the
  // customer before nor blocked by their state, and the customer has not opted out of pushes.
  bool EligibleForPush(uint32_t customer, uint32_t item, TimeMs t) const;

  // A page of the bank's old logging policy for `customer` at t: position p takes a product when
  // kinds[p] == 0, else a content item, drawn from the app_home pools by `mode` among the items
  // EligibleOnAppHome allows, distinct (a position the pool cannot fill is left out). A function
  // of (customer, t, kinds, mode, seed); changes nothing. InvalidArgument for a customer outside
  // the slice.
  [[nodiscard]] Status LoggingPage(uint32_t customer, TimeMs t, const std::vector<int>& kinds, LoggingMode mode,
                                   uint64_t seed, std::vector<uint32_t>* page) const;

  // Runs a handed-over service push as the bank plans it (its service item, the customer's
  // response), appending the events. InvalidArgument for a contact that is not a service push of
  // the slice.
  [[nodiscard]] Status RunServicePush(const PlannedContact& contact, std::vector<Event>* events);
  // Runs any handed-over contact as the bank's logging policy plans it (an app session's page, a
  // marketing push's content, a service push), appending the events: the legacy policy inside
  // the closed loop. InvalidArgument for a customer outside the slice.
  [[nodiscard]] Status RunLoggingContact(const PlannedContact& contact, std::vector<Event>* events);
  // A marketing push chosen by the logging policy for `customer` at t, outside the plan (a
  // caller's push calendar); nothing when the customer opted out. InvalidArgument as above.
  [[nodiscard]] Status LoggingPush(uint32_t customer, TimeMs t, std::vector<Event>* events);

  // Whether the customer has opted out of wechat_push (customers.csv, or drawn in the loop).
  bool OptedOutOfPush(uint32_t customer) const;
  // Marketing pushes shown (Show) to customers after they opted out of wechat_push: a showing
  // policy that honours consent leaves this at 0.
  uint64_t ConsentViolations() const;

  // Shows `n` items (a policy other than the logging one): appends each exposure event
  // (impression or push_sent) and the response the true model draws from the customer's own
  // random stream, and records the exposure in the customer's state, as the logging policy's
  // exposures are. Consecutive entries of one customer and channel form one request. Neither
  // eligibility nor consent is checked: that is the showing policy's part. InvalidArgument, with
  // nothing shown, as for Probabilities or when a time is outside [start, end) or earlier than
  // something already shown to that customer.
  [[nodiscard]] Status Show(const Exposure* shown, size_t n, std::vector<Event>* events);

 private:
  struct Impl;
  explicit Simulator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qm::synth
