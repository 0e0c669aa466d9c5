// `qianmian import ranker FILE.pt`: a TorchScript ranker trained outside qianmian (e.g. with
// python/examples/torch_ranker.py on `qianmian export rank-rows`) made part of a new artifact
// version. May depend on: core (public); artifacts, rank, features (private).
#pragma once

#include <string>

#include "qianmian/core/status.h"

namespace qm::training {

struct ImportRankerResult {
  std::string version;       // the new version (CURRENT names it)
  std::string base_version;  // the version whose other files it copies
  std::string sha256;        // of the module, as in the new manifest
};

// Publishes a new version under `artifacts_root`: every file of `base_version` ("" = CURRENT)
// except the ranker, which becomes the TorchScript module at `model_path` (ranker.pt, with a
// ranker.pt.json of format rank::kTorchScriptRankerFormat), hashed in the manifest like every
// file; the manifest keeps the base's configuration, data fingerprint and "stats.*" figures
// (not its quality figures, which were the built-in ranker's) and adds
// "stats.ranker.torchscript" = 1. Before anything is written the module must load and follow
// the base version's input contract and vocabularies (rank::Ranker::LoadTorchScript):
// InvalidArgument otherwise, naming what failed; NotFound for a missing file or version.
Result<ImportRankerResult> ImportRanker(const std::string& artifacts_root, const std::string& base_version,
                                        const std::string& model_path);

}  // namespace qm::training
