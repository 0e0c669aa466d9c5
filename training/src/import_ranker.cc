#include "qianmian/training/import_ranker.h"

#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "qianmian/artifacts/bundle.h"
#include "qianmian/features/feature_space.h"
#include "qianmian/rank/rank_features.h"
#include "qianmian/rank/ranker.h"

namespace qm::training {

namespace {

using artifacts::BundleFile;

Status CopyInto(const artifacts::BundleReader& base, artifacts::BundleWriter* w, BundleFile file) {
  std::error_code ec;
  std::filesystem::copy_file(base.PathFor(file), w->PathFor(file), ec);
  if (ec) return Status::IoError("copying " + base.PathFor(file) + ": " + ec.message());
  return w->Add(file);
}

// The base manifest's "stats.*" figures (data sizes, times: still true of the new version).
std::map<std::string, double> CarriedStats(const artifacts::Manifest& m) {
  std::map<std::string, double> out;
  const nlohmann::json j = nlohmann::json::parse(m.metrics_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return out;
  for (const auto& [key, value] : j.items()) {
    if (key.rfind("stats.", 0) == 0 && value.is_number()) out[key] = value.get<double>();
  }
  out["stats.ranker.torchscript"] = 1;
  return out;
}

Status WriteSidecar(const std::string& path, const std::string& model_path, const std::string& base_version) {
  nlohmann::json j = {{"format", rank::kTorchScriptRankerFormat},
                      {"source", std::filesystem::path(model_path).filename().string()},
                      {"base_version", base_version}};
  std::ofstream f(path, std::ios::trunc);
  f << j.dump(2) << "\n";
  f.close();
  return f ? Status::Ok() : Status::IoError("cannot write '" + path + "'");
}

}  // namespace

Result<ImportRankerResult> ImportRanker(const std::string& root, const std::string& base_version,
                                        const std::string& model_path) {
  if (!std::filesystem::is_regular_file(model_path)) return Status::NotFound("no file '" + model_path + "'");
  ImportRankerResult result;
  result.base_version = base_version;
  if (result.base_version.empty()) {
    QM_ASSIGN_OR_RETURN(result.base_version, artifacts::ReadCurrent(root));
  }
  QM_ASSIGN_OR_RETURN(artifacts::BundleReader base, artifacts::BundleReader::Open(root, result.base_version));
  QM_ASSIGN_OR_RETURN(features::FeatureSpace space, features::FeatureSpace::Load(base.PathFor(BundleFile::kFeatures)));
  const rank::RankInputBuilder builder(space, base.settings().embedding_dim);
  QM_RETURN_IF_ERROR(base.CheckRankInputs(builder.Describe()));
  QM_ASSIGN_OR_RETURN(auto ranker, rank::Ranker::LoadTorchScript(model_path, builder));

  QM_ASSIGN_OR_RETURN(artifacts::BundleWriter w, artifacts::BundleWriter::Create(root));
  w.SetSettings(base.settings());
  for (BundleFile f : {BundleFile::kFeatures, BundleFile::kTwoTower, BundleFile::kTwoTowerOptions,
                       BundleFile::kExposureTower, BundleFile::kExposureTowerOptions, BundleFile::kProductsIndex,
                       BundleFile::kContentIndex, BundleFile::kNeighbours}) {
    if (base.Has(f)) QM_RETURN_IF_ERROR(CopyInto(base, &w, f));
  }
  QM_ASSIGN_OR_RETURN(artifacts::ItemEmbeddings emb, base.ReadItemEmbeddings());
  QM_RETURN_IF_ERROR(w.WriteItemEmbeddings(emb.ids, emb.vectors.data(), base.settings().embedding_dim));
  QM_RETURN_IF_ERROR(w.WriteRankInputs(builder.Describe()));
  std::error_code ec;
  std::filesystem::copy_file(model_path, w.PathFor(BundleFile::kRanker), ec);
  if (ec) return Status::IoError("copying '" + model_path + "': " + ec.message());
  QM_RETURN_IF_ERROR(w.Add(BundleFile::kRanker));
  QM_RETURN_IF_ERROR(WriteSidecar(w.PathFor(BundleFile::kRankerOptions), model_path, result.base_version));
  QM_RETURN_IF_ERROR(w.Add(BundleFile::kRankerOptions));
  QM_RETURN_IF_ERROR(w.SetConfig(base.manifest().config_json));
  w.SetMetrics(CarriedStats(base.manifest()));
  w.SetDataFingerprint(base.manifest().data_fingerprint);
  QM_ASSIGN_OR_RETURN(artifacts::Manifest m, w.Commit());
  result.version = m.version;
  for (const auto& f : m.files) {
    if (f.path == artifacts::FileName(BundleFile::kRanker)) result.sha256 = f.sha256;
  }
  return result;
}

}  // namespace qm::training
