#include "qianmian/core/config.h"

#include <toml++/toml.h>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

extern char** environ;  // POSIX

namespace qm {

struct ConfigState {
  toml::table root;
  std::string source;
  std::map<std::string, bool> known;  // full paths that a section read or opened
  std::vector<std::string> errors;
  bool environment = false;                // UseEnvironment: QIANMIAN_* variables override keys
  std::map<std::string, std::string> env;  // path -> the variable that set it
  std::set<std::string> env_read;          // variables a key's read looked for
  std::set<std::string> sections;          // top-level tables a section opened
  std::set<std::string> secrets;           // paths ToJson does not show
};

namespace {

const toml::table* AsTable(const void* p) { return static_cast<const toml::table*>(p); }

const toml::node* Lookup(const void* table, std::string_view key) {
  if (table == nullptr) return nullptr;
  return AsTable(table)->get(key);
}

constexpr std::string_view kEnvPrefix = "QIANMIAN_";

// "'path'", or "'path' (from QIANMIAN_PATH)" for a key the environment set.
std::string Where(const ConfigState& s, const std::string& path) {
  auto e = s.env.find(path);
  return "'" + path + "'" + (e == s.env.end() ? std::string() : " (from " + e->second + ")");
}

void TypeError(ConfigState* s, const std::string& path, const char* want) {
  s->errors.push_back(Where(*s, path) + ": expected " + want);
}

// QIANMIAN_ + the path upper-cased, dots as underscores: server.bind -> QIANMIAN_SERVER_BIND.
std::string EnvName(const std::string& path) {
  std::string name(kEnvPrefix);
  for (char c : path) name += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

// The whole content of `path`, without one trailing newline ("\n" or "\r\n").
bool ReadSecretFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  if (!out->empty() && out->back() == '\n') out->pop_back();
  if (!out->empty() && out->back() == '\r') out->pop_back();
  return true;
}

// One TOML value parsed from `text` ("v = <text>"), or null.
std::optional<toml::table> ParseValue(const std::string& text) {
  try {
    return toml::parse("v = " + text);
  } catch (const toml::parse_error&) {
    return std::nullopt;
  }
}

// The environment text of a key as a TOML node of the type the key's reader wants; false when
// it cannot be one (the reader's type check then names the variable).
bool EnvNode(const std::string& text, ConfigType want, toml::table* out) {
  if (want == ConfigType::kString) {
    out->insert_or_assign("v", text);
    return true;
  }
  if (want == ConfigType::kOther) {  // a duration: milliseconds or "30s"
    auto t = ParseValue(text);
    if (t && (*t)["v"].is_integer()) {
      *out = std::move(*t);
    } else {
      out->insert_or_assign("v", text);
    }
    return true;
  }
  if (want == ConfigType::kArray && (text.empty() || text.front() != '[')) {
    toml::array a;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
      while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) item.erase(item.begin());
      while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.pop_back();
      auto t = ParseValue(item);
      if (t && (*t)["v"].is_integer()) {
        a.push_back(*(*t)["v"].value<int64_t>());
      } else if (t && (*t)["v"].is_floating_point()) {
        a.push_back(*(*t)["v"].value<double>());
      } else {
        a.push_back(item);
      }
    }
    out->insert_or_assign("v", std::move(a));
    return true;
  }
  auto t = ParseValue(text);
  if (!t) return false;
  *out = std::move(*t);
  return true;
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
  state_->errors.push_back(Where(*state_, PathOf(key)) + ": " + std::string(message));
}

void* ConfigTable::MutableTable() {
  toml::table* t = &state_->root;
  std::stringstream ss(path_);
  std::string part, path;
  while (!path_.empty() && std::getline(ss, part, '.')) {
    toml::node* n = t->get(part);
    if (!n) n = &t->insert_or_assign(part, toml::table{}).first->second;
    t = n->as_table();
    if (!t) return nullptr;
    path += (path.empty() ? "" : ".") + part;
    state_->known[path] = true;
  }
  return t;
}

