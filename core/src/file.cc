#include "qianmian/core/file.h"

#include <unistd.h>

#include <cstdio>

namespace qm {

Status WriteFileAtomically(const std::string& path, const std::vector<std::string>& parts) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return Status::IoError("cannot write '" + path + "'");
  bool ok = true;
  for (const auto& p : parts) ok = ok && std::fwrite(p.data(), 1, p.size(), f) == p.size();
  ok = ok && std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::IoError("writing '" + path + "' failed");
  }
  return Status::Ok();
}

}  // namespace qm
