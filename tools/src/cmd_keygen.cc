// `qianmian keygen` (issue 19): a ZeroMQ CURVE key pair for the server or a client, and the
// CURVE flags of `client` and `bench` (curve_flags.h).
#include <cstdio>
#include <memory>

#include "commands.h"
#include "curve_flags.h"
#include "qianmian/artifacts/manifest.h"
#include "qianmian/core/curve_keys.h"

namespace qm::tools {

void AddCurveOptions(CLI::App* app, CurveFlags* flags) {
  app->add_option("--curve-key", flags->key, "CURVE: this client's key pair file (NAME.key of qianmian keygen)");
  app->add_option("--server-key", flags->server_key, "CURVE: the server's public key file (its NAME.pub)");
}

Status ApplyCurve(const CurveFlags& flags, client::ClientOptions* options) {
  if (flags.key.empty() && flags.server_key.empty()) return Status::Ok();
  if (flags.key.empty() || flags.server_key.empty()) {
    return Status::InvalidArgument("CURVE needs both --curve-key (yours) and --server-key (the server's .pub)");
  }
  QM_ASSIGN_OR_RETURN(CurveKeys mine, ReadCurveKeyFile(flags.key, true));
  QM_ASSIGN_OR_RETURN(CurveKeys server, ReadCurveKeyFile(flags.server_key, false));
  options->curve_public_key = mine.public_key;
  options->curve_secret_key = mine.secret_key;
  options->curve_server_key = server.public_key;
  return Status::Ok();
}

Command AddKeygenCommand(CLI::App& root) {
  auto out = std::make_shared<std::string>();
  auto token = std::make_shared<bool>(false);
  Command cmd;
  cmd.app = root.add_subcommand(
      "keygen",
      "A ZeroMQ CURVE key pair: OUT.key (public and secret key, mode 0600, never overwritten) and OUT.pub (the "
      "public key to hand out). The server's in [server] curve_key; a client's public key in the server's "
      "curve_clients file, its .key with `client`/`bench` --curve-key");
  cmd.app->add_option("--out", *out, "the files' path without extension, e.g. /etc/qianmian/server")->required();
  cmd.app->add_flag("--http-token", *token,
                    "instead: a bearer token for the HTTP port's JSON API in OUT.token (mode 0600); prints the "
                    "token_sha256 line of [server] http_clients");
  cmd.run = [out, token]() -> Status {
    if (*token) {
      QM_ASSIGN_OR_RETURN(std::string t, WriteHttpToken(*out + ".token"));
      std::printf(
          "wrote %s.token (secret: send it as 'Authorization: Bearer <token>'); list the client in "
          "[server] http_clients with\ntoken_sha256 = \"%s\"\n",
          out->c_str(), artifacts::Sha256Hex(t).c_str());
      return Status::Ok();
    }
    QM_ASSIGN_OR_RETURN(client::CurveKeyPair k, client::GenerateCurveKeys());
    QM_RETURN_IF_ERROR(WriteCurveKeyFiles(CurveKeys{k.public_key, k.secret_key}, *out));
    std::printf("wrote %s.key (secret) and %s.pub; public key %s\n", out->c_str(), out->c_str(), k.public_key.c_str());
    return Status::Ok();
  };
  return cmd;
}

}  // namespace qm::tools
