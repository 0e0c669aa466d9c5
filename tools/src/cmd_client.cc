// `qianmian client` (SPEC §3). Scaffolding: the command exists and says it is not built yet.
#include "commands.h"

namespace qm::tools {

Command AddClientCommand(CLI::App& root) {
  Command c;
  c.app = root.add_subcommand("client", "not built yet");
  c.run = [] { return Status::FailedPrecondition("'client' is not built yet"); };
  return c;
}

}  // namespace qm::tools
