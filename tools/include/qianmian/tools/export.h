// Module tools: the qianmian command line and the public-data importers. May depend on: every
// module.
// `qianmian export`: the event store's events or decision log (issue 17) over a time range as a
// CSV file with a header, for the bank's data warehouse (Parquet is not in Debian, so CSV).
#pragma once

#include <cstdint>
#include <string>

#include "qianmian/core/status.h"
#include "qianmian/core/types.h"

namespace qm::policy {
class EventStore;
}

namespace qm::tools {

enum class ExportKind { kEvents, kDecisions };

// Writes every record of `store` with from <= ts < to to the CSV file `out` (written under a
// temporary name and renamed into place; left untouched on error), in the store's order (by
// customer, then time). Header (events):
//   ts_ms,time,customer_id,item_id,type,channel,request_id,campaign,category,service
// Header (decisions):
//   ts_ms,time,kind,request_id,customer_id,channel,item_id,position,score,p_click,p_convert,
//   model_version,arms,reasons
// (time: ISO-8601 UTC; arms and reasons joined with ';'). Returns the number of rows.
// InvalidArgument when from > to; IoError when `out` cannot be written; the store's errors.
[[nodiscard]] Result<uint64_t> ExportCsv(policy::EventStore* store, ExportKind kind, TimeMs from, TimeMs to,
                                         const std::string& out);

}  // namespace qm::tools
