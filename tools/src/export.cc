#include "qianmian/tools/export.h"

#include <cstdio>
#include <filesystem>

#include "qianmian/core/csv.h"
#include "qianmian/core/time.h"
#include "qianmian/policy/event_store.h"

namespace qm::tools {

namespace {

std::string Join(const std::vector<std::string>& parts) {
  std::string s;
  for (const std::string& p : parts) {
    if (!s.empty()) s.push_back(';');
    s += p;
  }
  return s;
}

void EventRow(const policy::StoredEvent& e, CsvWriter* w) {
  w->Field(static_cast<int64_t>(e.ts));
  w->RawField(FormatIsoUtc(e.ts));
  w->Field(e.customer_id);
  w->Field(e.item_id);
  w->RawField(EventTypeName(e.type));
  w->Field(e.channel);
  w->Field(e.request_id);
  w->Field(e.campaign);
  w->Field(e.category);
  w->Field(e.service ? 1 : 0);
  w->EndRow();
}

void DecisionRow(const policy::DecisionRecord& d, CsvWriter* w) {
  w->Field(static_cast<int64_t>(d.ts));
  w->RawField(FormatIsoUtc(d.ts));
  w->RawField(policy::DecisionKindName(d.kind));
  w->Field(d.request_id);
  w->Field(d.customer_id);
  w->Field(d.channel);
  w->Field(d.item_id);
  w->Field(d.position);
  w->Field(d.score, 6);
  w->Field(static_cast<double>(d.p_click), 6);
  w->Field(static_cast<double>(d.p_convert), 6);
  w->Field(d.model_version);
  w->Field(Join(d.arms));
  w->Field(Join(d.reasons));
  w->EndRow();
}

// The rows of `kind` in [from, to) into `w`; counts them.
Status WriteRows(policy::EventStore* store, ExportKind kind, TimeMs from, TimeMs to, CsvWriter* w, uint64_t* rows) {
  if (kind == ExportKind::kEvents) {
    w->Row({"ts_ms", "time", "customer_id", "item_id", "type", "channel", "request_id", "campaign", "category",
            "service"});
    return store->Export([&](const policy::StoredEvent& e) {
      if (e.ts >= from && e.ts < to) {
        EventRow(e, w);
        ++*rows;
      }
      return true;
    });
  }
  w->Row({"ts_ms", "time", "kind", "request_id", "customer_id", "channel", "item_id", "position", "score", "p_click",
          "p_convert", "model_version", "arms", "reasons"});
  return store->ExportDecisions([&](const policy::DecisionRecord& d) {
    if (d.ts >= from && d.ts < to) {
      DecisionRow(d, w);
      ++*rows;
    }
    return true;
  });
}

}  // namespace

Result<uint64_t> ExportCsv(policy::EventStore* store, ExportKind kind, TimeMs from, TimeMs to, const std::string& out) {
  if (from > to) {
    return Status::InvalidArgument("--from (" + FormatIsoUtc(from) + ") is after --to (" + FormatIsoUtc(to) + ")");
  }
  const std::string tmp = out + ".tmp";
  Result<std::unique_ptr<CsvWriter>> opened = CsvWriter::Open(tmp);
  if (!opened.ok()) return Status::IoError("--out: cannot write '" + out + "' (" + opened.status().message() + ")");
  std::unique_ptr<CsvWriter> w = std::move(opened).value();
  uint64_t rows = 0;
  Status st = WriteRows(store, kind, from, to, w.get(), &rows);
  Status closed = w->Close();
  if (st.ok()) st = closed;
  std::error_code ec;
  if (st.ok()) {
    std::filesystem::rename(tmp, out, ec);
    if (ec) st = Status::IoError("cannot write '" + out + "': " + ec.message());
  }
  if (!st.ok()) {
    std::filesystem::remove(tmp, ec);
    return st;
  }
  return rows;
}

}  // namespace qm::tools
