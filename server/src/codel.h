// Queue-delay admission (issue 20): CoDel (Nichols & Jacobson, "Controlling Queue Delay", 2012)
// as request servers use it with adaptive LIFO (Facebook's folly::Codel, Maurer, "Fail at Scale",
// 2015). A queue is *standing* when even the quickest request of the last interval waited longer
// than the target: the backlog is not a burst that drains by itself. While it stands, a request
// that waited more than twice the target is answered `overloaded` at once instead of being
// served late, and workers take the newest request first (LIFO), so those they do serve have
// hardly waited. Not thread-safe: the server calls it under its queue lock.
#pragma once

#include <algorithm>
#include <chrono>
#include <deque>
#include <utility>
#include <vector>

namespace qm::server {

class CoDel {
 public:
  using Clock = std::chrono::steady_clock;
  // target 0 disables it: nothing is ever shed and the queue never stands.
  CoDel(Clock::duration target, Clock::duration interval) : target_(target), interval_(interval) {}

  bool enabled() const { return target_.count() > 0; }
  // Called with the wait of the oldest request still queued (the queue's delay) each time a
  // request is taken, at `now`. When an interval has passed it decides: a queue starts standing
  // when the smallest delay of the interval exceeded the target, and stops when even the largest
  // stayed under it (hysteresis: while it stands, shedding keeps the delay near twice the target,
  // so the smallest delay alone would flip it back and forth). Measured at the head, not on the
  // request served, so serving the newest first does not hide the queue.
  void Observe(Clock::time_point now, Clock::duration delay) {
    if (!enabled()) return;
    if (interval_end_ == Clock::time_point{}) interval_end_ = now + interval_;
    if (now > interval_end_) {
      standing_ = standing_ ? max_delay_ >= target_ : min_delay_ > target_;
      min_delay_ = max_delay_ = delay;
      interval_end_ = now + interval_;
    } else {
      min_delay_ = std::min(min_delay_, delay);
      max_delay_ = std::max(max_delay_, delay);
    }
  }
  // Whether a request that waited `sojourn` should be shed: the queue stands and it waited more
  // than twice the target.
  bool Shed(Clock::duration sojourn) const { return standing_ && sojourn > slough(); }
  // Called when a worker finds the queue empty at `now`: a delay of zero. An empty moment keeps a
  // queue from starting to stand in this interval (a burst that drains is not a backlog), but it
  // does not end a standing queue by itself: under overload, shedding empties the queue for an
  // instant now and then (a worker sheds the stale requests, the other finds nothing), and
  // clearing the state there restarted the whole interval of observation each time, in which the
  // stale requests were neither shed nor served until the app_home deadline passed (2026-12-07,
  // three times capacity: 1,600-1,800 deadline_exceeded in 10 s). A standing queue ends, as in
  // Observe, with an interval whose largest delay stayed under the target; an idle interval has
  // none.
  void Idle(Clock::time_point now) {
    if (!enabled()) return;
    if (interval_end_ == Clock::time_point{}) interval_end_ = now + interval_;
    if (now > interval_end_) {
      standing_ = standing_ && max_delay_ >= target_;
      max_delay_ = Clock::duration::zero();
      interval_end_ = now + interval_;
    }
    min_delay_ = Clock::duration::zero();
  }
  bool standing() const { return standing_; }
  Clock::duration target() const { return target_; }
  // The wait past which a request is shed while the queue stands.
  Clock::duration slough() const { return 2 * target_; }

 private:
  Clock::duration target_, interval_;
  Clock::duration min_delay_ = Clock::duration::max(), max_delay_ = Clock::duration::zero();
  Clock::time_point interval_end_{};
  bool standing_ = false;
};

// What TakeNext found.
enum class Take { kNone, kRun, kShedOnly };

// Takes the next job of `queue` at `now` (observing the oldest job's wait for CoDel): first in,
// first out while no queue has formed; once the oldest waited past twice the target, the newest first
// (adaptive LIFO); and while CoDel says the queue stands, the oldest jobs that `sheddable` allows
// and that waited past the slough time go to *shed (at most 64 per call, keeping one job). The
// job taken goes to *shed instead when it waited past the slough time itself (kShedOnly), else to
// *job (kRun). kNone for an empty queue. Job needs a `Clock::time_point arrival`.
template <class Job, class Sheddable>
Take TakeNext(std::deque<Job>* queue, CoDel* codel, CoDel::Clock::time_point now, const Sheddable& sheddable, Job* job,
              std::vector<Job>* shed) {
  if (queue->empty()) return Take::kNone;
  const CoDel::Clock::duration head = now - queue->front().arrival;
  codel->Observe(now, head);
  // Adaptive LIFO as soon as a queue forms (the oldest waited past the slough time, twice the
  // target: a few requests queued behind busy workers are still served in order); shedding only
  // once CoDel says it stands.
  const bool lifo = codel->enabled() && (codel->standing() || head > codel->slough());
  if (lifo) {
    while (queue->size() > 1 && sheddable(queue->front()) && codel->Shed(now - queue->front().arrival) &&
           shed->size() < 64) {
      shed->push_back(std::move(queue->front()));
      queue->pop_front();
    }
  }
  *job = std::move(lifo ? queue->back() : queue->front());
  lifo ? queue->pop_back() : queue->pop_front();
  if (sheddable(*job) && codel->Shed(now - job->arrival)) {
    shed->push_back(std::move(*job));
    return Take::kShedOnly;
  }
  return Take::kRun;
}

}  // namespace qm::server
