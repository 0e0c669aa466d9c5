#include "qianmian/core/config.h"

#include <toml++/toml.h>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

namespace qm {

struct ConfigState {
  toml::table root;
  std::string source;
  std::map<std::string, bool> known;  // full paths that a section read or opened
  std::vector<std::string> errors;
};

namespace {

const toml::table* AsTable(const void* p) { return static_cast<const toml::table*>(p); }

const toml::node* Lookup(const void* table, std::string_view key) {
  if (table == nullptr) return nullptr;
  return AsTable(table)->get(key);
}

void TypeError(ConfigState* s, const std::string& path, const char* want) {
  s->errors.push_back("'" + path + "': expected " + want);
}

void CollectUnknown(const toml::table& t, const std::string& prefix, const ConfigState& s,
                    std::vector<std::string>* out) {
  for (const auto& [k, v] : t) {
    std::string path = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (!s.known.count(path)) {
      out->push_back("unknown key '" + path + "'");
      continue;
    }
    if (const auto* sub = v.as_table()) CollectUnknown(*sub, path, s, out);
    if (const auto* arr = v.as_array()) {
      for (size_t i = 0; i < arr->size(); ++i) {
        if (const auto* st = (*arr)[i].as_table()) {
          CollectUnknown(*st, path + "[" + std::to_string(i) + "]", s, out);
        }
      }
    }
  }
}

}  // namespace

std::string ConfigTable::PathOf(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

bool ConfigTable::Has(std::string_view key) const { return Lookup(table_, key) != nullptr; }

ConfigType ConfigTable::TypeOf(std::string_view key) const {
  const toml::node* n = Lookup(table_, key);
  if (!n) return ConfigType::kAbsent;
  if (n->is_boolean()) return ConfigType::kBool;
  if (n->is_integer()) return ConfigType::kInteger;
  if (n->is_floating_point()) return ConfigType::kFloat;
  if (n->is_string()) return ConfigType::kString;
  if (n->is_array()) return ConfigType::kArray;
  if (n->is_table()) return ConfigType::kTable;
  return ConfigType::kOther;
}

void ConfigTable::Error(std::string_view key, std::string_view message) {
  state_->errors.push_back("'" + PathOf(key) + "': " + std::string(message));
}

void ConfigTable::Read(std::string_view key, bool* out) {
  const toml::node* n = Lookup(table_, key);
  if (!n) return;
  state_->known[PathOf(key)] = true;
  if (auto v = n->value<bool>(); v && n->is_boolean())
    *out = *v;
  else
    TypeError(state_.get(), PathOf(key), "a boolean");
}

void ConfigTable::Read(std::string_view key, int64_t* out) {
  const toml::node* n = Lookup(table_, key);
  if (!n) return;
  state_->known[PathOf(key)] = true;
  if (n->is_integer())
    *out = *n->value<int64_t>();
  else
    TypeError(state_.get(), PathOf(key), "an integer");
}

void ConfigTable::Read(std::string_view key, int* out) {
  int64_t v = *out;
  const size_t before = state_->errors.size();
  Read(key, &v);
  if (state_->errors.size() != before) return;
  if (v < INT32_MIN || v > INT32_MAX)
    Error(key, "out of range");
  else
    *out = static_cast<int>(v);
}

void ConfigTable::Read(std::string_view key, double* out) {
  const toml::node* n = Lookup(table_, key);
  if (!n) return;
  state_->known[PathOf(key)] = true;
  if (n->is_floating_point() || n->is_integer()) {
    double v = *n->value<double>();
    if (!std::isfinite(v))
      Error(key, "must be a finite number");
    else
      *out = v;
  } else {
    TypeError(state_.get(), PathOf(key), "a number");
  }
}

void ConfigTable::Read(std::string_view key, float* out) {
  double v = *out;
  Read(key, &v);
  *out = static_cast<float>(v);
}

void ConfigTable::Read(std::string_view key, std::string* out) {
  const toml::node* n = Lookup(table_, key);
  if (!n) return;
  state_->known[PathOf(key)] = true;
  if (n->is_string())
    *out = *n->value<std::string>();
  else
    TypeError(state_.get(), PathOf(key), "a string");
}

void ConfigTable::Read(std::string_view key, std::vector<std::string>* out) {
  const toml::node* n = Lookup(table_, key);
  if (!n) return;
  state_->known[PathOf(key)] = true;
  const toml::array* a = n->as_array();
  std::vector<std::string> v;
  bool ok = a != nullptr;
  if (ok) {
    for (const auto& e : *a) {
      if (!e.is_string()) {
        ok = false;
        break;
      }
      v.push_back(*e.value<std::string>());
    }
  }
  if (ok)
    *out = std::move(v);
  else
    TypeError(state_.get(), PathOf(key), "an array of strings");
}

void ConfigTable::Read(std::string_view key, std::vector<double>* out) {
  const toml::node* n = Lookup(table_, key);
  if (!n) return;
  state_->known[PathOf(key)] = true;
  const toml::array* a = n->as_array();
  std::vector<double> v;
  bool ok = a != nullptr;
  if (ok) {
    for (const auto& e : *a) {
      if (!(e.is_floating_point() || e.is_integer())) {
        ok = false;
        break;
      }
      v.push_back(*e.value<double>());
    }
  }
  if (ok)
    *out = std::move(v);
  else
    TypeError(state_.get(), PathOf(key), "an array of numbers");
}

void ConfigTable::ReadDuration(std::string_view key, TimeMs* out) {
  const toml::node* n = Lookup(table_, key);
  if (!n) return;
  state_->known[PathOf(key)] = true;
  if (n->is_integer()) {
    int64_t v = *n->value<int64_t>();
    if (v < 0)
      Error(key, "a duration cannot be negative");
    else
      *out = v;
    return;
  }
  if (!n->is_string()) {
    TypeError(state_.get(), PathOf(key), "a duration (\"30m\", \"7d\" or milliseconds)");
    return;
  }
  std::string s = *n->value<std::string>();
  size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  std::string unit = s.substr(i);
  static const std::map<std::string, TimeMs> kUnits = {
      {"ms", 1},         {"s", kMsPerSecond}, {"m", kMsPerMinute}, {"min", kMsPerMinute},
      {"h", kMsPerHour}, {"d", kMsPerDay},    {"w", 7 * kMsPerDay}};
  auto u = kUnits.find(unit);
  if (i == 0 || i > 15 || u == kUnits.end()) {
    Error(key, "bad duration '" + s + "' (use e.g. \"500ms\", \"30s\", \"15m\", \"12h\", \"7d\", \"2w\")");
    return;
  }
  *out = std::stoll(s.substr(0, i)) * u->second;
}

ConfigTable ConfigTable::Table(std::string_view key) {
  const toml::node* n = Lookup(table_, key);
  std::string path = PathOf(key);
  if (!n) return ConfigTable(state_, nullptr, path);
  state_->known[path] = true;
  if (!n->is_table()) {
    TypeError(state_.get(), path, "a table");
    return ConfigTable(state_, nullptr, path);
  }
  return ConfigTable(state_, n->as_table(), path);
}

std::vector<ConfigTable> ConfigTable::TableArray(std::string_view key) {
  std::vector<ConfigTable> out;
  const toml::node* n = Lookup(table_, key);
  if (!n) return out;
  std::string path = PathOf(key);
  state_->known[path] = true;
  const toml::array* a = n->as_array();
  if (!a) {
    TypeError(state_.get(), path, "an array of tables");
    return out;
  }
  for (size_t i = 0; i < a->size(); ++i) {
    std::string ip = path + "[" + std::to_string(i) + "]";
    if (const auto* t = (*a)[i].as_table())
      out.push_back(ConfigTable(state_, t, ip));
    else
      TypeError(state_.get(), ip, "a table");
  }
  return out;
}

ConfigFile::ConfigFile() : state_(std::make_shared<ConfigState>()) {}

Result<ConfigFile> ConfigFile::Parse(std::string_view text, std::string source_name) {
  ConfigFile f;
  f.state_->source = source_name;
  try {
    f.state_->root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return Status::InvalidArgument(source_name + ":" + std::to_string(b.line) + ":" + std::to_string(b.column) + ": " +
                                   std::string(e.description()));
  }
  return f;
}

Result<ConfigFile> ConfigFile::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot open configuration file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path);
}

ConfigTable ConfigFile::Root() { return ConfigTable(state_, &state_->root, ""); }

Status ConfigFile::Finish() const {
  std::vector<std::string> problems = state_->errors;
  CollectUnknown(state_->root, "", *state_, &problems);
  if (problems.empty()) return Status::Ok();
  std::string msg =
      "configuration " + (state_->source.empty() ? std::string("") : "'" + state_->source + "' ") + "rejected: ";
  for (size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
  return Status::InvalidArgument(msg);
}

std::string ConfigFile::ToJson() const {
  std::stringstream ss;
  ss << toml::json_formatter{state_->root};
  return ss.str();
}

}  // namespace qm