const void* ConfigTable::Node(std::string_view key, ConfigType want) {
  const std::string path = PathOf(key);
  if (!state_->environment || path.find('[') != std::string::npos) return Lookup(table_, key);
  const std::string name = EnvName(path);
  state_->env_read.insert(name);
  const char* value = std::getenv(name.c_str());
  const char* file = std::getenv((name + "_FILE").c_str());
  if (!value && !file) return Lookup(table_, key);
  std::string text;
  if (value && file) {
    state_->errors.push_back(name + " and " + name + "_FILE are both set (one value for '" + path + "')");
    return Lookup(table_, key);
  }
  if (value) {
    text = value;
  } else if (!ReadSecretFile(file, &text)) {
    state_->errors.push_back(name + "_FILE: cannot read '" + std::string(file) + "'");
    return Lookup(table_, key);
  } else if (want == ConfigType::kString) {
    state_->secrets.insert(path);  // a value kept in a file is not copied into manifests
  }
  state_->env[path] = value ? name : name + "_FILE";
  toml::table parsed;
  auto* table = static_cast<toml::table*>(MutableTable());
  if (!EnvNode(text, want, &parsed) || !table) {
    state_->errors.push_back(Where(*state_, path) + ": cannot read '" + text + "' as this key's value");
    return Lookup(table_, key);
  }
  parsed.get("v")->visit([&](const auto& v) { table->insert_or_assign(std::string(key), v); });
  table_ = table;
  return Lookup(table_, key);
}

void ConfigTable::Read(std::string_view key, bool* out) {
  const auto* n = static_cast<const toml::node*>(Node(key, ConfigType::kBool));
  if (!n) return;
  state_->known[PathOf(key)] = true;
  if (auto v = n->value<bool>(); v && n->is_boolean())
    *out = *v;
  else
    TypeError(state_.get(), PathOf(key), "a boolean");
}

void ConfigTable::Read(std::string_view key, int64_t* out) {
  const auto* n = static_cast<const toml::node*>(Node(key, ConfigType::kInteger));
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
  const auto* n = static_cast<const toml::node*>(Node(key, ConfigType::kFloat));
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
  const auto* n = static_cast<const toml::node*>(Node(key, ConfigType::kString));
  if (!n) return;
  state_->known[PathOf(key)] = true;
  if (n->is_string())
    *out = *n->value<std::string>();
  else
    TypeError(state_.get(), PathOf(key), "a string");
}

void ConfigTable::Read(std::string_view key, std::vector<std::string>* out) {
  const auto* n = static_cast<const toml::node*>(Node(key, ConfigType::kArray));
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
  const auto* n = static_cast<const toml::node*>(Node(key, ConfigType::kArray));
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
  const auto* n = static_cast<const toml::node*>(Node(key, ConfigType::kOther));
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

void ConfigTable::ReadSecret(std::string_view key, std::string* out) {
  const std::string file_key = std::string(key) + "_file";
  state_->secrets.insert(PathOf(key));
  std::string value, file;
  Read(key, &value);
  const bool environment = state_->environment;  // QIANMIAN_<KEY>_FILE is the key's own file variant
  state_->environment = false;
  Read(file_key, &file);
  state_->environment = environment;
  const bool has_value = Has(key), has_file = Has(file_key);
  if (has_value && has_file) {
    Error(key, "set either it or '" + PathOf(file_key) + "', not both");
  } else if (has_file && !ReadSecretFile(file, out)) {
    Error(file_key, "cannot read '" + file + "'");
  } else if (has_value) {
    *out = value;
  }
}

ConfigTable ConfigTable::Table(std::string_view key) {
  const toml::node* n = Lookup(table_, key);
  std::string path = PathOf(key);
  if (path_.empty()) state_->sections.insert(path);
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

void ConfigFile::UseEnvironment() { state_->environment = true; }

Status ConfigFile::Finish() const {
  std::vector<std::string> problems = state_->errors;
  CollectUnknown(state_->root, "", *state_, &problems);
  if (state_->environment) {
    // A variable of a section that was read, naming no key: a misspelt override.
    for (char** e = environ; e && *e; ++e) {
      std::string name(*e);
      name = name.substr(0, name.find('='));
      if (name.compare(0, kEnvPrefix.size(), kEnvPrefix) != 0) continue;
      std::string base = name;
      if (base.size() > 5 && base.compare(base.size() - 5, 5, "_FILE") == 0 && !state_->env_read.count(base)) {
        base.resize(base.size() - 5);
      }
      if (state_->env_read.count(base)) continue;
      for (const std::string& section : state_->sections) {
        const std::string head = EnvName(section) + "_";
        if (name.compare(0, head.size(), head) == 0) {
          problems.push_back("unknown setting " + name + " in the environment (no key of [" + section +
                             "] is named so)");
          break;
        }
      }
    }
  }
  if (problems.empty()) return Status::Ok();
  std::string msg =
      "configuration " + (state_->source.empty() ? std::string("") : "'" + state_->source + "' ") + "rejected: ";
  for (size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
  return Status::InvalidArgument(msg);
}

std::string ConfigFile::ToJson() const {
  toml::table shown = state_->root;
  for (const std::string& path : state_->secrets) {
    if (toml::node* n = shown.at_path(path).node(); n && n->is_string()) *n->as_string() = std::string("(secret)");
  }
  std::stringstream ss;
  ss << toml::json_formatter{shown};
  return ss.str();
}

}  // namespace qm
