// `qianmian serve` (SPEC §3): the ZeroMQ server over the engine until SIGTERM or SIGINT, which
// drain requests in flight, close (flush) the event store and exit 0.
#include <signal.h>

#include <cstdio>
#include <memory>

#include <spdlog/spdlog.h>

#include "commands.h"
#include "engine_config.h"
#include "qianmian/server/server.h"
#include "qianmian/serving/engine.h"

namespace qm::tools {

namespace {

Status Run(const CommonOptions& o) {
  // Block the stop signals before any thread starts, so every thread inherits the mask and
  // only the sigwait below sees them (a signal during loading waits until serving starts).
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  if (pthread_sigmask(SIG_BLOCK, &stop, nullptr) != 0) return Status::Internal("cannot block SIGTERM");

  QM_ASSIGN_OR_RETURN(EngineConfig config, LoadEngineConfig(o.config));
  ApplyOverrides(o, &config);
  QM_RETURN_IF_ERROR(server::ConfigureLogging(config.server));
  if (config.server.log_format == "json") setenv("QM_PROGRESS", "0", 1);  // no progress bars among JSON lines
  serving::EngineOptions eo = EngineOptionsFrom(config);
  QM_ASSIGN_OR_RETURN(std::unique_ptr<serving::Engine> engine, serving::Engine::Open(std::move(eo)));
  // `reload` re-reads [experiments] from the file given by --config (none: nothing to re-read).
  server::ExperimentsSource experiments;
  if (!o.config.empty()) {
    experiments = [path = o.config, config] { return ReloadExperiments(path, config); };
  }
  QM_ASSIGN_OR_RETURN(std::unique_ptr<server::Server> srv,
                      server::Server::Start(config.server, engine.get(), config.artifacts_root, experiments));
  spdlog::info("qianmian serve: listening on {} (model {}, {} customers, {} items)", srv->endpoint(),
               engine->model_version(), engine->num_customers(), engine->num_items());
  spdlog::default_logger()->flush();
  int sig = 0;
  while (sigwait(&stop, &sig) != 0) {
  }
  spdlog::info("qianmian serve: {}: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  Status drained = srv->Stop();
  srv.reset();
  engine.reset();  // closes the event store (every acknowledged event is already durable)
  if (!drained.ok()) return drained;
  spdlog::info("qianmian serve: stopped");
  spdlog::default_logger()->flush();
  return Status::Ok();
}

}  // namespace

Command AddServeCommand(CLI::App& root) {
  auto opts = std::make_shared<CommonOptions>();
  Command c;
  c.app = root.add_subcommand("serve",
                              "Runs the ZeroMQ server (SPEC §5) until SIGTERM/SIGINT, which drain requests in "
                              "flight and exit 0");
  AddCommonOptions(c.app, opts.get());
  c.app->add_option("--bind", opts->bind, "ROUTER address (overrides [server] bind; default tcp://127.0.0.1:5555)");
  c.run = [opts]() -> Status { return Run(*opts); };
  return c;
}

}  // namespace qm::tools
