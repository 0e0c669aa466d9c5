// Private: the msgpack side of SPEC §5. Decoding a request frame under hard limits, typed field
// readers whose errors name the field, and a packer for replies. Never throws out of a function
// declared here except Packer (whose callers run inside the server's catch-all).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <msgpack.hpp>

#include "qianmian/core/status.h"
#include "qianmian/core/types.h"

namespace qm::server {

struct DecodeLimits {
  size_t max_frame_bytes = 1 << 20;
  size_t max_array = 10000;  // elements of an array, pairs of a map
  size_t max_depth = 16;
  TimeMs max_deadline = 60000;
};

// A decoded request: the msgpack tree (owned by `handle`), its op, echoed id and deadline.
struct Decoded {
  msgpack::object_handle handle;
  const msgpack::object& root() const { return handle.get(); }  // a map once decoded
  std::string op;
  std::optional<msgpack::object> id;      // string or integer, echoed in the reply
  TimeMs deadline_ms = 0;                 // 0 = none given
};

// Decodes one request frame. InvalidArgument (-> bad_request) names what is wrong; `out->id`
// is filled whenever it could be read, so even a failed request can echo it.
Status DecodeRequest(const void* data, size_t size, const DecodeLimits& limits, Decoded* out);

// The fields of a msgpack map. Keys are strings (checked by DecodeRequest for the root; by
// Fields::Of for nested maps). Every reader returns InvalidArgument "'<path>': <problem>".
class Fields {
 public:
  // `obj` must outlive this. `path` prefixes field names in messages ("" for the root,
  // "events[3]" for a nested map). InvalidArgument when obj is not a map with string keys.
  static Result<Fields> Of(const msgpack::object& obj, std::string path);

  const msgpack::object* Find(const char* key) const;
  std::string Name(const char* key) const;  // "<path>.<key>" or "<key>"

  // Required readers fail on a missing field; optional ones leave *out untouched.
  Status Str(const char* key, std::string* out, bool required, size_t max_len = 4096) const;
  Status Int(const char* key, int64_t* out, bool required, int64_t lo, int64_t hi) const;
  Status Bool(const char* key, bool* out) const;  // optional
  Status StrList(const char* key, std::vector<std::string>* out, bool required, size_t max_len = 4096) const;
  // A map of string keys to scalars, values rendered as text (context maps).
  Status StrMap(const char* key, std::map<std::string, std::string>* out) const;
  // The array under `key` (required): its elements.
  Status Array(const char* key, const msgpack::object** begin, size_t* size) const;

 private:
  const msgpack::object* obj_ = nullptr;
  std::string path_;
};

// A scalar or a list of scalars as CSV cell text (items.csv / customers.csv records):
// string as is, integer and float as numbers, bool as 1/0, nil as "", array joined by ';'.
Status CellText(const msgpack::object& v, const std::string& name, std::string* out);

using Packer = msgpack::packer<msgpack::sbuffer>;

inline void PackStr(Packer& pk, const std::string& s) { pk.pack_str(static_cast<uint32_t>(s.size())); pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size())); }
inline void PackStr(Packer& pk, const char* s) { PackStr(pk, std::string(s)); }

// `{ok: false, id?, error: {code, message}}`.
void PackError(msgpack::sbuffer* buf, const std::optional<msgpack::object>& id, const char* code,
               const std::string& message);

}  // namespace qm::server
