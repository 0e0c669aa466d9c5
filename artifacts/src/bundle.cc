#include "qianmian/artifacts/bundle.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>

#include "sha256.h"

namespace qm::artifacts {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr char kSettingsFormat[] = "qianmian.bundle/1";

// The names of BundleFile, in its order.
constexpr const char* kFileNames[kBundleFiles] = {
    "bundle.json",    "features.json",     "two_tower.pt",           "two_tower.pt.json", "item_embeddings.f32",
    "item_ids.txt",   "exposure_tower.pt", "exposure_tower.pt.json", "products.index",    "content.index",
    "neighbours.i32", "ranker.pt",         "ranker.pt.json",         "rank_inputs.json",  "portraits.csv",
};

// Defaults of [training] when versions were written without bundle.json: a legacy version whose
// configuration omits a key was trained with these (frozen; today's defaults may differ).
constexpr double kLegacyExposureWeight = 1.0;
constexpr bool kLegacyExposurePerValidDay = true;
constexpr int kLegacyNeighbours = 16;

BundleFile FileAt(int i) { return static_cast<BundleFile>(i); }

// The manifest's entry for `file`; null when the version does not list it.
const ArtifactFile* Listed(const Manifest& m, BundleFile file) {
  for (const ArtifactFile& f : m.files) {
    if (f.path == FileName(file)) return &f;
  }
  return nullptr;
}

// Why `s` cannot be a version's settings; empty when it can.
std::string Invalid(const BundleSettings& s) {
  const auto finite_non_negative = [](double x) { return std::isfinite(x) && x >= 0; };
  if (s.embedding_dim < 1) return "embedding_dim must be >= 1";
  if (!(std::isfinite(s.temperature) && s.temperature > 0)) return "temperature must be > 0";
  if (s.exposure_model && !(std::isfinite(s.exposure_temperature) && s.exposure_temperature > 0)) {
    return "exposure_temperature must be > 0 with an exposure model";
  }
  if (!std::isfinite(s.exposure_weight)) return "exposure_weight must be finite";
  if (!finite_non_negative(s.retrieval_weight)) return "retrieval_weight must be >= 0";
  if (!finite_non_negative(s.retrieval_weight_without_exposure)) {
    return "retrieval_weight_without_exposure must be >= 0";
  }
  if (s.neighbours < 0) return "neighbours must be >= 0";
  return "";
}

// The first file the settings call for that `holds` lacks, or that `holds` has against them
// (bundle.json aside); empty when the files match.
template <typename Holds>
std::string FileMismatch(const BundleSettings& settings, Holds holds) {
  for (int i = 0; i < kBundleFiles; ++i) {
    const BundleFile f = FileAt(i);
    if (f == BundleFile::kSettings) continue;
    const bool want = HoldsFile(settings, f);
    if (want && !holds(f)) return std::string("lacks ") + FileName(f) + ", which its settings call for";
    if (!want && holds(f)) return std::string("holds ") + FileName(f) + ", which its settings rule out";
  }
  return "";
}

json SettingsToJson(const BundleSettings& s) {
  return {{"format", kSettingsFormat},
          {"embedding_dim", s.embedding_dim},
          {"temperature", s.temperature},
          {"exposure_model", s.exposure_model},
          {"exposure_temperature", s.exposure_temperature},
          {"exposure_weight", s.exposure_weight},
          {"exposure_per_valid_day", s.exposure_per_valid_day},
          {"retrieval_weight", s.retrieval_weight},
          {"retrieval_weight_without_exposure", s.retrieval_weight_without_exposure},
          {"neighbours", s.neighbours},
          {"portraits", s.portraits},
          {"rank_inputs_sha256", s.rank_inputs_sha256}};
}

// Parses bundle.json; the message says what is wrong.
Result<BundleSettings> SettingsFromJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::IoError("cannot open");
  try {
    const json j = json::parse(in);
    if (j.at("format") != kSettingsFormat) return Status::Corruption("unknown format");
    BundleSettings s;
    s.embedding_dim = j.at("embedding_dim").get<int>();
    s.temperature = j.at("temperature").get<float>();
    s.exposure_model = j.at("exposure_model").get<bool>();
    s.exposure_temperature = j.at("exposure_temperature").get<float>();
    s.exposure_weight = j.at("exposure_weight").get<double>();
    s.exposure_per_valid_day = j.at("exposure_per_valid_day").get<bool>();
    s.retrieval_weight = j.at("retrieval_weight").get<double>();
    s.retrieval_weight_without_exposure = j.at("retrieval_weight_without_exposure").get<double>();
    s.neighbours = j.at("neighbours").get<int>();
    s.portraits = j.value("portraits", false);  // versions before issue 18's portraits have none
    s.rank_inputs_sha256 = j.at("rank_inputs_sha256").get<std::string>();
    return s;
  } catch (const std::exception& e) {
    return Status::Corruption(e.what());
  }
}

