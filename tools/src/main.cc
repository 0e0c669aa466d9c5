// qianmian: one program, one subcommand per job (SPEC §3).
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "qianmian/core/allocator.h"
#include "qianmian/core/version.h"

namespace {

// The exit status tells a scheduler what to do (README, "Exit codes"): 2 = bad input or
// configuration (do not retry: it fails the same way), 75 = a dependency is unavailable (the event
// store, a server: retry later; EX_TEMPFAIL of sysexits.h), 1 = any other failure.
int ExitCode(const qm::Status& st) {
  switch (st.code()) {
    case qm::StatusCode::kOk:
      return 0;
    case qm::StatusCode::kInvalidArgument:
    case qm::StatusCode::kNotFound:
    case qm::StatusCode::kAlreadyExists:
    case qm::StatusCode::kFailedPrecondition:
    case qm::StatusCode::kPermissionDenied:
      return 2;
    case qm::StatusCode::kConflict:
    case qm::StatusCode::kUnavailable:
    case qm::StatusCode::kResourceExhausted:
    case qm::StatusCode::kDeadlineExceeded:
      return 75;
    default:
      return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  qm::ConfigureAllocatorForTensors();
  CLI::App app{"qianmian (千面): recommendation and content ranking for retail banks"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("qianmian ") + qm::kQianmianVersion);
  std::vector<qm::tools::Command> commands = {
      qm::tools::AddGenerateCommand(app), qm::tools::AddImportCommand(app),   qm::tools::AddInspectCommand(app),
      qm::tools::AddTrainCommand(app),    qm::tools::AddEvalCommand(app),     qm::tools::AddRecommendCommand(app),
      qm::tools::AddServeCommand(app),    qm::tools::AddClientCommand(app),   qm::tools::AddBenchCommand(app),
      qm::tools::AddPushCommand(app),     qm::tools::AddReportCommand(app),   qm::tools::AddSimulateCommand(app),
      qm::tools::AddExportCommand(app),   qm::tools::AddCampaignCommand(app), qm::tools::AddSegmentCommand(app),
      qm::tools::AddVersionsCommand(app), qm::tools::AddRollbackCommand(app), qm::tools::AddKeygenCommand(app),
      qm::tools::AddUserCommand(app),
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help and --version exit 0; a bad command line is bad input
  }
  for (auto& c : commands) {
    if (!c.app->parsed()) continue;
    qm::Status st = c.run();
    if (!st.ok()) {
      std::fprintf(stderr, "qianmian %s: %s\n", c.app->get_name().c_str(), st.message().c_str());
      return ExitCode(st);
    }
    return 0;
  }
  return 1;
}
