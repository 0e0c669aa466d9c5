#include "qianmian/core/core_config.h"

namespace qm {

void ReadDataConfig(ConfigTable t, DataConfig* c) {
  t.Read("dir", &c->dir);
  t.Read("max_bad_row_share", &c->max_bad_row_share);
  if (c->max_bad_row_share < 0 || c->max_bad_row_share > 1) {
    t.Error("max_bad_row_share", "must be in [0, 1]");
  }
  t.Read("timezone", &c->timezone);
  t.Read("schema", &c->schema);
  t.Read("channels", &c->channels);
  t.Read("clock", &c->clock);
  if (c->clock != "wall" && c->clock != "data_end") t.Error("clock", "must be \"wall\" or \"data_end\"");
}

}  // namespace qm
