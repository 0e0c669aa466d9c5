#include "commands.h"
namespace qm::tools {
Command AddImportCommand(CLI::App& root) { Command c; c.app = root.add_subcommand("import", "(in progress)"); c.run = [] { return Status::FailedPrecondition("not built yet"); }; return c; }
}
