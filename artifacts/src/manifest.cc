#include "qianmian/artifacts/manifest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "qianmian/core/time.h"
#include "sha256.h"

namespace qm::artifacts {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr char kManifestTemp[] = "MANIFEST.json.tmp";
constexpr size_t kReadBuffer = 1 << 20;

std::string ErrnoText() { return std::strerror(errno); }

// Closes a file descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now; false when close failed.
  bool Close() {
    const int fd = fd_;
    fd_ = -1;
    return fd < 0 || ::close(fd) == 0;
  }

 private:
  int fd_;
};

// Streams a file into `hash`; returns its size. fsyncs it first when `sync`.
Result<uint64_t> HashInto(const std::string& path, Sha256* hash, bool sync) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Status::IoError("cannot open " + path + ": " + ErrnoText());
  if (sync && ::fsync(fd.get()) != 0) {
    return Status::IoError("cannot fsync " + path + ": " + ErrnoText());
  }
  std::vector<char> buf(kReadBuffer);
  uint64_t size = 0;
  for (;;) {
    const ssize_t got = ::read(fd.get(), buf.data(), buf.size());
    if (got < 0) {
      if (errno == EINTR) continue;
      return Status::IoError("cannot read " + path + ": " + ErrnoText());
    }
    if (got == 0) break;
    hash->Update(buf.data(), static_cast<size_t>(got));
    size += static_cast<uint64_t>(got);
  }
  return size;
}

Status FsyncDir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return Status::IoError("cannot open folder " + dir + ": " + ErrnoText());
  if (::fsync(fd.get()) != 0) return Status::IoError("cannot fsync " + dir + ": " + ErrnoText());
  return Status::Ok();
}

// Writes `content` to `path` (created or truncated) and fsyncs it.
Status WriteFileSynced(const std::string& path, const std::string& content) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) return Status::IoError("cannot create " + path + ": " + ErrnoText());
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t put = ::write(fd.get(), content.data() + done, content.size() - done);
    if (put < 0) {
      if (errno == EINTR) continue;
      return Status::IoError("cannot write " + path + ": " + ErrnoText());
    }
    done += static_cast<size_t>(put);
  }
  if (::fsync(fd.get()) != 0) return Status::IoError("cannot fsync " + path + ": " + ErrnoText());
  if (!fd.Close()) return Status::IoError("cannot close " + path + ": " + ErrnoText());
  return Status::Ok();
}

// Replaces `path` atomically with `content`: temp file in the same folder, fsync, rename,
// fsync of the folder. Readers see the old or the new content, never a mix.
Status ReplaceFileAtomically(const std::string& dir, const std::string& name, const std::string& temp_name,
                             const std::string& content) {
  const std::string temp = dir + "/" + temp_name;
  const std::string path = dir + "/" + name;
  Status st = WriteFileSynced(temp, content);
  if (!st.ok()) {
    ::unlink(temp.c_str());
    return st;
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string why = ErrnoText();
    ::unlink(temp.c_str());
    return Status::IoError("cannot rename " + temp + " to " + path + ": " + why);
  }
  return FsyncDir(dir);
}

// A version name is one plain path component.
bool IsPlainName(const std::string& name) {
  if (name.empty() || name == "." || name == "..") return false;
  for (char c : name) {
    if (c == '/' || c == '\\' || c == '\0' || c == '\n' || c == '\r') return false;
  }
  return true;
}

// A relative '/'-separated path of plain components, not MANIFEST.json.
bool IsSafeRelativePath(const std::string& path) {
  if (path.empty() || path.front() == '/' || path == kManifestFile || path == kManifestTemp) {
    return false;
  }
  size_t start = 0;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const std::string part = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!IsPlainName(part)) return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

// "vYYYYMMDD-HHMMSS-NNNN": UTC time and a counter.
bool ParseVersionName(const std::string& name, std::string* prefix, int* counter) {
  if (name.size() != 21 || name[0] != 'v' || name[9] != '-' || name[16] != '-') return false;
  for (size_t i = 1; i < name.size(); ++i) {
    if (i == 9 || i == 16) continue;
    if (name[i] < '0' || name[i] > '9') return false;
  }
  *prefix = name.substr(0, 16);
  *counter = std::stoi(name.substr(17));
  return true;
}

std::string VersionPrefix(TimeMs now) {
  const std::time_t secs = static_cast<std::time_t>(now / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "v%Y%m%d-%H%M%S", &tm);
  return buf;
}

std::string VersionDir(const std::string& root, const std::string& version) { return root + "/" + version; }

