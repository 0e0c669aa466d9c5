// `qianmian serve` (SPEC §3): the ZeroMQ server over the engine until SIGTERM or SIGINT, which
// drain requests in flight, close (flush) the event store and exit 0.
#include <signal.h>

#include <cstdio>
#include <memory>

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
  serving::EngineOptions eo = EngineOptionsFrom(config);
  QM_ASSIGN_OR_RETURN(std::unique_ptr<serving::Engine> engine, serving::Engine::Open(std::move(eo)));
  // `reload` re-reads [experiments] from the file given by --config (none: nothing to re-read).
  server::ExperimentsSource experiments;
  if (!o.config.empty()) {
    experiments = [path = o.config, config] { return ReloadExperiments(path, config); };
  }
  QM_ASSIGN_OR_RETURN(std::unique_ptr<server::Server> srv,
                      server::Server::Start(config.server, engine.get(), config.artifacts_root, experiments));
  std::fprintf(stderr, "qianmian serve: listening on %s (model %s, %lld customers, %lld items)\n",
               srv->endpoint().c_str(), engine->model_version().c_str(),
               static_cast<long long>(engine->num_customers()), static_cast<long long>(engine->num_items()));
  std::fflush(stderr);
  int sig = 0;
  while (sigwait(&stop, &sig) != 0) {
  }
  std::fprintf(stderr, "qianmian serve: %s: draining\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  Status drained = srv->Stop();
  srv.reset();
  engine.reset();  // closes the event store (every acknowledged event is already durable)
  if (!drained.ok()) return drained;
  std::fprintf(stderr, "qianmian serve: stopped\n");
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
