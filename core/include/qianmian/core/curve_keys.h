// Module core: ZeroMQ CURVE key files (issue 19). Plain TOML, no ZeroMQ here: `qianmian keygen`
// makes the keys (client/curve.h), the server and the clients read them.
//   NAME.key (mode 0600): public_key = "<Z85>"  secret_key = "<Z85>"
//   NAME.pub:             public_key = "<Z85>"
//   the server's clients file: [[clients]] name = "app-backend"  public_key = "<Z85>"
//                              ops = ["recommend", "feedback"]   (["*"]: every op)
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "qianmian/core/status.h"

namespace qm {

struct CurveKeys {
  std::string public_key, secret_key;  // Z85 text, 40 characters each; secret_key "" for a .pub
};

// Whether `key` is a Z85-encoded 32-byte key (40 characters of the Z85 alphabet).
bool IsZ85Key(std::string_view key);

// Reads a key file; with `need_secret`, a .key file with both keys. Errors name the file and
// the key, never a key's value.
[[nodiscard]] Result<CurveKeys> ReadCurveKeyFile(const std::string& path, bool need_secret);

// Writes <base>.key (created with mode 0600; refused when it exists) and <base>.pub.
[[nodiscard]] Status WriteCurveKeyFiles(const CurveKeys& keys, const std::string& base);

// One client the server lets in, and the ops it may call ("*" = every op).
struct CurveClient {
  std::string name, public_key;
  std::vector<std::string> ops;
};
// The server's clients file. InvalidArgument naming the entry for a missing or malformed name
// or key, a name or key listed twice, or no ops.
[[nodiscard]] Result<std::vector<CurveClient>> ReadCurveClients(const std::string& path);

// The HTTP port's JSON API clients ([server] http_clients): the same file layout with the
// SHA-256 of each client's bearer token instead of a public key:
//   [[clients]] name = "java-backend"  token_sha256 = "<64 lowercase hex>"  ops = ["recommend"]
// A token is 64 hex digits (`qianmian keygen --http-token`); only its hash is kept.
struct HttpClient {
  std::string name, token_sha256;
  std::vector<std::string> ops;
};
[[nodiscard]] Result<std::vector<HttpClient>> ReadHttpClients(const std::string& path);
// Writes a new random token to `path` (created with mode 0600; refused when it exists) and
// returns it.
[[nodiscard]] Result<std::string> WriteHttpToken(const std::string& path);

}  // namespace qm
