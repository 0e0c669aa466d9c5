// Module campaign: saved segments (issue 18): named audience expressions that a marketer saves
// once and campaigns name in their audience, e.g. "segment:young_savers and not tag:vip".
//
// A segment is a governed record of the event store (collection "segments"): its expression, a
// description, who saved it and when; every save is a compare-and-set on its revision with an
// audit entry, like a campaign. A segment's expression uses the push audience language
// (push/audience.h) and may not name another segment.
//
// Approval snapshots them: when a campaign is approved, the expressions of the segments its
// audience names are copied into the campaign (Campaign::segments), and its runs use that copy.
// A segment edited after the approval does not change what the approved campaign sends; the
// campaign shows the expressions its approver saw.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qianmian/campaign/campaign.h"
#include "qianmian/core/status.h"
#include "qianmian/core/time.h"
#include "qianmian/policy/event_store.h"

namespace qm::campaign {

struct Segment {
  std::string name;  // [A-Za-z0-9_.-], 1..64 characters
  std::string audience;
  std::string description;
  std::string updated_by;
  TimeMs updated_at = kNoTime;
  uint64_t revision = 0;
};

// {"name", "audience", "description", "updated_by", "updated_at", "revision"}.
std::string SegmentJson(const Segment& s);

// The names `audience` refers to with `segment:NAME` (in order, without repeats; quoted text is
// not read).
std::vector<std::string> SegmentNames(std::string_view audience);

// `audience` with every `segment:NAME` replaced by "(<its expression>)", the expressions from
// `lookup` (nullopt = no such segment: InvalidArgument "unknown segment 'NAME'").
[[nodiscard]] Result<std::string> ExpandSegments(
    std::string_view audience, const std::function<std::optional<std::string>(const std::string&)>& lookup);

// The segments of one event store. Thread-safe (the store is).
class Segments {
 public:
  // `check` compiles an expression against the bank's data (push::Audience::Compile).
  using Check = std::function<Status(const std::string& audience)>;
  Segments(policy::EventStore* store, Check check) : store_(store), check_(std::move(check)) {}

  // Creates or replaces segment `name`. InvalidArgument for a bad name or an expression that does
  // not compile or names a segment; `expected_revision` > 0: Conflict unless the segment is at
  // that revision (0 = whatever it is, a new one included).
  [[nodiscard]] Result<Segment> Save(const std::string& name, const std::string& audience,
                                     const std::string& description, const Actor& actor,
                                     uint64_t expected_revision = 0);
  [[nodiscard]] Result<Segment> Get(const std::string& name) const;  // NotFound naming it
  [[nodiscard]] Result<std::vector<Segment>> List() const;
  // The audit log, oldest first: one JSON object per save ({revision, ts, who, from, audience,
  // description}).
  [[nodiscard]] Result<std::vector<std::string>> Audit(const std::string& name) const;

  // The current expressions of the segments `audience` names (NotFound for an unknown one).
  [[nodiscard]] Result<std::map<std::string, std::string>> Resolve(std::string_view audience) const;

 private:
  policy::EventStore* store_;
  Check check_;
};

// The expression a campaign's runs select with: its audience with the segments expanded from
// `c.segments` (the approval's snapshot). FailedPrecondition naming a segment the snapshot lacks
// (a campaign not yet approved: fill c.segments with Segments::Resolve for a dry run).
[[nodiscard]] Result<std::string> CampaignAudience(const Campaign& c);

}  // namespace qm::campaign