json ManifestToJson(const Manifest& m) {
  json files = json::array();
  for (const ArtifactFile& f : m.files) {
    files.push_back({{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}});
  }
  json j;
  j["format"] = m.format;
  j["version"] = m.version;
  j["qianmian_version"] = m.qianmian_version;
  j["created_ms"] = m.created_ms;
  j["created_at"] = m.created_at;
  j["data_fingerprint"] = m.data_fingerprint;
  j["config"] = json::parse(m.config_json);
  j["metrics"] = json::parse(m.metrics_json);
  j["files"] = std::move(files);
  return j;
}

Result<Manifest> ManifestFromJson(const std::string& text, const std::string& where) {
  try {
    const json j = json::parse(text);
    Manifest m;
    m.format = j.at("format").get<int>();
    if (m.format != kManifestFormat) {
      return Status::Corruption(where + ": unsupported manifest format " + std::to_string(m.format));
    }
    m.version = j.at("version").get<std::string>();
    m.qianmian_version = j.value("qianmian_version", std::string());
    m.created_ms = j.at("created_ms").get<TimeMs>();
    m.created_at = j.at("created_at").get<std::string>();
    m.data_fingerprint = j.at("data_fingerprint").get<std::string>();
    m.config_json = j.at("config").dump();
    m.metrics_json = j.at("metrics").dump();
    for (const json& f : j.at("files")) {
      ArtifactFile file;
      file.path = f.at("path").get<std::string>();
      file.size = f.at("size").get<uint64_t>();
      file.sha256 = f.at("sha256").get<std::string>();
      m.files.push_back(std::move(file));
    }
    return m;
  } catch (const std::exception& e) {
    return Status::Corruption(where + " does not parse: " + e.what());
  }
}

Status ValidJson(const std::string& text, const char* what) {
  if (!json::accept(text)) return Status::InvalidArgument(std::string(what) + " is not valid JSON");
  return Status::Ok();
}

Result<std::string> ReadWholeFile(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    return Status::IoError("cannot open " + path + ": " + ErrnoText());
  }
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t got = ::read(fd.get(), buf, sizeof buf);
    if (got < 0) {
      if (errno == EINTR) continue;
      return Status::IoError("cannot read " + path + ": " + ErrnoText());
    }
    if (got == 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

Status WriteCurrent(const std::string& root, const std::string& version) {
  return ReplaceFileAtomically(root, kCurrentFile, std::string(kCurrentFile) + ".tmp-" + version, version + "\n");
}

}  // namespace

// ---- ArtifactWriter ----

struct ArtifactWriter::State {
  std::string root, version, dir;
  std::set<std::string> files;
  std::string config_json = "{}";
  std::string metrics_json = "{}";
  std::string fingerprint;
  bool committed = false;
};

ArtifactWriter::ArtifactWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}
ArtifactWriter::ArtifactWriter(ArtifactWriter&& other) noexcept = default;

ArtifactWriter& ArtifactWriter::operator=(ArtifactWriter&& other) noexcept {
  if (this != &other) {
    ArtifactWriter discard(std::move(*this));  // abandons what this held
    state_ = std::move(other.state_);
  }
  return *this;
}

ArtifactWriter::~ArtifactWriter() {
  if (!state_ || state_->committed) return;
  // Best effort: delete what was written but keep the empty folder as a tombstone, so the
  // name is never issued again. Without MANIFEST.json it is not a version (ListVersions).
  std::error_code ec;
  for (fs::directory_iterator it(state_->dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code ignored;
    fs::remove_all(it->path(), ignored);
  }
}

Result<ArtifactWriter> ArtifactWriter::Create(const std::string& root) {
  if (root.empty()) return Status::InvalidArgument("empty artifact root");
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return Status::IoError("cannot create artifact root " + root + ": " + ec.message());

  // Never sort before (or reuse) an existing version, even if the clock went back.
  std::string prefix = VersionPrefix(NowMs());
  int counter = 0;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    std::string p;
    int c = 0;
    if (!ParseVersionName(it->path().filename().string(), &p, &c)) continue;
    if (p > prefix) {
      prefix = p;
      counter = c + 1;
    } else if (p == prefix) {
      counter = std::max(counter, c + 1);
    }
  }
  if (ec) return Status::IoError("cannot list artifact root " + root + ": " + ec.message());

  for (; counter <= 9999; ++counter) {
    char suffix[8];
    std::snprintf(suffix, sizeof suffix, "-%04d", counter);
    const std::string version = prefix + suffix;
    const std::string dir = VersionDir(root, version);
    if (::mkdir(dir.c_str(), 0755) == 0) {
      auto state = std::make_unique<State>();
      state->root = root;
      state->version = version;
      state->dir = dir;
      return ArtifactWriter(std::move(state));
    }
    if (errno != EEXIST) return Status::IoError("cannot create " + dir + ": " + ErrnoText());
  }
  return Status::ResourceExhausted("more than 10000 artifact versions in one second under " + root);
}

