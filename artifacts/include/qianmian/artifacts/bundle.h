// qm_artifacts: the versioned artifact bundle (SPEC §4), written by training and read by serving.
// This header is the bundle layer over the manifest (manifest.h): the one definition of the
// files of a version (BundleFile; neither training nor serving spells a file name) and of its
// settings, resolved once by training and written as bundle.json beside the other files.
// May depend on: core (public); OpenSSL and nlohmann_json (private, never in a public header).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "qianmian/artifacts/manifest.h"
#include "qianmian/core/status.h"

namespace qm::artifacts {

// Every file of a version besides MANIFEST.json. Optional ones are held as the settings say
// (HoldsFile).
enum class BundleFile {
  kSettings,              // bundle.json: BundleSettings (written by BundleWriter::Commit)
  kFeatures,              // features.json: the fitted feature space
  kTwoTower,              // two_tower.pt: the retrieval towers' weights
  kTwoTowerOptions,       // two_tower.pt.json: their options, written beside the weights by Save
  kItemEmbeddings,        // item_embeddings.f32: trained item rows x embedding_dim float32
  kItemIds,               // item_ids.txt: the trained rows' item ids, one a line
  kExposureTower,         // exposure_tower.pt: the exposure model (when exposure_model)
  kExposureTowerOptions,  // exposure_tower.pt.json
  kProductsIndex,         // products.index: products' embeddings (labels: item rows)
  kContentIndex,          // content.index: content items' embeddings
  kNeighbours,            // neighbours.i32: the item-to-item table (when neighbours > 0)
  kRanker,                // ranker.pt: the built-in ranker (cross network weights, or the trees)
  kRankerOptions,         // ranker.pt.json: its format (qianmian.ranker/1 or qianmian.gbdt/1) and options
  kRankInputs,            // rank_inputs.json: the ranker's input contract, for model authors
  kPortraits,             // portraits.csv: customer portraits and churn risk (issue 18; when portraits)
};
inline constexpr int kBundleFiles = 15;

// The file's name in the version folder, e.g. "two_tower.pt".
const char* FileName(BundleFile file);

// A version's settings, resolved once by training: what `qianmian eval` scores with and what
// serving reads, so that neither works them out again from the configuration.
struct BundleSettings {
  int embedding_dim = 0;                // two-tower width: item_embeddings.f32 columns, the indexes' width
  float temperature = 0;                // two-tower softmax temperature τ (> 0; float, as the towers hold it)
  bool exposure_model = false;          // the version holds an exposure model (exposure_tower.pt)
  float exposure_temperature = 0;       // its τ (> 0 with an exposure model, else 0)
  double exposure_weight = 1;           // weight of the exposure term in the two-stage score
  bool exposure_per_valid_day = false;  // the exposure term adds log(share of the horizon the
                                        // item is valid): the model learnt a rate per valid day
  // Two-stage score with the exposure term (evaluation):
  //   log p_click + retrieval_weight * u.v / τ + exposure_weight * (exposure logit [+ log valid share]).
  double retrieval_weight = 1;
  // The served score, without an exposure term: log(objective) + w * u.v / τ
  // (ResolveServedRetrievalWeight).
  double retrieval_weight_without_exposure = 1;
  int neighbours = 0;  // width k of the item-to-item table (0: no neighbours.i32)
  // The ranker contract: SHA-256 (64 hex digits) of rank_inputs.json, i.e. of
  // RankInputBuilder::Describe() for the version's features. Filled by BundleWriter::Commit.
  std::string rank_inputs_sha256;
  bool portraits = false;  // the version holds portraits.csv (issue 18)
};

// Whether a version with `settings` holds `file`: always, except the exposure model's files
// (only with exposure_model) and the neighbour table (only when neighbours > 0).
bool HoldsFile(const BundleSettings& settings, BundleFile file);

// The retrieval weight of a two-stage score for the configured `[training] retrieval_weight`:
// the configured value when >= 0; otherwise ("auto", -1) 0.3 for a score with an exposure term
// (the full retrieval logit would count the exposure twice; a small share still adds what the
// towers learned from each customer's history: measured on the generated banks,
// docs/BENCHMARKS.md) and 1 without one. Legacy versions are read with the same rule.
double ResolveRetrievalWeight(double configured, bool with_exposure_term);

// The retrieval weight of the served score (no exposure term) for the configured
// `[training] retrieval_weight`: the configured value when >= 0; otherwise 0 when the ranker
// learned from logged exposures (its p_click is P(click | shown), what a page earns; the
// retrieval logit would add the old policy's exposure bias: on the generated 20k bank the served
// page's expected clicks rise from 2.43 to 2.59, docs/BENCHMARKS.md issue 16), and 1 when it
// learned from positives and sampled negatives only (e.g. MovieLens, where the retrieval logit
// carries P(item | customer)). Versions older than this rule keep theirs (1).
double ResolveServedRetrievalWeight(double configured, bool ranker_on_logged_exposures);

// A version's trained item rows: item_ids.txt and item_embeddings.f32.
struct ItemEmbeddings {
  std::vector<std::string> ids;
  std::vector<float> vectors;  // ids.size() x embedding_dim, row-major
};

// Writes one new version through ArtifactWriter (same durability and typical use), naming files
// by BundleFile. Move-only; not thread-safe (one writer, one thread).
class BundleWriter {
 public:
  // A new version folder under `root` (ArtifactWriter::Create).
  static Result<BundleWriter> Create(const std::string& root);

