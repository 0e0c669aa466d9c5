// `qianmian campaign create|edit|submit|approve|reject|schedule|pause|resume|cancel|withdraw|
// show|list|audit` (issue 18, SPEC §8): the governed campaign lifecycle on the event store of
// --data / [store] (campaign/campaign.h). Changes name their --operator; an author can never
// approve. Beside a running server with the embedded store (which locks it), use the server's
// campaigns.* ops instead (`qianmian client --connect ADDR campaigns.transition '{...}'`).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "commands.h"
#include "engine_config.h"
#include "qianmian/artifacts/manifest.h"
#include "qianmian/campaign/campaign.h"
#include "qianmian/campaign/report.h"
#include "qianmian/campaign/run.h"
#include "qianmian/campaign/scheduler.h"
#include "qianmian/campaign/segments.h"
#include "qianmian/core/csv.h"
#include "qianmian/core/dataset.h"
#include "qianmian/core/file.h"
#include "qianmian/core/time.h"
#include "qianmian/policy/event_store.h"
#include "qianmian/push/audience.h"
#include "qianmian/serving/engine.h"
#include "sim_estimate.h"

namespace qm::tools {

namespace {

struct CampaignOptions {
  CommonOptions common;
  std::string action;  // the subcommand
  std::string id;      // the campaign (every action but create, edit and list)
  std::string file;    // create, edit: the definition (JSON)
  std::string who;     // --operator
  std::string reason;
  std::string state;  // list: only this state
  std::string format = "text";
  std::string out;
  std::string now;
  std::string occurrence;  // run
  std::string to;          // report
  int64_t day = 0;         // simulate: the occurrence's day in the world (0 = a week before its end)
  std::string sends;       // respond: the occurrence's send list
  uint64_t seed = 1;       // respond: the draws
  int64_t revision = 0;
};

// The state each transition subcommand moves to (resume: back to where the campaign paused).
std::optional<campaign::State> TargetOf(const std::string& action) {
  using campaign::State;
  if (action == "submit") return State::kSubmitted;
  if (action == "approve") return State::kApproved;
  if (action == "reject") return State::kRejected;
  if (action == "schedule") return State::kScheduled;
  if (action == "pause") return State::kPaused;
  if (action == "cancel") return State::kCancelled;
  if (action == "withdraw") return State::kDraft;
  if (action == "start") return State::kRunning;
  if (action == "complete") return State::kCompleted;
  return std::nullopt;
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot read the campaign definition '" + path + "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Status WriteOut(const std::string& path, const std::string& text) {
  if (!path.empty() && path != "-") return WriteFileAtomically(path, {text});
  std::fputs(text.c_str(), stdout);
  return Status::Ok();
}

std::string Summary(const campaign::Campaign& c) {
  const campaign::Definition& d = c.definition;
  std::string s = "campaign " + d.id + " (" + d.name + "): " + campaign::StateName(c.state) + ", revision " +
                  std::to_string(c.revision) + "\n";
  s += "  channel " + d.channel + ", audience: " + d.audience + "\n";
  s += "  hash " + c.hash() + (c.RunsApprovedVersion() ? " (approved by " + c.approved_by + ")" : " (not approved)") +
       "\n";
  s += "  authors:";
  for (const std::string& a : c.authors) s += " " + a;
  char holdout[32];
  std::snprintf(holdout, sizeof holdout, "%g", d.holdout);
  s += "\n  schedule: " + d.schedule.kind + ", priority " + std::to_string(d.priority) + ", holdout " + holdout + "\n";
  if (!c.reason.empty()) s += "  reason: " + c.reason + "\n";
  for (const auto& [name, expr] : c.segments) s += "  segment " + name + " (as approved): " + expr + "\n";
  return s;
}

Result<TimeMs> FlagTime(const std::string& text, const TimeZone& tz) {
  if (text.empty()) return kNoTime;
  auto t = ParseTime(text, tz);
  if (!t) return Status::InvalidArgument("--now: cannot parse time '" + text + "'");
  return *t;
}

// The catalogue and the customers' fields (the events are not needed), with the current version's
// portraits (churn_risk, lifecycle, ...), which audiences may name.
Result<std::unique_ptr<Dataset>> LoadBankFields(const EngineConfig& config) {
  auto data = std::make_unique<Dataset>();
  FileReport items, customers;
  QM_RETURN_IF_ERROR(LoadItemsCsv(config.data.dir + "/items.csv", config.data, data.get(), &items));
  QM_RETURN_IF_ERROR(LoadCustomersCsv(config.data.dir + "/customers.csv", config.data, data.get(), &customers));
  Result<std::string> version = artifacts::ReadCurrent(config.artifacts_root);
  const std::string portraits = config.artifacts_root + "/" + (version.ok() ? *version : "") + "/portraits.csv";
  if (version.ok() && std::filesystem::exists(portraits)) {
    QM_ASSIGN_OR_RETURN(data->portraits, LoadPortraitColumns(portraits, *data));
  }
  return data;
}

// `simulate`: one occurrence in the planted world of a generated bank (sim_estimate.h).
Status SimulateThroughEngine(const CampaignOptions& o, const EngineConfig& config) {
  campaign::Campaign c;
  {
    policy::StoreConfig sc = config.store;
    sc.read_only = sc.backend == "embedded";
    QM_ASSIGN_OR_RETURN(std::unique_ptr<policy::EventStore> store, policy::EventStore::Open(sc));
    campaign::Campaigns campaigns(store.get(), [](const campaign::Definition&, TimeMs) { return Status::Ok(); });
    QM_ASSIGN_OR_RETURN(c, campaigns.Get(o.id));
    if (!c.RunsApprovedVersion()) {  // not approved yet: the segments as they are now
      QM_ASSIGN_OR_RETURN(c.segments, campaign::Segments(store.get(), nullptr).Resolve(c.definition.audience));
    }
  }
  QM_ASSIGN_OR_RETURN(SimulatedEffect effect,
                      SimulateOccurrence(EngineOptionsFrom(config), c, config.data.dir, o.day, 0));
  if (!effect.available) {
    return Status::FailedPrecondition("'" + config.data.dir +
                                      "' is not a generated bank (no truth/): there is no planted world to simulate");
  }
  return WriteOut(o.out, effect.Format());
}

// The send list of a run (customer_id,item_id,scheduled_at,reasons).
Result<std::vector<PlannedSend>> ReadSendList(const std::string& path, const TimeZone& tz) {
  QM_ASSIGN_OR_RETURN(auto reader, CsvReader::Open(path));
  std::vector<PlannedSend> out;
  CsvRecord rec;
  bool header = true;
  while (reader->Next(&rec)) {
    const std::string where = path + ":" + std::to_string(rec.line);
    if (!rec.error.empty()) return Status::InvalidArgument(where + ": " + rec.error);
    if (rec.fields.size() < 3) return Status::InvalidArgument(where + ": expected customer_id,item_id,scheduled_at");
    if (header) {
      if (rec.fields[0] != "customer_id" || rec.fields[1] != "item_id" || rec.fields[2] != "scheduled_at") {
        return Status::InvalidArgument(where + ": not a send list (header customer_id,item_id,scheduled_at,...)");
      }
      header = false;
      continue;
    }
    const auto at = ParseTime(std::string(rec.fields[2]), tz);
    if (!at)
      return Status::InvalidArgument(where + ": scheduled_at '" + std::string(rec.fields[2]) + "' is not a time");
    out.push_back({std::string(rec.fields[0]), std::string(rec.fields[1]), *at});
  }
  QM_RETURN_IF_ERROR(reader->status());
  if (header) return Status::InvalidArgument(path + ": empty, not a send list");
  return out;
}

// `respond`: on a generated bank, the planted world opens an occurrence's sends (sim_estimate.h),
// recorded through the engine as the run's push_open feedback, as a delivery system's callbacks
// would be. What `report` then counts.
Status RespondThroughEngine(const CampaignOptions& o, const EngineConfig& config, const TimeZone& tz) {
  if (o.sends.empty() || o.occurrence.empty()) return Status::InvalidArgument("respond needs --sends and --occurrence");
  QM_ASSIGN_OR_RETURN(std::vector<PlannedSend> sends, ReadSendList(o.sends, tz));
  QM_ASSIGN_OR_RETURN(WorldResponses r, RespondInPlantedWorld(config.data.dir, sends, o.seed, 0));
  if (!r.available) {
    return Status::FailedPrecondition("'" + config.data.dir +
                                      "' is not a generated bank (no truth/): there is no planted world to respond");
  }
  QM_ASSIGN_OR_RETURN(auto engine, serving::Engine::Open(EngineOptionsFrom(config)));
  serving::Engine* e = engine.get();
  campaign::Campaigns campaigns(e->store(), [](const campaign::Definition&, TimeMs) { return Status::Ok(); });
  QM_ASSIGN_OR_RETURN(campaign::Campaign c, campaigns.Get(o.id));
  std::vector<serving::FeedbackEvent> events;
  for (const PlannedSend& open : r.opens) {
    events.push_back(
        {open.at, open.customer_id, open.item_id, "push_open", c.definition.channel, o.id + "/" + o.occurrence});
  }
  int64_t accepted = 0;
  for (size_t i = 0; i < events.size(); i += 1000) {
    const std::vector<serving::FeedbackEvent> part(
        events.begin() + static_cast<std::ptrdiff_t>(i),
        events.begin() + static_cast<std::ptrdiff_t>(std::min(i + 1000, events.size())));
    QM_ASSIGN_OR_RETURN(serving::FeedbackResult fr, e->Feedback(part));
    if (!fr.rejected.empty()) {
      return Status::Internal("feedback refused: " + fr.rejected[0].code + ": " + fr.rejected[0].message);
    }
    accepted += fr.accepted;
  }
  std::printf("planted world: %lld sends of %s/%s, %lld opened (expected %.1f), recorded as push_open feedback%s\n",
              static_cast<long long>(r.sends), o.id.c_str(), o.occurrence.c_str(), static_cast<long long>(accepted),
              r.expected_opens,
              r.unknown ? (" (" + std::to_string(r.unknown) + " sends the world does not know)").c_str() : "");
  return Status::Ok();
}

// `dryrun` and `run`: an occurrence through the engine (which holds the store).
Status RunThroughEngine(const CampaignOptions& o, const EngineConfig& config, const TimeZone& tz,
                        const campaign::Actor& actor) {
  if (o.out.empty()) return Status::InvalidArgument("--out is required: the send list CSV");
  QM_ASSIGN_OR_RETURN(auto engine, serving::Engine::Open(EngineOptionsFrom(config)));
  serving::Engine* e = engine.get();
  campaign::Campaigns campaigns(e->store(), [e, &tz](const campaign::Definition& d, TimeMs now) {
    Status st;
    e->WithDataset([&](const Dataset& ds) {
      st = campaign::CheckDefinition(d, ds, now, tz, e->policy().state_options().keep_contacts);
    });
    return st;
  });
  QM_ASSIGN_OR_RETURN(campaign::Campaign c, campaigns.Get(o.id));
  campaign::RunOptions ro;
  ro.occurrence = o.action == "dryrun" && o.occurrence.empty() ? "dryrun" : o.occurrence;
  ro.dry_run = o.action == "dryrun";
  ro.now = actor.now;
  ro.out = o.out;
  ro.time_zone = config.data.timezone;
  if (!ro.dry_run) {  // under the scheduler's lease: never at the same time as a replica running it
    campaign::SchedulerOptions so;
    so.holder = actor.who + "@" + actor.from;
    so.time_zone = config.data.timezone;
    const TimeMs now = actor.now != kNoTime ? actor.now : e->Now();
    QM_ASSIGN_OR_RETURN(push::PushSummary summary,
                        campaign::RunByHand(e, &campaigns, so, o.id, o.occurrence, o.out, now));
    std::fputs(summary.Format().c_str(), stdout);
    QM_ASSIGN_OR_RETURN(c, campaigns.Get(o.id));
    std::fputs(Summary(c).c_str(), stdout);
    return Status::Ok();
  }
  std::vector<PlannedSend> planned;  // the dry run's sends, for the planted world's estimate
  ro.on_choice = [&](const std::string& customer, const serving::PushChoice& choice) {
    for (size_t k = 0; k < choice.items.size(); ++k)
      planned.push_back({customer, choice.items[k].item_id, choice.send_at[k]});
  };
  QM_ASSIGN_OR_RETURN(push::PushSummary summary, campaign::RunOccurrence(e, c, ro));
  std::fputs(summary.Format().c_str(), stdout);
  QM_ASSIGN_OR_RETURN(WorldEstimate w, EstimateInPlantedWorld(config.data.dir, planned, 0));
  if (w.available) {
    std::printf(
        "  planted world (truth/ of this generated bank, as at the end of its data):\n"
        "    expected push opens %.1f over %lld sends (the ranker predicted %.1f)%s; %.1f s\n",
        w.opens, static_cast<long long>(w.sends), summary.expected_clicks,
        w.unknown ? (", " + std::to_string(w.unknown) + " sends to customers or of items added since").c_str() : "",
        w.seconds);
  }
  return Status::Ok();
}

Status Run(const CampaignOptions& o) {
  QM_ASSIGN_OR_RETURN(EngineConfig config, LoadEngineConfig(o.common.config));
  ApplyOverrides(o.common, &config);
  QM_ASSIGN_OR_RETURN(TimeZone tz, TimeZone::Load(config.data.timezone));
  if (o.action == "simulate") return SimulateThroughEngine(o, config);
  if (o.action == "respond") return RespondThroughEngine(o, config, tz);
  if (o.action == "dryrun" || o.action == "run") {
    if (o.action == "run" && (o.who.empty() || o.occurrence.empty())) {
      return Status::InvalidArgument("run needs --operator and --occurrence");
    }
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    QM_ASSIGN_OR_RETURN(TimeMs now, FlagTime(o.now, tz));
    return RunThroughEngine(o, config, tz,
                            campaign::Actor{o.who.empty() ? "dryrun" : o.who, std::string("cli@") + host, now});
  }
  const bool reads = o.action == "show" || o.action == "list" || o.action == "audit" || o.action == "report";
  policy::StoreConfig sc = config.store;
  sc.read_only = reads && sc.backend == "embedded";  // beside a running server: the store as of opening
  QM_ASSIGN_OR_RETURN(std::unique_ptr<policy::EventStore> store, policy::EventStore::Open(sc));
  // Definitions are checked against the bank's data, loaded only when a change needs it.
  std::unique_ptr<Dataset> data;
  campaign::Campaigns campaigns(store.get(), [&](const campaign::Definition& d, TimeMs now) -> Status {
    if (!data) {
      QM_ASSIGN_OR_RETURN(data, LoadBankFields(config));
    }
    return campaign::CheckDefinition(d, *data, now, tz);
  });
  if (o.action == "list") {
    QM_ASSIGN_OR_RETURN(std::vector<campaign::Campaign> all, campaigns.List());
    std::string text = o.format == "json" ? "[" : "";
    for (const campaign::Campaign& c : all) {
      if (!o.state.empty() && o.state != campaign::StateName(c.state)) continue;
      if (o.format == "json") {
        text += (text.size() > 1 ? "," : "") + campaign::CampaignJson(c);
      } else {
        text += c.definition.id + "\t" + campaign::StateName(c.state) + "\t" + std::to_string(c.revision) + "\t" +
                c.definition.name + "\n";
      }
    }
    return WriteOut(o.out, o.format == "json" ? text + "]\n" : text);
  }
  if (o.action == "show") {
    QM_ASSIGN_OR_RETURN(campaign::Campaign c, campaigns.Get(o.id));
    return WriteOut(o.out, o.format == "json" ? campaign::CampaignJson(c) + "\n" : Summary(c));
  }
  if (o.action == "report") {
    QM_ASSIGN_OR_RETURN(campaign::Campaign c, campaigns.Get(o.id));
    QM_ASSIGN_OR_RETURN(TimeMs to, FlagTime(o.to, tz));
    QM_ASSIGN_OR_RETURN(campaign::CampaignReport r, campaign::ReportCampaign(store.get(), c, to));
    return WriteOut(o.out, o.format == "json" ? r.Json() + "\n" : r.Format());
  }
  if (o.action == "audit") {
    QM_ASSIGN_OR_RETURN(std::vector<campaign::AuditEntry> entries, campaigns.Audit(o.id));
    if (o.format == "csv") return WriteOut(o.out, campaign::AuditCsv(entries));
    std::string text;
    for (const campaign::AuditEntry& e : entries) text += campaign::AuditJson(e) + "\n";
    return WriteOut(o.out, text);
  }
  if (o.who.empty()) return Status::InvalidArgument("--operator is required: every change names who made it");
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  campaign::Actor actor{o.who, std::string("cli@") + host, kNoTime};
  QM_ASSIGN_OR_RETURN(actor.now, FlagTime(o.now, tz));
  Result<campaign::Campaign> done = Status::Internal("no action");
  if (o.action == "create" || o.action == "edit") {
    if (o.file.empty()) return Status::InvalidArgument("--file is required: the campaign definition (JSON)");
    QM_ASSIGN_OR_RETURN(std::string text, ReadFile(o.file));
    Result<campaign::Definition> d = campaign::ParseDefinition(text);
    if (!d.ok()) return d.status().Annotate(o.file);
    done = o.action == "create" ? campaigns.Create(*d, actor)
                                : campaigns.Update(*d, actor, static_cast<uint64_t>(o.revision));
  } else {
    std::optional<campaign::State> to = TargetOf(o.action);
    if (o.action == "resume") {
      QM_ASSIGN_OR_RETURN(campaign::Campaign c, campaigns.Get(o.id));
      to = c.paused_from;
    }
    if (!to) return Status::InvalidArgument("unknown campaign action '" + o.action + "'");
    done = campaigns.Transition(o.id, *to, actor, o.reason, static_cast<uint64_t>(o.revision));
  }
  QM_RETURN_IF_ERROR(done.status());
  std::fputs(Summary(*done).c_str(), stdout);
  return Status::Ok();
}

}  // namespace

Command AddCampaignCommand(CLI::App& root) {
  auto opts = std::make_shared<CampaignOptions>();
  Command cmd;
  cmd.app = root.add_subcommand(
      "campaign",
      "Governed campaigns (SPEC 8): create or edit a definition (JSON, checked against the bank before anything is "
      "stored), submit it, approve or reject it as a second person (maker-checker: an author never approves), "
      "schedule, pause, resume, cancel or withdraw it; show, list, and the append-only audit log. Works on the event "
      "store of --data / [store]; beside a running server with the embedded store use its campaigns.* ops");
  cmd.app->require_subcommand(1);
  struct Sub {
    const char* name;
    const char* help;
  };
  const Sub subs[] = {
      {"create", "a new campaign in draft from --file"},
      {"edit", "replace a campaign's definition with --file (it returns to draft; its approval is dropped)"},
      {"submit", "draft -> submitted (for approval)"},
      {"approve", "submitted -> approved, by someone who is not an author; records the approved definition's hash"},
      {"reject", "submitted -> rejected, by someone who is not an author (--reason)"},
      {"schedule", "approved -> scheduled (its schedule must be set and in the future)"},
      {"pause", "scheduled or running -> paused"},
      {"resume", "paused -> where it was (scheduled or running)"},
      {"cancel", "any state but completed -> cancelled (--reason)"},
      {"withdraw", "submitted, approved or rejected -> draft"},
      {"start", "scheduled -> running (what the scheduler does when an occurrence starts)"},
      {"complete", "running -> completed"},
      {"dryrun",
       "what an occurrence would do now, for the approver: audience, customers blocked by each rule, "
       "sends, items, predicted clicks and conversions; nothing reserved or recorded (needs --artifacts)"},
      {"run",
       "runs occurrence --occurrence of a scheduled or running campaign (its approved version only) as the "
       "push run '<id>/<occurrence>' (running it again sends nothing twice), within its budget; writes --out"},
      {"report",
       "the effect report: the customers sent to against those its holdout kept back (the same "
       "selection), per customer since their first decision: push opens, clicks, conversions, opt-outs, "
       "with 95% intervals and the lift (--to TIME, --format json)"},
      {"simulate",
       "on a generated bank: one occurrence in its planted world (--day D of its period, default a week before its "
       "end), the holdout sent nothing, then the world's remaining days; the two arms' clicks, conversions and "
       "opt-outs per customer with 95% intervals"},
      {"respond",
       "on a generated bank: its planted world's customers open the sends of occurrence --occurrence (--sends, the "
       "run's send list), each with its true probability (--seed), recorded as push_open feedback of the run; what "
       "report then counts (the world's app sessions end with its data, so opens are its only response)"},
      {"show", "the campaign (--format json for every field)"},
      {"list", "every campaign: id, state, revision, name (--state S to filter, --format json)"},
      {"audit", "the audit log: every change with who, when, from where and what changed (--format csv|json)"},
  };
  for (const Sub& s : subs) {
    CLI::App* sub = cmd.app->add_subcommand(s.name, s.help);
    AddCommonOptions(sub, &opts->common);
    const std::string name = s.name;
    sub->callback([opts, name] { opts->action = name; });
    if (name == "create" || name == "edit") {
      sub->add_option("--file", opts->file, "the campaign definition, a JSON object (README: Campaigns)")->required();
    } else if (name != "list") {
      sub->add_option("id", opts->id, "the campaign id")->required();
    }
    if (name == "dryrun" || name == "run") {
      sub->add_option("--out", opts->out, "the send list CSV customer_id,item_id,scheduled_at,reasons")->required();
      sub->add_option("--now", opts->now, "time of the run (ISO-8601 or epoch ms; default now)");
      sub->add_option("--occurrence", opts->occurrence, "the occurrence, e.g. its date (the run id's second part)");
      if (name == "run") sub->add_option("--operator", opts->who, "who starts the run (audit log)")->required();
      continue;
    }
    if (name == "report") {
      sub->add_option("--to", opts->to, "count outcomes before this time (default: everything recorded)");
    }
    if (name == "respond") {
      sub->add_option("--occurrence", opts->occurrence, "the occurrence whose sends are answered")->required();
      sub->add_option("--sends", opts->sends, "its send list (the CSV `campaign run --out` wrote)")->required();
      sub->add_option("--seed", opts->seed, "seed of the draws (default 1)");
      continue;
    }
    if (name == "simulate") {
      sub->add_option("--day", opts->day, "the occurrence's day in the world's period (1..days-1)");
      sub->add_option("--out", opts->out, "write the report here instead of stdout");
      continue;
    }
    if (name == "show" || name == "list" || name == "audit" || name == "report") {
      sub->add_option("--format", opts->format, name == "audit" ? "json (one entry a line) or csv" : "text or json")
          ->check(CLI::IsMember({"text", "json", "csv"}));
      sub->add_option("--out", opts->out, "write to this file (atomically) instead of stdout");
      if (name == "list") sub->add_option("--state", opts->state, "only campaigns in this state");
      continue;
    }
    sub->add_option("--operator", opts->who, "who makes the change (recorded in the audit log)")->required();
    sub->add_option("--revision", opts->revision,
                    "the revision the change is based on: refused (conflict) if the campaign changed since");
    sub->add_option("--now", opts->now, "time of the change (ISO-8601 or epoch ms; default now)");
    if (name == "reject" || name == "cancel" || name == "pause") {
      sub->add_option("--reason", opts->reason, "why (recorded in the audit log)");
    }
  }
  cmd.run = [opts] {
    if (opts->action == "audit" && opts->format == "text") opts->format = "json";
    return Run(*opts);
  };
  return cmd;
}

namespace {

struct SegmentOptions {
  CommonOptions common;
  std::string action, name, audience, description, who, now, format = "text", out;
  int64_t revision = 0;
};

Status RunSegment(const SegmentOptions& o) {
  QM_ASSIGN_OR_RETURN(EngineConfig config, LoadEngineConfig(o.common.config));
  ApplyOverrides(o.common, &config);
  QM_ASSIGN_OR_RETURN(TimeZone tz, TimeZone::Load(config.data.timezone));
  policy::StoreConfig sc = config.store;
  sc.read_only = o.action != "save" && sc.backend == "embedded";
  QM_ASSIGN_OR_RETURN(std::unique_ptr<policy::EventStore> store, policy::EventStore::Open(sc));
  std::unique_ptr<Dataset> data;
  campaign::Segments segments(store.get(), [&](const std::string& audience) -> Status {
    if (!data) {
      QM_ASSIGN_OR_RETURN(data, LoadBankFields(config));
    }
    return push::Audience::Compile(audience, *data).status();
  });
  if (o.action == "list") {
    QM_ASSIGN_OR_RETURN(std::vector<campaign::Segment> all, segments.List());
    std::string text = o.format == "json" ? "[" : "";
    for (const campaign::Segment& s : all) {
      if (o.format == "json") {
        text += (text.size() > 1 ? "," : "") + campaign::SegmentJson(s);
      } else {
        text += s.name + "\t" + std::to_string(s.revision) + "\t" + s.audience + "\t" + s.description + "\n";
      }
    }
    return WriteOut(o.out, o.format == "json" ? text + "]\n" : text);
  }
  if (o.action == "show") {
    QM_ASSIGN_OR_RETURN(campaign::Segment s, segments.Get(o.name));
    if (o.format == "json") return WriteOut(o.out, campaign::SegmentJson(s) + "\n");
    return WriteOut(o.out, "segment " + s.name + ", revision " + std::to_string(s.revision) + " (saved by " +
                               s.updated_by + ")\n  audience: " + s.audience + "\n  " + s.description + "\n");
  }
  if (o.action == "audit") {
    QM_ASSIGN_OR_RETURN(std::vector<std::string> entries, segments.Audit(o.name));
    std::string text;
    for (const std::string& e : entries) text += e + "\n";
    return WriteOut(o.out, text);
  }
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  campaign::Actor actor{o.who, std::string("cli@") + host, kNoTime};
  QM_ASSIGN_OR_RETURN(actor.now, FlagTime(o.now, tz));
  QM_ASSIGN_OR_RETURN(campaign::Segment s,
                      segments.Save(o.name, o.audience, o.description, actor, static_cast<uint64_t>(o.revision)));
  std::printf("segment %s saved: revision %llu\n", s.name.c_str(), static_cast<unsigned long long>(s.revision));
  return Status::Ok();
}

}  // namespace

Command AddSegmentCommand(CLI::App& root) {
  auto opts = std::make_shared<SegmentOptions>();
  Command cmd;
  cmd.app = root.add_subcommand(
      "segment",
      "Saved segments: named audience expressions that campaigns name in their audience (segment:NAME). "
      "An approval snapshots the segments a campaign names; editing a segment later does not change an approved "
      "campaign. Works on the event store of --data / [store]");
  cmd.app->require_subcommand(1);
  const std::pair<const char*, const char*> subs[] = {
      {"save", "create or replace segment NAME with --audience (checked against the bank's fields)"},
      {"show", "the segment (--format json)"},
      {"list", "every segment: name, revision, audience, description (--format json)"},
      {"audit", "every save of the segment: who, when, from where, the expression (JSON lines)"},
  };
  for (const auto& [name_c, help] : subs) {
    const std::string name = name_c;
    CLI::App* sub = cmd.app->add_subcommand(name, help);
    AddCommonOptions(sub, &opts->common);
    sub->callback([opts, name] { opts->action = name; });
    if (name != "list") sub->add_option("name", opts->name, "the segment's name")->required();
    if (name == "save") {
      sub->add_option("--audience", opts->audience, "the expression (the push audience language)")->required();
      sub->add_option("--description", opts->description, "what it is for");
      sub->add_option("--operator", opts->who, "who saves it (recorded in the audit log)")->required();
      sub->add_option("--revision", opts->revision, "refused (conflict) unless the segment is at this revision");
      sub->add_option("--now", opts->now, "time of the change (ISO-8601 or epoch ms; default now)");
      continue;
    }
    if (name != "audit") {
      sub->add_option("--format", opts->format, "text or json")->check(CLI::IsMember({"text", "json"}));
    }
    sub->add_option("--out", opts->out, "write to this file (atomically) instead of stdout");
  }
  cmd.run = [opts] { return RunSegment(*opts); };
  return cmd;
}

}  // namespace qm::tools
