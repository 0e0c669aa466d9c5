// Private to synth: the writers of a bank's folder (SPEC §2 files, truth/, oracle.json) and the
// text form of a request id.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "qianmian/core/status.h"
#include "world.h"

namespace qm::synth::gen {

// Writes e's request id ("r12-3", "p12-4", or nothing) into buf; returns its length.
inline constexpr size_t kRequestIdChars = 48;
size_t FormatRequestId(const Event& e, char (&buf)[kRequestIdChars]);

Status WriteItems(const World& w, const std::filesystem::path& dir);      // items.csv
Status WriteCustomers(const World& w, const std::filesystem::path& dir);  // customers.csv
// events.csv: a k-way merge of the sorted runs (`total` events in all, for the progress bar).
Status WriteEvents(const World& w, const std::vector<std::vector<Event>>& runs, uint64_t total,
                   const std::filesystem::path& dir);
Status WriteTruth(const World& w, const std::filesystem::path& dir);  // truth.json and the .f32 files
// oracle.json; `oracle_sample` as GenerateOptions::oracle_sample.
Status WriteOracle(const World& w, const OracleResult& r, int64_t oracle_sample, const std::filesystem::path& dir);
// Writes `text` to p (created or truncated).
Status WriteText(const std::filesystem::path& p, const std::string& text);

}  // namespace qm::synth::gen
