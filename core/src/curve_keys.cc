// ZeroMQ CURVE key files (curve_keys.h).
#include "qianmian/core/curve_keys.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <set>

#include "qianmian/core/config.h"
#include "qianmian/core/file.h"

namespace qm {

bool IsZ85Key(std::string_view key) {
  static constexpr std::string_view kAlphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  if (key.size() != 40) return false;
  for (char c : key) {
    if (kAlphabet.find(c) == std::string_view::npos) return false;
  }
  return true;
}

Result<CurveKeys> ReadCurveKeyFile(const std::string& path, bool need_secret) {
  QM_ASSIGN_OR_RETURN(ConfigFile f, ConfigFile::Load(path));
  ConfigTable t = f.Root();
  CurveKeys k;
  t.Read("public_key", &k.public_key);
  t.Read("secret_key", &k.secret_key);
  QM_RETURN_IF_ERROR(f.Finish());
  if (!IsZ85Key(k.public_key)) {
    return Status::InvalidArgument(path + ": 'public_key' must be a Z85 key of 40 characters (qianmian keygen)");
  }
  if (need_secret && !IsZ85Key(k.secret_key)) {
    return Status::InvalidArgument(path +
                                   ": 'secret_key' must be a Z85 key of 40 characters (a .key file of "
                                   "qianmian keygen, not its .pub)");
  }
  return k;
}

Status WriteCurveKeyFiles(const CurveKeys& keys, const std::string& base) {
  const std::string secret = base + ".key";
  const int fd = ::open(secret.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::IoError("cannot create '" + secret + "': " + std::strerror(errno) +
                           (errno == EEXIST ? " (a key is never overwritten)" : ""));
  }
  const std::string text = "# qianmian CURVE key pair (qianmian keygen). Keep this file secret.\npublic_key = \"" +
                           keys.public_key + "\"\nsecret_key = \"" + keys.secret_key + "\"\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return Status::IoError("cannot write '" + secret + "'");
  return WriteFileAtomically(
      base + ".pub", {"# qianmian CURVE public key (qianmian keygen)\npublic_key = \"" + keys.public_key + "\"\n"});
}

namespace {

bool IsSha256Hex(std::string_view s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// A clients file of [[clients]] name, <key_field>, ops (the shape both lists share).
template <class Client>
Result<std::vector<Client>> ReadClients(const std::string& path, const char* key_field, std::string Client::*key,
                                        bool (*valid)(std::string_view), const char* key_rule) {
  QM_ASSIGN_OR_RETURN(ConfigFile f, ConfigFile::Load(path));
  std::vector<Client> out;
  std::set<std::string> names, keys;
  size_t i = 0;
  for (ConfigTable t : f.Root().TableArray("clients")) {
    Client c;
    t.Read("name", &c.name);
    t.Read(key_field, &(c.*key));
    t.Read("ops", &c.ops);
    const std::string where = path + ": clients[" + std::to_string(i++) + "]";
    if (c.name.empty()) return Status::InvalidArgument(where + ": 'name' is required");
    if (!valid(c.*key)) {
      return Status::InvalidArgument(where + " (" + c.name + "): '" + key_field + "' must be " + key_rule);
    }
    if (c.ops.empty()) return Status::InvalidArgument(where + " (" + c.name + "): 'ops' lists none (\"*\" = all)");
    if (!names.insert(c.name).second)
      return Status::InvalidArgument(where + ": the name '" + c.name + "' is listed twice");
    if (!keys.insert(c.*key).second) {
      return Status::InvalidArgument(where + " (" + c.name + "): its " + key_field + " is another client's");
    }
    out.push_back(std::move(c));
  }
  QM_RETURN_IF_ERROR(f.Finish());
  if (out.empty()) return Status::InvalidArgument(path + ": no [[clients]]: nobody could connect");
  return out;
}

}  // namespace

Result<std::vector<CurveClient>> ReadCurveClients(const std::string& path) {
  return ReadClients<CurveClient>(path, "public_key", &CurveClient::public_key, &IsZ85Key,
                                  "a Z85 key of 40 characters");
}

Result<std::vector<HttpClient>> ReadHttpClients(const std::string& path) {
  return ReadClients<HttpClient>(path, "token_sha256", &HttpClient::token_sha256, &IsSha256Hex,
                                 "the SHA-256 of the client's token, 64 lowercase hex digits");
}

Result<std::string> WriteHttpToken(const std::string& path) {
  unsigned char bytes[32];
  if (getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) {
    return Status::IoError(std::string("no random bytes from the system: ") + std::strerror(errno));
  }
  static const char kHex[] = "0123456789abcdef";
  std::string token;
  for (unsigned char b : bytes) {
    token += kHex[b >> 4];
    token += kHex[b & 15];
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::IoError("cannot create '" + path + "': " + std::strerror(errno) +
                           (errno == EEXIST ? " (a token is never overwritten)" : ""));
  }
  const std::string text = token + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return Status::IoError("cannot write '" + path + "'");
  return token;
}

}  // namespace qm
