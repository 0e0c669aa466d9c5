// Module core: the foundation: Status, domain types, CSV, time, configuration, dataset loading. May
// depend on: the standard library; toml++ and date (private).
// [data]: core's settings (where the bank's files are and how strictly they are read), read by
// ReadDataConfig next to them. Every module's settings live in <module>/<module>_config.h.
#pragma once

#include <string>
#include <vector>

#include "qianmian/core/config.h"

namespace qm {

struct DataConfig {
  std::string dir = "data";                                   // folder with customers.csv, items.csv, events.csv
  double max_bad_row_share = 0.01;                            // a file with more bad rows than this share fails
  std::string timezone = "Asia/Shanghai";                     // the bank's time zone (local times, calendars)
  std::string schema;                                         // schema file for extra customer columns;
                                                              // empty = <dir>/schema.toml when it exists
  std::vector<std::string> channels = {"sms", "app_banner"};  // channels beyond the built-ins
  // The time of a request that gives none: "wall" (the clock: a live bank) or "data_end" (just
  // after the last event of events.csv: a historic data set such as MovieLens, served as of its
  // end rather than years later, when its time and contact features would leave their range).
  std::string clock = "wall";
};
void ReadDataConfig(ConfigTable t, DataConfig* c);

}  // namespace qm