// A tower's "temperature" (and, for the retrieval towers, "embedding_dim") from its .pt.json.
Status ReadTowerOptions(const std::string& path, float* temperature, int* embedding_dim) {
  std::ifstream in(path);
  if (!in) return Status::IoError("cannot open");
  try {
    const json j = json::parse(in);
    *temperature = j.at("temperature").get<float>();
    if (embedding_dim != nullptr) *embedding_dim = j.at("embedding_dim").get<int>();
    return Status::Ok();
  } catch (const std::exception& e) {
    return Status::Corruption(e.what());
  }
}

// The settings of a version written before bundle.json: from its manifest's configuration (the
// [training] keys that resolved them, or their defaults of that time) and the towers' options.
Result<BundleSettings> LegacySettings(const Manifest& m, const std::string& dir) {
  const auto listed = [&](BundleFile f) { return Listed(m, f); };
  const auto where = [&](BundleFile f) { return "version " + m.version + ": " + FileName(f) + ": "; };
  BundleSettings s;
  for (BundleFile f : {BundleFile::kTwoTowerOptions, BundleFile::kRankInputs}) {
    if (listed(f) == nullptr) {
      return Status::Corruption("version " + m.version + " has neither bundle.json nor " + FileName(f));
    }
  }
  const BundleFile tower = BundleFile::kTwoTowerOptions;
  Status st = ReadTowerOptions(dir + "/" + FileName(tower), &s.temperature, &s.embedding_dim);
  if (!st.ok()) return Status::Corruption(where(tower) + st.message());
  s.exposure_model = listed(BundleFile::kExposureTower) != nullptr;
  if (s.exposure_model) {
    const BundleFile exposure = BundleFile::kExposureTowerOptions;
    st = ReadTowerOptions(dir + "/" + FileName(exposure), &s.exposure_temperature, nullptr);
    if (!st.ok()) return Status::Corruption(where(exposure) + st.message());
  }
  // [training] of the configuration; a key absent or of another type keeps its default (as
  // serving read retrieval_weight before bundle.json).
  double configured_weight = -1;  // auto
  s.exposure_weight = kLegacyExposureWeight;
  s.exposure_per_valid_day = kLegacyExposurePerValidDay;
  int neighbours = kLegacyNeighbours;
  const json config = json::parse(m.config_json, nullptr, /*allow_exceptions=*/false);
  if (config.is_object() && config.contains("training") && config["training"].is_object()) {
    const json& t = config["training"];
    if (t.contains("retrieval_weight") && t["retrieval_weight"].is_number()) {
      configured_weight = t["retrieval_weight"].get<double>();
    }
    if (t.contains("exposure_weight") && t["exposure_weight"].is_number()) {
      s.exposure_weight = t["exposure_weight"].get<double>();
    }
    if (t.contains("exposure_per_valid_day") && t["exposure_per_valid_day"].is_boolean()) {
      s.exposure_per_valid_day = t["exposure_per_valid_day"].get<bool>();
    }
    if (t.contains("neighbours") && t["neighbours"].is_number_integer()) neighbours = t["neighbours"].get<int>();
  }
  s.retrieval_weight = ResolveRetrievalWeight(configured_weight, s.exposure_model);
  s.retrieval_weight_without_exposure = ResolveRetrievalWeight(configured_weight, false);
  s.neighbours = listed(BundleFile::kNeighbours) != nullptr ? neighbours : 0;
  s.portraits = listed(BundleFile::kPortraits) != nullptr;
  s.rank_inputs_sha256 = listed(BundleFile::kRankInputs)->sha256;
  return s;
}

}  // namespace

