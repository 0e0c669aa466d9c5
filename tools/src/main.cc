// qianmian: one program, one subcommand per job (SPEC §3).
#include <cstdio>
#include <vector>

#include "commands.h"
#include "qianmian/core/allocator.h"

int main(int argc, char** argv) {
  qm::ConfigureAllocatorForTensors();
  CLI::App app{"qianmian (千面): recommendation and content ranking for retail banks"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "qianmian 0.1.0");
  std::vector<qm::tools::Command> commands = {
      qm::tools::AddGenerateCommand(app), qm::tools::AddImportCommand(app), qm::tools::AddInspectCommand(app),
      qm::tools::AddTrainCommand(app),    qm::tools::AddEvalCommand(app),   qm::tools::AddRecommendCommand(app),
      qm::tools::AddServeCommand(app),    qm::tools::AddClientCommand(app), qm::tools::AddBenchCommand(app),
      qm::tools::AddPushCommand(app),     qm::tools::AddReportCommand(app), qm::tools::AddSimulateCommand(app),
      qm::tools::AddExportCommand(app),
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (auto& c : commands) {
    if (!c.app->parsed()) continue;
    qm::Status st = c.run();
    if (!st.ok()) {
      std::fprintf(stderr, "qianmian %s: %s\n", c.app->get_name().c_str(), st.message().c_str());
      return 1;
    }
    return 0;
  }
  return 1;
}
