// CoDel's decisions (server/src/codel.h) on a hand-driven clock.
#include "codel.h"

#include <gtest/gtest.h>

#include <deque>
#include <utility>
#include <vector>

namespace qm::server {
namespace {

using std::chrono::milliseconds;

TEST(CoDel, AQueueStandsOnlyWhenAWholeIntervalStayedAboveTheTarget) {
  CoDel c(milliseconds(5), milliseconds(100));
  const auto t0 = CoDel::Clock::time_point{} + std::chrono::hours(1);
  // A burst: long delays, but once in the interval the queue was short: not standing.
  c.Observe(t0, milliseconds(30));
  c.Observe(t0 + milliseconds(50), milliseconds(2));
  c.Observe(t0 + milliseconds(101), milliseconds(40));  // closes the interval
  EXPECT_FALSE(c.standing());
  EXPECT_FALSE(c.Shed(milliseconds(1000)));
  // A whole interval above 5 ms: standing once it closes.
  c.Observe(t0 + milliseconds(150), milliseconds(8));
  c.Observe(t0 + milliseconds(202), milliseconds(9));  // closes it: min 8 > 5
  EXPECT_TRUE(c.standing());
  // While standing, only waits past twice the target are shed.
  EXPECT_FALSE(c.Shed(milliseconds(10)));
  EXPECT_TRUE(c.Shed(milliseconds(11)));
  EXPECT_EQ(c.slough(), milliseconds(10));
  // One short delay does not end it (shedding keeps the head young while it stands)...
  c.Observe(t0 + milliseconds(250), milliseconds(1));
  c.Observe(t0 + milliseconds(303), milliseconds(2));  // closes 202..302: largest 9 ms
  EXPECT_TRUE(c.standing());
  // ...an interval wholly under the target does.
  c.Observe(t0 + milliseconds(350), milliseconds(3));
  c.Observe(t0 + milliseconds(404), milliseconds(1));
  EXPECT_FALSE(c.standing());
}

TEST(CoDel, AnEmptyQueueKeepsItFromStandingButEndsAStandingQueueOnlyWithAQuietInterval) {
  const auto t0 = CoDel::Clock::time_point{} + std::chrono::hours(1);
  // Not standing: an empty moment in the interval means the delays were a burst that drained.
  CoDel burst(milliseconds(5), milliseconds(100));
  burst.Observe(t0, milliseconds(20));
  burst.Idle(t0 + milliseconds(50));
  burst.Observe(t0 + milliseconds(101), milliseconds(20));  // closes the interval: its smallest delay was 0
  EXPECT_FALSE(burst.standing());
  // Standing: shedding empties the queue for an instant; that does not end it...
  CoDel c(milliseconds(5), milliseconds(100));
  c.Observe(t0, milliseconds(20));
  c.Observe(t0 + milliseconds(101), milliseconds(20));
  ASSERT_TRUE(c.standing());
  c.Idle(t0 + milliseconds(102));
  EXPECT_TRUE(c.standing());
  EXPECT_TRUE(c.Shed(milliseconds(50)));
  c.Observe(t0 + milliseconds(150), milliseconds(8));
  c.Observe(t0 + milliseconds(203), milliseconds(1));  // closes 101..201: largest 20 ms, still standing
  EXPECT_TRUE(c.standing());
  // ...an interval whose delays all stayed under the target does, also when the queue was empty
  // at its close.
  c.Idle(t0 + milliseconds(250));
  c.Idle(t0 + milliseconds(304));  // closes 203..303: largest 1 ms
  EXPECT_FALSE(c.standing());
  EXPECT_FALSE(c.Shed(milliseconds(50)));
  CoDel off(milliseconds(0), milliseconds(100));
  EXPECT_FALSE(off.enabled());
  for (int k = 0; k < 10; ++k) off.Observe(t0 + milliseconds(200 * k), milliseconds(1000));
  EXPECT_FALSE(off.standing());
  EXPECT_FALSE(off.Shed(milliseconds(1000)));
}

struct FakeJob {
  CoDel::Clock::time_point arrival;
  int id = 0;
  bool read_only = true;
};

// The sequence of (what was taken, which job) until the queue is empty.
std::vector<std::pair<Take, int>> Drain(std::deque<FakeJob>* q, CoDel* c, CoDel::Clock::time_point now) {
  auto sheddable = [](const FakeJob& j) { return j.read_only; };
  std::vector<std::pair<Take, int>> seq;
  for (;;) {
    FakeJob job;
    std::vector<FakeJob> shed;
    const Take t = TakeNext(q, c, now, sheddable, &job, &shed);
    if (t == Take::kNone) return seq;
    for (const FakeJob& s : shed) seq.push_back({Take::kShedOnly, s.id});
    if (t == Take::kRun) seq.push_back({Take::kRun, job.id});
    now += milliseconds(1);
  }
}

TEST(TakeNext, FifoUntilAQueueFormsThenNewestFirstAndShedsOnlyOnceItStands) {
  CoDel c(milliseconds(5), milliseconds(100));
  const auto t0 = CoDel::Clock::time_point{} + std::chrono::hours(1);
  auto sheddable = [](const FakeJob& j) { return j.read_only; };
  std::deque<FakeJob> q;
  for (int k = 0; k < 4; ++k) q.push_back({t0 + milliseconds(k), k, true});
  FakeJob job;
  std::vector<FakeJob> shed;
  // The oldest waited 4 ms (no queue yet): first in, first out.
  ASSERT_EQ(TakeNext(&q, &c, t0 + milliseconds(4), sheddable, &job, &shed), Take::kRun);
  EXPECT_EQ(job.id, 0);
  // A queue has formed (the oldest waited 19 ms, past twice the target): the newest first,
  // nothing shed yet.
  ASSERT_EQ(TakeNext(&q, &c, t0 + milliseconds(20), sheddable, &job, &shed), Take::kRun);
  EXPECT_EQ(job.id, 3);
  q.push_back({t0 + milliseconds(119), 4, true});
  ASSERT_EQ(TakeNext(&q, &c, t0 + milliseconds(120), sheddable, &job, &shed), Take::kRun);
  EXPECT_EQ(job.id, 4);
  EXPECT_FALSE(c.standing()) << "the first interval saw a 4 ms queue";
  EXPECT_TRUE(shed.empty());
  // A whole interval above the target: it stands, and the stale jobs before a fresh one go.
  q.push_back({t0 + milliseconds(220), 5, true});
  ASSERT_EQ(TakeNext(&q, &c, t0 + milliseconds(221), sheddable, &job, &shed), Take::kRun);
  ASSERT_TRUE(c.standing());
  EXPECT_EQ(job.id, 5);
  std::vector<int> ids;
  for (const auto& s : shed) ids.push_back(s.id);
  EXPECT_EQ(ids, (std::vector<int>{1, 2}));
  EXPECT_TRUE(q.empty());
}

TEST(TakeNext, WhileStandingTheNewestGoFirstAndOnlySheddableStaleJobsAreShed) {
  CoDel c(milliseconds(5), milliseconds(100));
  const auto t0 = CoDel::Clock::time_point{} + std::chrono::hours(1);
  std::deque<FakeJob> q;
  for (int k = 0; k < 3; ++k) q.push_back({t0, k, true});
  (void)Drain(&q, &c, t0 + milliseconds(50));  // delays of 50+ ms seen in this interval
  // Job 10 is feedback (never shed); 11 and 12 are fresh when taken.
  q.push_back({t0 + milliseconds(140), 10, false});
  q.push_back({t0 + milliseconds(141), 11, true});
  q.push_back({t0 + milliseconds(143), 12, true});
  q.push_back({t0 + milliseconds(150), 13, true});
  const auto seq = Drain(&q, &c, t0 + milliseconds(152));  // closes the interval: standing
  ASSERT_TRUE(c.standing());
  const std::vector<std::pair<Take, int>> expected = {
      {Take::kRun, 13},  // the newest
      {Take::kRun, 12},  // waited 10 ms: not past the slough time
      {Take::kShedOnly, 11},
      {Take::kRun, 10},  // feedback waits as long as it must
  };
  EXPECT_EQ(seq, expected);
}

TEST(TakeNext, AJobThatIsNotSheddableIsServedHoweverLongItWaited) {
  CoDel c(milliseconds(5), milliseconds(100));
  const auto t0 = CoDel::Clock::time_point{} + std::chrono::hours(1);
  auto sheddable = [](const FakeJob& j) { return j.read_only; };
  std::deque<FakeJob> q;
  FakeJob job;
  std::vector<FakeJob> shed;
  q.push_back({t0, 0, true});
  (void)TakeNext(&q, &c, t0 + milliseconds(50), sheddable, &job, &shed);
  q.push_back({t0, 1, false});
  q.push_back({t0, 2, false});
  ASSERT_EQ(TakeNext(&q, &c, t0 + milliseconds(151), sheddable, &job, &shed), Take::kRun);  // closes: standing
  ASSERT_TRUE(c.standing());
  ASSERT_EQ(TakeNext(&q, &c, t0 + milliseconds(160), sheddable, &job, &shed), Take::kRun);
  EXPECT_TRUE(shed.empty()) << "feedback and updates are never shed by delay";
}

}  // namespace
}  // namespace qm::server
