// `qianmian serve` (SPEC §3). Scaffolding: the command exists and says it is not built yet.
#include "commands.h"

namespace qm::tools {

Command AddServeCommand(CLI::App& root) {
  Command c;
  c.app = root.add_subcommand("serve", "not built yet");
  c.run = [] { return Status::FailedPrecondition("'serve' is not built yet"); };
  return c;
}

}  // namespace qm::tools
