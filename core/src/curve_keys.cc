// ZeroMQ CURVE key files (curve_keys.h).
#include "qianmian/core/curve_keys.h"

#include <fcntl.h>
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

Result<std::vector<CurveClient>> ReadCurveClients(const std::string& path) {
  QM_ASSIGN_OR_RETURN(ConfigFile f, ConfigFile::Load(path));
  std::vector<CurveClient> out;
  std::set<std::string> names, keys;
  size_t i = 0;
  for (ConfigTable t : f.Root().TableArray("clients")) {
    CurveClient c;
    t.Read("name", &c.name);
    t.Read("public_key", &c.public_key);
    t.Read("ops", &c.ops);
    const std::string where = path + ": clients[" + std::to_string(i++) + "]";
    if (c.name.empty()) return Status::InvalidArgument(where + ": 'name' is required");
    if (!IsZ85Key(c.public_key)) {
      return Status::InvalidArgument(where + " (" + c.name + "): 'public_key' must be a Z85 key of 40 characters");
    }
    if (c.ops.empty()) return Status::InvalidArgument(where + " (" + c.name + "): 'ops' lists none (\"*\" = all)");
    if (!names.insert(c.name).second)
      return Status::InvalidArgument(where + ": the name '" + c.name + "' is listed twice");
    if (!keys.insert(c.public_key).second) {
      return Status::InvalidArgument(where + " (" + c.name + "): its public key is another client's");
    }
    out.push_back(std::move(c));
  }
  QM_RETURN_IF_ERROR(f.Finish());
  if (out.empty()) return Status::InvalidArgument(path + ": no [[clients]]: nobody could connect");
  return out;
}

}  // namespace qm