const std::string& ArtifactWriter::version() const { return state_->version; }
const std::string& ArtifactWriter::dir() const { return state_->dir; }
std::string ArtifactWriter::PathFor(const std::string& relative_path) const {
  return state_->dir + "/" + relative_path;
}

Status ArtifactWriter::AddFile(const std::string& relative_path) {
  QM_CHECK_MSG(state_ != nullptr, "ArtifactWriter used after move");
  if (!IsSafeRelativePath(relative_path)) {
    return Status::InvalidArgument("artifact file '" + relative_path +
                                   "' must be a relative path without '.', '..' or empty parts, "
                                   "and not MANIFEST.json");
  }
  if (state_->files.count(relative_path)) {
    return Status::InvalidArgument("artifact file '" + relative_path + "' recorded twice");
  }
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(PathFor(relative_path), ec);
  if (ec || !fs::is_regular_file(st)) {
    return Status::NotFound("artifact file '" + relative_path + "' is not a regular file in " + state_->dir);
  }
  state_->files.insert(relative_path);
  return Status::Ok();
}

Status ArtifactWriter::SetConfig(const std::string& json_text) {
  QM_RETURN_IF_ERROR(ValidJson(json_text, "configuration"));
  state_->config_json = json::parse(json_text).dump();
  return Status::Ok();
}

Status ArtifactWriter::SetMetrics(const std::string& json_text) {
  QM_RETURN_IF_ERROR(ValidJson(json_text, "metrics"));
  state_->metrics_json = json::parse(json_text).dump();
  return Status::Ok();
}

void ArtifactWriter::SetMetrics(const std::map<std::string, double>& metrics) {
  json j = json::object();
  for (const auto& [name, value] : metrics) j[name] = value;
  state_->metrics_json = j.dump();
}

void ArtifactWriter::SetDataFingerprint(const std::string& fingerprint) { state_->fingerprint = fingerprint; }

Result<Manifest> ArtifactWriter::Commit() {
  QM_CHECK_MSG(state_ != nullptr, "ArtifactWriter used after move");
  State& s = *state_;
  if (s.committed) return Status::FailedPrecondition("version " + s.version + " already committed");

  // Every file in the folder must be recorded: nothing unverified may ship in a bundle.
  std::vector<std::string> dirs{s.dir};
  std::error_code ec;
  for (fs::recursive_directory_iterator it(s.dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path rel = it->path().lexically_relative(s.dir);
    const std::string rel_s = rel.generic_string();
    const fs::file_status st = it->symlink_status();
    if (fs::is_directory(st)) {
      dirs.push_back(it->path().string());
      continue;
    }
    if (rel_s == kManifestFile || rel_s == kManifestTemp) continue;  // from a failed Commit
    if (!fs::is_regular_file(st)) {
      return Status::FailedPrecondition("artifact folder " + s.dir + " holds '" + rel_s +
                                        "', which is not a regular file");
    }
    if (!s.files.count(rel_s)) {
      return Status::FailedPrecondition("artifact folder " + s.dir + " holds '" + rel_s +
                                        "', which was not recorded with AddFile");
    }
  }
  if (ec) return Status::IoError("cannot list " + s.dir + ": " + ec.message());

  Manifest m;
  m.version = s.version;
  m.created_ms = NowMs();
  m.created_at = FormatIsoUtc(m.created_ms);
  m.data_fingerprint = s.fingerprint;
  m.config_json = s.config_json;
  m.metrics_json = s.metrics_json;
  for (const std::string& path : s.files) {  // std::set: sorted by path
    Sha256 hash;
    QM_ASSIGN_OR_RETURN(uint64_t size, HashInto(PathFor(path), &hash, /*sync=*/true));
    m.files.push_back({path, size, hash.HexDigest()});
  }
  for (const std::string& d : dirs) QM_RETURN_IF_ERROR(FsyncDir(d));

  QM_RETURN_IF_ERROR(ReplaceFileAtomically(s.dir, kManifestFile, kManifestTemp, ManifestToJson(m).dump(2) + "\n"));
  QM_RETURN_IF_ERROR(Verify(s.root, s.version).status());
  QM_RETURN_IF_ERROR(FsyncDir(s.root));  // the version folder's entry, before CURRENT names it
  QM_RETURN_IF_ERROR(WriteCurrent(s.root, s.version));
  s.committed = true;
  return m;
}

// ---- Reading ----

Result<Manifest> ReadManifest(const std::string& root, const std::string& version) {
  if (!IsPlainName(version)) {
    return Status::InvalidArgument("'" + version + "' is not a version name");
  }
  const std::string dir = VersionDir(root, version);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::NotFound("no artifact version " + dir);
  const std::string path = dir + "/" + kManifestFile;
  Result<std::string> text = ReadWholeFile(path);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) {
      return Status::Corruption("version " + version + " has no " + kManifestFile + " (an unfinished write?)");
    }
    return text.status();
  }
  QM_ASSIGN_OR_RETURN(Manifest m, ManifestFromJson(*text, path));
  if (m.version != version) {
    return Status::Corruption(path + " names version '" + m.version + "', not '" + version + "'");
  }
  return m;
}

