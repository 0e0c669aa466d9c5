// Private: the msgpack side of SPEC §5. Decoding a request frame under hard limits, typed field
// readers whose errors name the field, the error codes, and MapWriter, which writes every map of
// a reply (reply_codec.h encodes each op's reply with it). The decoding functions never throw;
// the writing ones may (std::bad_alloc; their callers run inside the server's catch-all).
#pragma once

#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <string_view>
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
  std::optional<msgpack::object> id;  // string or integer, echoed in the reply
  TimeMs deadline_ms = 0;             // 0 = none given
  std::string peer;                   // the client's address ("tcp://10.0.0.5:51234"), "" when unknown
  std::string user;                   // the CURVE client's name (its ZAP User-Id); "" without CURVE
  bool via_http = false;              // through the HTTP port (its JSON API or console): `_via` says who
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

// The error codes of SPEC §5, in the order `stats` lists them.
inline constexpr const char* kErrorCodes[] = {"bad_request", "unknown_op",        "not_found",
                                              "overloaded",  "deadline_exceeded", "unavailable",
                                              "conflict",    "forbidden",         "internal"};
inline constexpr size_t kNumErrorCodes = std::size(kErrorCodes);
// The index of `code` in kErrorCodes (that of "internal" for a code not listed).
size_t ErrorCodeIndex(const char* code);
// The SPEC §5 error code of a failed Status (InvalidArgument -> "bad_request", ...).
const char* ErrorCodeOf(const Status& s);

// Writes one msgpack map at the end of a buffer, its size taken from the fields written rather
// than counted by hand: one header byte is reserved when the map opens and set when it closes
// (widened in place past 15 and 65535 fields), so the bytes are those of msgpack's pack_map(n)
// followed by the fields.
// Keys are written as given; a key written twice is written twice.
class MapWriter {
 public:
  // Writes the map that `fill(MapWriter&)` fills at the end of *buf. When `fill` throws, *buf
  // is left holding an unfinished map (the caller discards it).
  template <class Fill>
  static void Write(msgpack::sbuffer* buf, Fill&& fill) {
    MapWriter map(buf);
    fill(map);
    map.Close();
  }
  MapWriter(const MapWriter&) = delete;
  MapWriter& operator=(const MapWriter&) = delete;

  void Str(std::string_view key, std::string_view value);
  void Int(std::string_view key, int64_t value);
  // As msgpack-c's pack_double writes it: a float64, or an integer for a whole value (2.0 -> 2).
  void Double(std::string_view key, double value);
  void Bool(std::string_view key, bool value);
  void Object(std::string_view key, const msgpack::object& value);  // a decoded value, as it came
  void StrList(std::string_view key, const std::vector<std::string>& values);
  void IntMap(std::string_view key, const std::map<std::string, int64_t>& values);
  // A nested map, filled by fill(MapWriter&).
  template <class Fill>
  void Map(std::string_view key, Fill&& fill) {
    Key(key);
    Write(buf_, fill);
  }
  // An array of maps, one per element of `elements`, each filled by fill(MapWriter&, element).
  template <class Seq, class Fill>
  void MapArray(std::string_view key, const Seq& elements, Fill&& fill) {
    ArrayHeader(key, elements.size());
    for (const auto& e : elements) Write(buf_, [&](MapWriter& map) { fill(map, e); });
  }

 private:
  explicit MapWriter(msgpack::sbuffer* buf);
  void Key(std::string_view key);  // counts a field
  void PackText(std::string_view s);
  void ArrayHeader(std::string_view key, size_t size);
  void Close();

  msgpack::sbuffer* buf_;
  size_t header_;        // offset of the reserved header byte in *buf_
  uint32_t fields_ = 0;  // keys written
};

// The fields every reply opens with: `ok`, then `id` when the request had one.
void WriteReplyHead(bool ok, const std::optional<msgpack::object>& id, MapWriter* reply);

// `{ok: false, id?, error: {code, message}}` at the end of *buf.
void PackError(msgpack::sbuffer* buf, const std::optional<msgpack::object>& id, const char* code,
               const std::string& message);

}  // namespace qm::server