const char* FileName(BundleFile file) {
  const int i = static_cast<int>(file);
  QM_CHECK(i >= 0 && i < kBundleFiles);
  return kFileNames[i];
}

bool HoldsFile(const BundleSettings& settings, BundleFile file) {
  switch (file) {
    case BundleFile::kExposureTower:
    case BundleFile::kExposureTowerOptions:
      return settings.exposure_model;
    case BundleFile::kNeighbours:
      return settings.neighbours > 0;
    case BundleFile::kPortraits:
      return settings.portraits;
    default:
      return true;
  }
}

double ResolveRetrievalWeight(double configured, bool with_exposure_term) {
  if (configured >= 0) return configured;
  return with_exposure_term ? 0.3 : 1.0;
}

double ResolveServedRetrievalWeight(double configured, bool ranker_on_logged_exposures) {
  if (configured >= 0) return configured;
  return ranker_on_logged_exposures ? 0.0 : 1.0;
}

// ---- BundleWriter ----

Result<BundleWriter> BundleWriter::Create(const std::string& root) {
  QM_ASSIGN_OR_RETURN(ArtifactWriter writer, ArtifactWriter::Create(root));
  return BundleWriter(std::move(writer));
}

std::string BundleWriter::PathFor(BundleFile file) const { return writer_.PathFor(FileName(file)); }

Status BundleWriter::Add(BundleFile file) {
  if (file == BundleFile::kSettings) {
    return Status::InvalidArgument("bundle.json is written by BundleWriter::Commit, not added");
  }
  QM_RETURN_IF_ERROR(writer_.AddFile(FileName(file)));
  added_[static_cast<int>(file)] = true;
  return Status::Ok();
}

Status BundleWriter::WriteItemEmbeddings(const std::vector<std::string>& ids, const float* vectors, int dim) {
  {
    std::ofstream out(PathFor(BundleFile::kItemEmbeddings), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(vectors),
              static_cast<std::streamsize>(ids.size() * static_cast<size_t>(dim) * sizeof(float)));
    std::ofstream out_ids(PathFor(BundleFile::kItemIds), std::ios::trunc);
    for (const std::string& id : ids) out_ids << id << '\n';
    out.close();
    out_ids.close();
    if (!out || !out_ids) return Status::IoError("writing item embeddings failed");
  }
  QM_RETURN_IF_ERROR(Add(BundleFile::kItemEmbeddings));
  QM_RETURN_IF_ERROR(Add(BundleFile::kItemIds));
  embeddings_dim_ = dim;
  return Status::Ok();
}

Status BundleWriter::WriteRankInputs(const std::string& description) {
  {
    std::ofstream out(PathFor(BundleFile::kRankInputs), std::ios::trunc);
    out << description;
    out.close();
    if (!out) return Status::IoError(std::string("writing ") + FileName(BundleFile::kRankInputs) + " failed");
  }
  return Add(BundleFile::kRankInputs);
}

void BundleWriter::SetSettings(const BundleSettings& settings) {
  settings_ = settings;
  has_settings_ = true;
}