  const std::string& version() const { return writer_.version(); }
  // Where the caller writes `file`: the version folder + "/" + FileName(file).
  std::string PathFor(BundleFile file) const;
  // Records `file`, written (and closed) by the caller. InvalidArgument for kSettings (Commit
  // writes it) or a file added twice; NotFound when it is not there.
  Status Add(BundleFile file);
  // Writes and adds item_ids.txt and item_embeddings.f32: `ids.size()` rows of `dim` floats
  // from `vectors` (row-major; not owned). IoError when a write fails.
  Status WriteItemEmbeddings(const std::vector<std::string>& ids, const float* vectors, int dim);
  // Writes and adds rank_inputs.json (`description`: RankInputBuilder::Describe()).
  Status WriteRankInputs(const std::string& description);

  // The settings (REQUIRED before Commit; rank_inputs_sha256 is ignored: Commit fills it).
  void SetSettings(const BundleSettings& settings);
  // ArtifactWriter::SetConfig, SetMetrics and SetDataFingerprint.
  Status SetConfig(const std::string& json) { return writer_.SetConfig(json); }
  void SetMetrics(const std::map<std::string, double>& metrics) { writer_.SetMetrics(metrics); }
  void SetDataFingerprint(const std::string& fingerprint) { writer_.SetDataFingerprint(fingerprint); }

  // Checks that exactly the files the settings call for were added (FailedPrecondition naming
  // the first missing or unexpected one, or when no settings were set or they are invalid, or
  // the item embeddings' width differs from embedding_dim), writes bundle.json and commits
  // (ArtifactWriter::Commit: CURRENT then names this version). Returns the manifest written.
  Result<Manifest> Commit();

 private:
  explicit BundleWriter(ArtifactWriter writer) : writer_(std::move(writer)) {}
  ArtifactWriter writer_;
  BundleSettings settings_;
  bool has_settings_ = false;
  bool added_[kBundleFiles] = {};
  int embeddings_dim_ = 0;  // width given to WriteItemEmbeddings
};

// One verified version, opened for reading. Copyable; immutable, so safe for concurrent use.
class BundleReader {
 public:
  // Verifies <root>/<version> (Verify: NotFound when there is no such version, Corruption naming
  // a file that fails) and reads its settings from bundle.json; a version written before
  // bundle.json existed has them derived instead from its manifest's configuration
  // ([training] retrieval_weight, exposure_weight, exposure_per_valid_day, neighbours; their
  // defaults of that time when absent) and the towers' two_tower.pt.json and
  // exposure_tower.pt.json. Corruption naming the file when bundle.json (or a legacy
  // version's sidecar) does not parse or holds invalid settings, and when the manifest lacks a
  // file the settings call for.
  static Result<BundleReader> Open(const std::string& root, const std::string& version);

  const std::string& version() const { return manifest_.version; }
  const std::string& dir() const { return dir_; }
  const Manifest& manifest() const { return manifest_; }
  const BundleSettings& settings() const { return settings_; }
  // True when the version has no bundle.json (settings derived as described at Open).
  bool legacy() const { return legacy_; }

  // Whether the version holds `file` (HoldsFile for its settings; bundle.json: !legacy()).
  bool Has(BundleFile file) const;
  // The version folder + "/" + FileName(file) (whether or not the version holds it).
  std::string PathFor(BundleFile file) const;

  // Reads item_ids.txt and item_embeddings.f32. Corruption naming the file when the embeddings
  // are not ids.size() x embedding_dim floats; IoError when a file cannot be read.
  Result<ItemEmbeddings> ReadItemEmbeddings() const;
  // Ok when `description` (RankInputBuilder::Describe() of this build for the version's
  // features and embedding_dim) is the version's ranker contract; FailedPrecondition otherwise.
  Status CheckRankInputs(const std::string& description) const;

 private:
  BundleReader() = default;
  std::string dir_;
  Manifest manifest_;
  BundleSettings settings_;
  bool legacy_ = false;
};

}  // namespace qm::artifacts
