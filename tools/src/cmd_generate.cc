#include "commands.h"
namespace qm::tools {
Command AddGenerateCommand(CLI::App& root) { Command c; c.app = root.add_subcommand("generate", "(in progress)"); c.run = [] { return Status::FailedPrecondition("not built yet"); }; return c; }
}
