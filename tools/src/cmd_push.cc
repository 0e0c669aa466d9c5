// `qianmian push` (SPEC §3). Scaffolding: the command exists and says it is not built yet.
#include "commands.h"

namespace qm::tools {

Command AddPushCommand(CLI::App& root) {
  Command c;
  c.app = root.add_subcommand("push", "not built yet");
  c.run = [] { return Status::FailedPrecondition("'push' is not built yet"); };
  return c;
}

}  // namespace qm::tools
