// `qianmian versions` and `qianmian rollback`: the artifact root's versions, and moving CURRENT
// back to an earlier one (issue 19: a rollback that sticks). Servers follow CURRENT's changes
// (the watch), so a rollback reaches every replica that watches the root.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.h"
#include "engine_config.h"
#include "qianmian/artifacts/manifest.h"

namespace qm::tools {

namespace {

// One line of `versions`: name, creation time, the build, files, and the served-page figure.
std::string VersionLine(const std::string& root, const std::string& version, const std::string& current) {
  char line[512];
  Result<artifacts::Manifest> m = artifacts::ReadManifest(root, version);
  if (!m.ok()) {
    std::snprintf(line, sizeof line, "  %-24s unreadable: %s\n", version.c_str(), m.status().message().c_str());
    return line;
  }
  const nlohmann::json metrics = nlohmann::json::parse(m->metrics_json, nullptr, false);
  std::string served = "-";
  if (metrics.is_object() && metrics.contains("served.recall@20") && metrics["served.recall@20"].is_number()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4f", metrics["served.recall@20"].get<double>());
    served = buf;
  }
  std::snprintf(line, sizeof line, "%s %-24s %-24s %-8s %3zu files  served recall@20 %s\n",
                version == current ? "*" : " ", version.c_str(), m->created_at.c_str(),
                m->qianmian_version.empty() ? "?" : m->qianmian_version.c_str(), m->files.size(), served.c_str());
  return line;
}

}  // namespace

Command AddVersionsCommand(CLI::App& root) {
  auto opts = std::make_shared<CommonOptions>();
  Command cmd;
  cmd.app = root.add_subcommand("versions",
                                "The versions under the artifact root, oldest first; * marks the one CURRENT names");
  cmd.app->add_option("--config", opts->config, "configuration file (TOML)");
  cmd.app->add_option("--artifacts", opts->artifacts, "artifact root (overrides [artifacts] root)");
  cmd.run = [opts]() -> Status {
    QM_ASSIGN_OR_RETURN(EngineConfig config, LoadEngineConfig(opts->config));
    ApplyOverrides(*opts, &config);
    QM_ASSIGN_OR_RETURN(std::vector<std::string> versions, artifacts::ListVersions(config.artifacts_root));
    Result<std::string> current = artifacts::ReadCurrent(config.artifacts_root);
    if (versions.empty()) return Status::NotFound("no versions under '" + config.artifacts_root + "'");
    std::printf("  %-24s %-24s %-8s %9s\n", "version", "created (UTC)", "build", "");
    for (const std::string& v : versions) {
      std::fputs(VersionLine(config.artifacts_root, v, current.ok() ? *current : "").c_str(), stdout);
    }
    if (!current.ok()) std::printf("CURRENT: %s\n", current.status().message().c_str());
    return Status::Ok();
  };
  return cmd;
}

Command AddRollbackCommand(CLI::App& root) {
  auto opts = std::make_shared<CommonOptions>();
  auto version = std::make_shared<std::string>();
  Command cmd;
  cmd.app = root.add_subcommand(
      "rollback",
      "Point CURRENT at VERSION (an earlier one, or any other) after verifying every file of it; servers "
      "watching the root reload it within [server] watch_interval and keep it until CURRENT changes again "
      "(the next train). Refused, CURRENT unchanged, when the version fails verification");
  cmd.app->add_option("version", *version, "the version to serve (see `qianmian versions`)")->required();
  cmd.app->add_option("--config", opts->config, "configuration file (TOML)");
  cmd.app->add_option("--artifacts", opts->artifacts, "artifact root (overrides [artifacts] root)");
  cmd.run = [opts, version]() -> Status {
    QM_ASSIGN_OR_RETURN(EngineConfig config, LoadEngineConfig(opts->config));
    ApplyOverrides(*opts, &config);
    Result<std::string> before = artifacts::ReadCurrent(config.artifacts_root);
    QM_RETURN_IF_ERROR(artifacts::SetCurrent(config.artifacts_root, *version));
    std::printf("CURRENT: %s -> %s (verified)\n", before.ok() ? before->c_str() : "(none)", version->c_str());
    return Status::Ok();
  };
  return cmd;
}

}  // namespace qm::tools
