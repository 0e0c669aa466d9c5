// `qianmian bench` (SPEC §3). Scaffolding: the command exists and says it is not built yet.
#include "commands.h"

namespace qm::tools {

Command AddBenchCommand(CLI::App& root) {
  Command c;
  c.app = root.add_subcommand("bench", "not built yet");
  c.run = [] { return Status::FailedPrecondition("'bench' is not built yet"); };
  return c;
}

}  // namespace qm::tools
