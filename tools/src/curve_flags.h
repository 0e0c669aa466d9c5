// The CURVE flags of the commands that connect to a server (`client`, `bench`; issue 19).
// Private to the tools module.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "qianmian/client/client.h"
#include "qianmian/core/status.h"

namespace qm::tools {

struct CurveFlags {
  std::string key;         // --curve-key: this client's key pair file (NAME.key of qianmian keygen)
  std::string server_key;  // --server-key: the server's public key file (its .pub)
};

void AddCurveOptions(CLI::App* app, CurveFlags* flags);
// Sets the client's CURVE keys from the files (both flags or neither).
[[nodiscard]] Status ApplyCurve(const CurveFlags& flags, client::ClientOptions* options);

}  // namespace qm::tools