Result<Manifest> Verify(const std::string& root, const std::string& version) {
  QM_ASSIGN_OR_RETURN(Manifest m, ReadManifest(root, version));
  const std::string dir = VersionDir(root, version);
  std::set<std::string> listed;
  for (const ArtifactFile& f : m.files) {
    const std::string where = "version " + version + ": file '" + f.path + "'";
    if (!IsSafeRelativePath(f.path)) return Status::Corruption(where + " has an unsafe path");
    if (!listed.insert(f.path).second) return Status::Corruption(where + " is listed twice");
    const std::string path = dir + "/" + f.path;
    std::error_code ec;
    const fs::file_status st = fs::symlink_status(path, ec);
    if (ec || !fs::exists(st)) return Status::Corruption(where + " is missing");
    if (!fs::is_regular_file(st)) return Status::Corruption(where + " is not a regular file");
    Sha256 hash;
    Result<uint64_t> size = HashInto(path, &hash, /*sync=*/false);
    if (!size.ok()) return Status::Corruption(where + " cannot be read: " + size.status().message());
    if (*size != f.size) {
      return Status::Corruption(where + " has " + std::to_string(*size) + " bytes; the manifest says " +
                                std::to_string(f.size));
    }
    if (hash.HexDigest() != f.sha256) {
      return Status::Corruption(where + " does not match its SHA-256 in the manifest");
    }
  }
  return m;
}

Result<std::string> ReadCurrent(const std::string& root) {
  const std::string path = root + "/" + kCurrentFile;
  Result<std::string> text = ReadWholeFile(path);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) {
      return Status::NotFound("no " + path + ": no version has been committed");
    }
    return text.status();
  }
  std::string version = *text;
  while (!version.empty() &&
         (version.back() == '\n' || version.back() == '\r' || version.back() == ' ' || version.back() == '\t')) {
    version.pop_back();
  }
  if (!IsPlainName(version)) {
    return Status::Corruption(path + " does not hold a version name");
  }
  return version;
}

Status SetCurrent(const std::string& root, const std::string& version) {
  QM_RETURN_IF_ERROR(Verify(root, version).status());
  return WriteCurrent(root, version);
}

Result<std::vector<std::string>> ListVersions(const std::string& root) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(root, ec)) return out;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code ec2;
    if (!it->is_directory(ec2)) continue;
    if (!fs::is_regular_file(it->path() / kManifestFile, ec2)) continue;
    out.push_back(it->path().filename().string());
  }
  if (ec) return Status::IoError("cannot list artifact root " + root + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

// ---- Hashing ----

std::string Sha256Hex(std::string_view bytes) {
  Sha256 hash;
  hash.Update(bytes.data(), bytes.size());
  return hash.HexDigest();
}

Result<std::string> Sha256File(const std::string& path) {
  Sha256 hash;
  QM_RETURN_IF_ERROR(HashInto(path, &hash, /*sync=*/false).status());
  return hash.HexDigest();
}

Result<std::string> DataFingerprint(const std::string& data_dir) {
  Sha256 hash;
  for (const char* name : {"customers.csv", "items.csv", "events.csv"}) {
    const std::string path = data_dir + "/" + name;
    hash.Update(std::string(name) + '\0');
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      hash.Update(std::string("missing") + '\0');
      continue;
    }
    const uint64_t size = fs::file_size(path, ec);
    if (ec) return Status::IoError("cannot stat " + path + ": " + ec.message());
    hash.Update(std::to_string(size) + '\0');
    QM_ASSIGN_OR_RETURN(uint64_t read, HashInto(path, &hash, /*sync=*/false));
    if (read != size) return Status::IoError(path + " changed while it was being read");
  }
  return "sha256:" + hash.HexDigest();
}

}  // namespace qm::artifacts