Result<Manifest> BundleWriter::Commit() {
  if (!has_settings_) return Status::FailedPrecondition("version " + version() + ": no bundle settings were set");
  if (const std::string why = Invalid(settings_); !why.empty()) {
    return Status::FailedPrecondition("version " + version() + ": bundle settings: " + why);
  }
  if (const std::string why = FileMismatch(settings_, [&](BundleFile f) { return added_[static_cast<int>(f)]; });
      !why.empty()) {
    return Status::FailedPrecondition("version " + version() + " " + why);
  }
  if (embeddings_dim_ != settings_.embedding_dim) {
    return Status::FailedPrecondition("version " + version() + ": item embeddings of width " +
                                      std::to_string(embeddings_dim_) + ", settings say " +
                                      std::to_string(settings_.embedding_dim));
  }
  QM_ASSIGN_OR_RETURN(settings_.rank_inputs_sha256, Sha256File(PathFor(BundleFile::kRankInputs)));
  {
    std::ofstream out(PathFor(BundleFile::kSettings), std::ios::trunc);
    out << SettingsToJson(settings_).dump(2) << '\n';
    out.close();
    if (!out) return Status::IoError(std::string("writing ") + FileName(BundleFile::kSettings) + " failed");
  }
  QM_RETURN_IF_ERROR(writer_.AddFile(FileName(BundleFile::kSettings)));
  added_[static_cast<int>(BundleFile::kSettings)] = true;
  return writer_.Commit();
}

// ---- BundleReader ----

Result<BundleReader> BundleReader::Open(const std::string& root, const std::string& version) {
  BundleReader r;
  QM_ASSIGN_OR_RETURN(r.manifest_, Verify(root, version));
  r.dir_ = (fs::path(root) / version).string();
  const auto listed = [&](BundleFile f) { return Listed(r.manifest_, f) != nullptr; };
  r.legacy_ = !listed(BundleFile::kSettings);
  const std::string where =
      "version " + version + ": " + (r.legacy_ ? "settings derived without bundle.json: " : "bundle.json: ");
  if (r.legacy_) {
    QM_ASSIGN_OR_RETURN(r.settings_, LegacySettings(r.manifest_, r.dir_));
  } else {
    Result<BundleSettings> s = SettingsFromJson(r.PathFor(BundleFile::kSettings));
    if (!s.ok()) return Status::Corruption(where + s.status().message());
    r.settings_ = std::move(s).value();
  }
  if (const std::string why = Invalid(r.settings_); !why.empty()) return Status::Corruption(where + why);
  if (const std::string why = FileMismatch(r.settings_, listed); !why.empty()) {
    return Status::Corruption("version " + version + " " + why);
  }
  return r;
}

bool BundleReader::Has(BundleFile file) const {
  return file == BundleFile::kSettings ? !legacy_ : HoldsFile(settings_, file);
}

std::string BundleReader::PathFor(BundleFile file) const { return dir_ + "/" + FileName(file); }

Result<ItemEmbeddings> BundleReader::ReadItemEmbeddings() const {
  ItemEmbeddings out;
  {
    const std::string path = PathFor(BundleFile::kItemIds);
    std::ifstream in(path);
    if (!in) return Status::IoError("cannot open " + path);
    for (std::string line; std::getline(in, line);) out.ids.push_back(std::move(line));
  }
  const std::string path = PathFor(BundleFile::kItemEmbeddings);
  const size_t floats = out.ids.size() * static_cast<size_t>(settings_.embedding_dim);
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec || size != floats * sizeof(float)) {
    return Status::Corruption("version " + version() + ": " + FileName(BundleFile::kItemEmbeddings) +
                              " does not hold " + std::to_string(out.ids.size()) + " x " +
                              std::to_string(settings_.embedding_dim) + " floats");
  }
  out.vectors.resize(floats);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(out.vectors.data()), static_cast<std::streamsize>(size));
  if (!in) return Status::IoError("reading " + path + " failed");
  return out;
}

Status BundleReader::CheckRankInputs(const std::string& description) const {
  Sha256 hash;
  hash.Update(description);
  if (hash.HexDigest() == settings_.rank_inputs_sha256) return Status::Ok();
  return Status::FailedPrecondition("version " + version() + ": this build's ranker inputs differ from " +
                                    FileName(BundleFile::kRankInputs) + " (the version was trained on another layout)");
}

}  // namespace qm::artifacts
