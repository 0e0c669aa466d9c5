// The `qianmian` subcommands. Private to the tools module (CLI11 stays here).
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "qianmian/core/status.h"

namespace qm::tools {

// A subcommand: its CLI11 parser and what runs when it was chosen.
struct Command {
  CLI::App* app = nullptr;
  std::function<Status()> run;
};

// Options every command that touches them shares (SPEC §3: flags override the file).
struct CommonOptions {
  std::string config;     // --config FILE
  std::string data;       // --data DIR
  std::string artifacts;  // --artifacts ROOT
  std::string bind;       // --bind ADDR
};

// Adds --config, --data and --artifacts (SPEC §3: they override the file) to a subcommand.
void AddCommonOptions(CLI::App* app, CommonOptions* o);

Command AddInspectCommand(CLI::App& root);
Command AddGenerateCommand(CLI::App& root);
Command AddImportCommand(CLI::App& root);
Command AddTrainCommand(CLI::App& root);
Command AddEvalCommand(CLI::App& root);
Command AddRecommendCommand(CLI::App& root);
Command AddServeCommand(CLI::App& root);
Command AddClientCommand(CLI::App& root);
Command AddBenchCommand(CLI::App& root);
Command AddPushCommand(CLI::App& root);
Command AddReportCommand(CLI::App& root);
Command AddSimulateCommand(CLI::App& root);
Command AddExportCommand(CLI::App& root);
Command AddCampaignCommand(CLI::App& root);
Command AddSegmentCommand(CLI::App& root);
Command AddVersionsCommand(CLI::App& root);
Command AddRollbackCommand(CLI::App& root);
Command AddKeygenCommand(CLI::App& root);
Command AddUserCommand(CLI::App& root);

}  // namespace qm::tools
