// Items and customers given as maps of CSV columns (online upserts), parsed like items.csv /
// customers.csv rows. Private to serving.
#pragma once

#include "qianmian/core/dataset.h"
#include "qianmian/core/time.h"
#include "qianmian/serving/engine.h"

namespace qm::serving {

// Parses an items.csv-like record; interns names into ds's dictionaries. InvalidArgument naming
// the field on a bad value.
Status ParseItemRecord(const Record& r, const TimeZone& tz, Dataset* ds, Item* out);

// Parses a customers.csv-like record into *out; extra columns that are model features go to
// *feature_values (feature column index, cell text).
Status ParseCustomerRecord(const Record& r, const TimeZone& tz, Dataset* ds, Customer* out,
                           std::vector<std::pair<size_t, std::string>>* feature_values);

// Stores feature values of customer `index` (extending every feature column to hold it).
void SetCustomerFeatures(Dataset* ds, uint32_t index,
                         const std::vector<std::pair<size_t, std::string>>& feature_values);

}  // namespace qm::serving
