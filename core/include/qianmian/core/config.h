// Module core: the foundation: Status, domain types, CSV, time, configuration, dataset loading. May
// depend on: the standard library; toml++ and date (private).
// Configuration: one TOML file for the whole engine, read section by section into one typed
// struct per module (defaults written once, next to the field). Every key a section does not
// read is reported as unknown; every bad value is reported with its full key name.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "qianmian/core/status.h"
#include "qianmian/core/types.h"

namespace qm {

struct ConfigState;  // private

// The TOML type of a value (ConfigTable::TypeOf), for keys that accept more than one type.
enum class ConfigType : uint8_t { kAbsent, kBool, kInteger, kFloat, kString, kArray, kTable, kOther };

// A view of one TOML table. Reading a key marks it known; a missing key leaves the output
// untouched (the default stays). Type errors are recorded and surface in ConfigFile::Finish.
class ConfigTable {
 public:
  void Read(std::string_view key, bool* out);
  void Read(std::string_view key, int* out);
  void Read(std::string_view key, int64_t* out);
  void Read(std::string_view key, double* out);
  void Read(std::string_view key, float* out);
  void Read(std::string_view key, std::string* out);
  void Read(std::string_view key, std::vector<std::string>* out);
  void Read(std::string_view key, std::vector<double>* out);
  // A duration: an integer of milliseconds or a string "500ms", "30s", "15m", "12h", "7d", "2w".
  void ReadDuration(std::string_view key, TimeMs* out);
  // A secret string: `key`, or the content of the file `<key>_file` names (one trailing newline
  // dropped); both set is an error. Never written by ConfigFile::ToJson (shown as "(secret)").
  void ReadSecret(std::string_view key, std::string* out);
  // Sub-table `key` (an empty view when absent).
  ConfigTable Table(std::string_view key);
  // Array of tables `[[key]]` (empty when absent).
  std::vector<ConfigTable> TableArray(std::string_view key);
  bool Has(std::string_view key) const;
  // The type of `key`'s value (kAbsent when missing); does not mark the key known.
  ConfigType TypeOf(std::string_view key) const;
  // Records a validation error for `key` (e.g. "must be in [0, 1]").
  void Error(std::string_view key, std::string_view message);
  // Full dotted name of `key` in this table, e.g. "policy.caps[2].limit".
  std::string PathOf(std::string_view key) const;

 private:
  friend class ConfigFile;
  ConfigTable(std::shared_ptr<ConfigState> state, const void* table, std::string path)
      : state_(std::move(state)), table_(table), path_(std::move(path)) {}
  // The node of `key` (a toml::node*, null when absent), after applying its environment override
  // (ConfigFile::UseEnvironment) read as type `want` (kOther: a duration).
  const void* Node(std::string_view key, ConfigType want);
  // This table in the tree, created (with its parents) when absent; null when the path crosses
  // a value that is not a table.
  void* MutableTable();
  std::shared_ptr<ConfigState> state_;
  const void* table_ = nullptr;  // toml::table*, null for an absent table
  std::string path_;
};

class ConfigFile {
 public:
  // An empty configuration (all defaults).
  ConfigFile();
  // Parses a TOML file; InvalidArgument with file, line and column on a syntax error.
  static Result<ConfigFile> Load(const std::string& path);
  static Result<ConfigFile> Parse(std::string_view text, std::string source_name = "config");

  // Lets the environment override the file (call before reading): every key a section reads at
  // path `a.b.c` (not inside an array of tables) is taken from QIANMIAN_A_B_C when set, or from
  // the content of the file QIANMIAN_A_B_C_FILE names (one trailing newline dropped). The text is
  // read as the key's type: a string as is; a number, a boolean (true/false) or a duration as in
  // TOML; an array as a TOML array ("[1, 2]") or comma-separated. A QIANMIAN_<SECTION>_... variable
  // of a section that was read but naming no key it reads is reported by Finish as unknown.
  void UseEnvironment();

  ConfigTable Root();
  // OK when every key was read and every value was valid; otherwise InvalidArgument listing
  // each problem ("unknown key 'data.foo'", "'data.max_bad_row_share': must be in [0, 1]").
  Status Finish() const;
  // The file's content as JSON ("{}" when empty), e.g. for artifact manifests, with the
  // environment's overrides applied to the keys read so far and secrets shown as "(secret)".
  std::string ToJson() const;

 private:
  std::shared_ptr<ConfigState> state_;
};

}  // namespace qm
