// qm_artifacts: the versioned artifact bundle (SPEC §4), written by training and read by serving.
// This header is the manifest layer: <root>/<version>/ holds the files of one training run and a
// MANIFEST.json (version, creation time, input data fingerprint, configuration, offline metrics,
// and every file with its size and SHA-256); <root>/CURRENT names the version to serve.
// bundle.h names the files of a version and holds its resolved settings.
// May depend on: core (public); OpenSSL and nlohmann_json (private, never in a public header).
//
// Durability: a bundle becomes visible only through Commit, which writes the manifest
// atomically, verifies the bundle and only then replaces CURRENT atomically (temp file, fsync,
// rename, fsync of the folder). A failed or abandoned write never moves CURRENT, and CURRENT
// is never seen half-written.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "qianmian/core/status.h"
#include "qianmian/core/types.h"
#include "qianmian/core/version.h"

namespace qm::artifacts {

inline constexpr char kManifestFile[] = "MANIFEST.json";
inline constexpr char kCurrentFile[] = "CURRENT";
inline constexpr int kManifestFormat = 1;

// One file of a bundle; `path` is relative to the version folder ('/'-separated).
struct ArtifactFile {
  std::string path;
  uint64_t size = 0;
  std::string sha256;  // 64 lowercase hex digits
};

// The content of MANIFEST.json.
struct Manifest {
  int format = kManifestFormat;
  std::string version;
  // The qianmian build that wrote it (kQianmianVersion); "" in manifests written before 0.1.0 recorded it.
  std::string qianmian_version = kQianmianVersion;
  TimeMs created_ms = 0;            // epoch ms
  std::string created_at;           // the same instant, ISO-8601 UTC
  std::string data_fingerprint;     // DataFingerprint of the training data; may be empty
  std::string config_json;          // configuration as compact JSON ("{}" when none was given)
  std::string metrics_json;         // offline metrics as compact JSON ("{}" when none)
  std::vector<ArtifactFile> files;  // sorted by path
};

// Writes one new version. Move-only; not thread-safe (one writer, one thread).
// Typical use:
//   QM_ASSIGN_OR_RETURN(ArtifactWriter w, ArtifactWriter::Create(root));
//   write w.PathFor("items.f32") ...; QM_RETURN_IF_ERROR(w.AddFile("items.f32"));
//   QM_RETURN_IF_ERROR(w.SetConfig(config_json)); w.SetMetrics({{"recall@20", r}});
//   QM_RETURN_IF_ERROR(w.Commit().status());
// A writer destroyed before a successful Commit leaves CURRENT as it was and deletes what was
// written, keeping the empty version folder as a tombstone so its name is never reused.
class ArtifactWriter {
 public:
  // Creates <root> if missing and a new version folder in it. Version names are
  // "vYYYYMMDD-HHMMSS-NNNN" (UTC creation time and a counter): they sort in creation order,
  // after every existing version folder (even if the clock went back), and are never reused.
  // IoError when the folder cannot be created.
  static Result<ArtifactWriter> Create(const std::string& root);

  ArtifactWriter(ArtifactWriter&& other) noexcept;
  ArtifactWriter& operator=(ArtifactWriter&& other) noexcept;
  ArtifactWriter(const ArtifactWriter&) = delete;
  ArtifactWriter& operator=(const ArtifactWriter&) = delete;
  ~ArtifactWriter();

  const std::string& version() const;
  // The version folder, where callers write their files.
  const std::string& dir() const;
  // dir() + "/" + relative_path.
  std::string PathFor(const std::string& relative_path) const;

  // Records a file the caller has written (and closed) under dir(). InvalidArgument for an
  // absolute path, "..", MANIFEST.json or a path recorded twice; NotFound when it is not a
  // regular file there.
  Status AddFile(const std::string& relative_path);
  // Configuration and offline metrics, each a JSON text (InvalidArgument when it does not parse).
  Status SetConfig(const std::string& json);
  Status SetMetrics(const std::string& json);
  // Offline metrics as name -> value (replaces SetMetrics).
  void SetMetrics(const std::map<std::string, double>& metrics);
  // The DataFingerprint of the training data.
  void SetDataFingerprint(const std::string& fingerprint);

  // Hashes every recorded file, writes MANIFEST.json atomically, verifies the bundle and then
  // atomically points CURRENT at this version. FailedPrecondition when the folder holds a file
  // that was not recorded or Commit already succeeded; Corruption/IoError when verification or
  // a write fails (CURRENT is then unchanged). Returns the manifest written.
  Result<Manifest> Commit();

 private:
  struct State;
  explicit ArtifactWriter(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Checks <root>/<version>: MANIFEST.json parses and names this version, and every listed file
// exists with the listed size and SHA-256. Corruption naming the file on any mismatch (a
// missing file, a wrong size or hash, an unsafe path); NotFound when there is no such
// version. Returns the verified manifest.
Result<Manifest> Verify(const std::string& root, const std::string& version);

// Parses <root>/<version>/MANIFEST.json without checking the files.
Result<Manifest> ReadManifest(const std::string& root, const std::string& version);

// The version CURRENT names. NotFound when there is no CURRENT; Corruption when it is empty
// or not a plain version name.
Result<std::string> ReadCurrent(const std::string& root);

// Verifies `version` and then atomically points CURRENT at it (e.g. a rollback). CURRENT is
// unchanged when verification fails.
Status SetCurrent(const std::string& root, const std::string& version);

// Versions under root that have a MANIFEST.json (not verified), in ascending name order.
// An absent root is an empty list.
Result<std::vector<std::string>> ListVersions(const std::string& root);

// SHA-256 of `bytes` as 64 lowercase hex digits.
std::string Sha256Hex(std::string_view bytes);

// SHA-256 of a file's bytes as 64 lowercase hex digits (streamed). IoError when unreadable.
Result<std::string> Sha256File(const std::string& path);

// Fingerprint of a SPEC §2 data folder: SHA-256 over customers.csv, items.csv and events.csv
// in that order, each contributing its name, size and bytes (a missing file contributes its
// name and a "missing" mark, so adding or removing a file changes the fingerprint).
// Returns "sha256:<hex>". IoError when a present file cannot be read.
Result<std::string> DataFingerprint(const std::string& data_dir);

}  // namespace qm::artifacts
