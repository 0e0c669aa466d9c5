#include "codec.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <set>
#include <string_view>

#include "qianmian/core/utf8.h"

namespace qm::server {

namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

std::string Str(const msgpack::object& o) { return std::string(o.via.str.ptr, o.via.str.size); }

bool IsInt(const msgpack::object& o) {
  return o.type == msgpack::type::POSITIVE_INTEGER || o.type == msgpack::type::NEGATIVE_INTEGER;
}

const char* TypeName(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL:
      return "nil";
    case msgpack::type::BOOLEAN:
      return "a bool";
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER:
      return "an integer";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return "a float";
    case msgpack::type::STR:
      return "a string";
    case msgpack::type::BIN:
      return "binary";
    case msgpack::type::ARRAY:
      return "an array";
    case msgpack::type::MAP:
      return "a map";
    case msgpack::type::EXT:
      return "an ext value";
  }
  return "an unknown type";
}

Status Bad(const std::string& name, const std::string& problem) {
  return Status::InvalidArgument("'" + name + "': " + problem);
}

// Integer value, with overflow of int64 reported.
bool ToInt64(const msgpack::object& o, int64_t* out) {
  if (o.type == msgpack::type::POSITIVE_INTEGER) {
    if (o.via.u64 > static_cast<uint64_t>(INT64_MAX)) return false;
    *out = static_cast<int64_t>(o.via.u64);
    return true;
  }
  if (o.type == msgpack::type::NEGATIVE_INTEGER) {
    *out = o.via.i64;
    return true;
  }
  return false;
}

// Every string of `o` (map keys and values, at any depth) must be UTF-8: a reply may name a
// request's text (e.g. "unknown channel '...'"), and strict clients (Python's msgpack with
// raw=False, Java) cannot decode a reply carrying ill-formed text.
Status CheckText(const msgpack::object& o, const std::string& path) {
  switch (o.type) {
    case msgpack::type::STR: {
      const size_t at = FirstInvalidUtf8(std::string_view(o.via.str.ptr, o.via.str.size));
      if (at != std::string_view::npos) return Bad(path, "not valid UTF-8 (byte " + std::to_string(at) + ")");
      return Status::Ok();
    }
    case msgpack::type::ARRAY:
      for (uint32_t i = 0; i < o.via.array.size; ++i) {
        QM_RETURN_IF_ERROR(CheckText(o.via.array.ptr[i], path + "[" + std::to_string(i) + "]"));
      }
      return Status::Ok();
    case msgpack::type::MAP:
      for (uint32_t i = 0; i < o.via.map.size; ++i) {
        const msgpack::object& k = o.via.map.ptr[i].key;
        if (k.type != msgpack::type::STR) {
          QM_RETURN_IF_ERROR(CheckText(o.via.map.ptr[i].val, path + "[" + std::to_string(i) + "]"));
          continue;
        }
        const std::string_view key(k.via.str.ptr, k.via.str.size);
        if (!ValidUtf8(key)) return Bad(path.empty() ? "(request)" : path, "a key is not valid UTF-8");
        QM_RETURN_IF_ERROR(
            CheckText(o.via.map.ptr[i].val, path.empty() ? std::string(key) : path + "." + std::string(key)));
      }
      return Status::Ok();
    default:
      return Status::Ok();
  }
}

}  // namespace

Status DecodeRequest(const void* data, size_t size, const DecodeLimits& limits, Decoded* out) {
  if (size == 0) return Status::InvalidArgument("empty frame: a request is one msgpack map");
  if (size > limits.max_frame_bytes) {
    return Status::InvalidArgument("frame of " + std::to_string(size) + " bytes exceeds the limit of " +
                                   std::to_string(limits.max_frame_bytes));
  }
  const msgpack::unpack_limit lim(limits.max_array, limits.max_array, limits.max_frame_bytes, limits.max_frame_bytes,
                                  limits.max_frame_bytes, limits.max_depth);
  size_t off = 0;
  try {
    out->handle = msgpack::unpack(static_cast<const char*>(data), size, off, nullptr, nullptr, lim);
  } catch (const msgpack::array_size_overflow&) {
    return Status::InvalidArgument("an array exceeds " + std::to_string(limits.max_array) + " elements");
  } catch (const msgpack::map_size_overflow&) {
    return Status::InvalidArgument("a map exceeds " + std::to_string(limits.max_array) + " entries");
  } catch (const msgpack::depth_size_overflow&) {
    return Status::InvalidArgument("nesting deeper than " + std::to_string(limits.max_depth) + " levels");
  } catch (const msgpack::size_overflow&) {
    return Status::InvalidArgument("a string or binary value exceeds the frame limit");
  } catch (const msgpack::insufficient_bytes&) {
    return Status::InvalidArgument("truncated msgpack");
  } catch (const std::bad_alloc&) {
    return Status::InvalidArgument("request too large to decode");
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("not valid msgpack (") + e.what() + ")");
  }
  if (off != size) return Status::InvalidArgument("trailing bytes after the request map");
  const msgpack::object& root = out->handle.get();
  if (root.type != msgpack::type::MAP) {
    return Status::InvalidArgument(std::string("a request must be a msgpack map, not ") + TypeName(root));
  }
  std::set<std::string> seen;
  for (uint32_t i = 0; i < root.via.map.size; ++i) {
    const msgpack::object& k = root.via.map.ptr[i].key;
    if (k.type != msgpack::type::STR) return Status::InvalidArgument("map keys must be strings");
    if (!seen.insert(Str(k)).second) return Bad(Str(k), "duplicate key");
  }
  auto find = [&](const char* key) -> const msgpack::object* {
    for (uint32_t i = 0; i < root.via.map.size; ++i) {
      const auto& k = root.via.map.ptr[i].key;
      if (k.via.str.size == std::strlen(key) && std::memcmp(k.via.str.ptr, key, k.via.str.size) == 0) {
        return &root.via.map.ptr[i].val;
      }
    }
    return nullptr;
  };
  if (const msgpack::object* id = find("id")) {
    if (id->type == msgpack::type::STR) {
      if (id->via.str.size > 256) return Bad("id", "longer than 256 bytes");
      QM_RETURN_IF_ERROR(CheckText(*id, "id"));  // not echoed: the reply would carry it
      out->id = *id;
    } else if (IsInt(*id)) {
      out->id = *id;
    } else {
      return Bad("id", std::string("must be a string or an integer, not ") + TypeName(*id));
    }
  }
  const msgpack::object* op = find("op");
  if (!op) return Bad("op", "missing");
  if (op->type != msgpack::type::STR) return Bad("op", std::string("must be a string, not ") + TypeName(*op));
  if (op->via.str.size > 64) return Bad("op", "longer than 64 bytes");
  out->op = Str(*op);
  if (const msgpack::object* d = find("deadline_ms")) {
    int64_t v = 0;
    if (!ToInt64(*d, &v)) return Bad("deadline_ms", std::string("must be an integer, not ") + TypeName(*d));
    if (v < 1 || v > limits.max_deadline) {
      return Bad("deadline_ms", "must be in 1.." + std::to_string(limits.max_deadline));
    }
    out->deadline_ms = v;
  }
  return CheckText(root, "");
}

Result<Fields> Fields::Of(const msgpack::object& obj, std::string path) {
  if (obj.type != msgpack::type::MAP) return Bad(path, std::string("must be a map, not ") + TypeName(obj));
  for (uint32_t i = 0; i < obj.via.map.size; ++i) {
    if (obj.via.map.ptr[i].key.type != msgpack::type::STR) return Bad(path, "map keys must be strings");
  }
  Fields f;
  f.obj_ = &obj;
  f.path_ = std::move(path);
  return f;
}

const msgpack::object* Fields::Find(const char* key) const {
  const size_t n = std::strlen(key);
  for (uint32_t i = 0; i < obj_->via.map.size; ++i) {
    const auto& k = obj_->via.map.ptr[i].key;
    if (k.via.str.size == n && std::memcmp(k.via.str.ptr, key, n) == 0) return &obj_->via.map.ptr[i].val;
  }
  return nullptr;
}

std::string Fields::Name(const char* key) const { return path_.empty() ? key : path_ + "." + key; }

Status Fields::Str(const char* key, std::string* out, bool required, size_t max_len) const {
  const msgpack::object* v = Find(key);
  if (!v) return required ? Bad(Name(key), "missing") : Status::Ok();
  if (v->type != msgpack::type::STR) return Bad(Name(key), std::string("must be a string, not ") + TypeName(*v));
  if (v->via.str.size > max_len) return Bad(Name(key), "longer than " + std::to_string(max_len) + " bytes");
  out->assign(v->via.str.ptr, v->via.str.size);
  return Status::Ok();
}

Status Fields::Int(const char* key, int64_t* out, bool required, int64_t lo, int64_t hi) const {
  const msgpack::object* v = Find(key);
  if (!v) return required ? Bad(Name(key), "missing") : Status::Ok();
  int64_t x = 0;
  if (!ToInt64(*v, &x)) return Bad(Name(key), std::string("must be an integer, not ") + TypeName(*v));
  if (x < lo || x > hi) return Bad(Name(key), "must be in " + std::to_string(lo) + ".." + std::to_string(hi));
  *out = x;
  return Status::Ok();
}

Status Fields::Bool(const char* key, bool* out) const {
  const msgpack::object* v = Find(key);
  if (!v) return Status::Ok();
  if (v->type != msgpack::type::BOOLEAN) return Bad(Name(key), std::string("must be a bool, not ") + TypeName(*v));
  *out = v->via.boolean;
  return Status::Ok();
}

Status Fields::StrList(const char* key, std::vector<std::string>* out, bool required, size_t max_len) const {
  const msgpack::object* v = Find(key);
  if (!v) return required ? Bad(Name(key), "missing") : Status::Ok();
  if (v->type != msgpack::type::ARRAY)
    return Bad(Name(key), std::string("must be an array of strings, not ") + TypeName(*v));
  out->clear();
  out->reserve(v->via.array.size);
  for (uint32_t i = 0; i < v->via.array.size; ++i) {
    const auto& e = v->via.array.ptr[i];
    const std::string name = Name(key) + "[" + std::to_string(i) + "]";
    if (e.type != msgpack::type::STR) return Bad(name, std::string("must be a string, not ") + TypeName(e));
    if (e.via.str.size > max_len) return Bad(name, "longer than " + std::to_string(max_len) + " bytes");
    out->emplace_back(e.via.str.ptr, e.via.str.size);
  }
  return Status::Ok();
}

Status Fields::StrMap(const char* key, std::map<std::string, std::string>* out) const {
  const msgpack::object* v = Find(key);
  if (!v) return Status::Ok();
  if (v->type != msgpack::type::MAP) return Bad(Name(key), std::string("must be a map, not ") + TypeName(*v));
  for (uint32_t i = 0; i < v->via.map.size; ++i) {
    const auto& kv = v->via.map.ptr[i];
    if (kv.key.type != msgpack::type::STR) return Bad(Name(key), "map keys must be strings");
    const std::string name = Name(key) + "." + qm::server::Str(kv.key);
    if (kv.val.type == msgpack::type::ARRAY || kv.val.type == msgpack::type::MAP) {
      return Bad(name, std::string("must be a scalar, not ") + TypeName(kv.val));
    }
    std::string text;
    QM_RETURN_IF_ERROR(CellText(kv.val, name, &text));
    (*out)[qm::server::Str(kv.key)] = std::move(text);
  }
  return Status::Ok();
}

Status Fields::Array(const char* key, const msgpack::object** begin, size_t* size) const {
  const msgpack::object* v = Find(key);
  if (!v) return Bad(Name(key), "missing");
  if (v->type != msgpack::type::ARRAY) return Bad(Name(key), std::string("must be an array, not ") + TypeName(*v));
  *begin = v->via.array.ptr;
  *size = v->via.array.size;
  return Status::Ok();
}

Status CellText(const msgpack::object& v, const std::string& name, std::string* out) {
  switch (v.type) {
    case msgpack::type::NIL:
      out->clear();
      return Status::Ok();
    case msgpack::type::BOOLEAN:
      *out = v.via.boolean ? "1" : "0";
      return Status::Ok();
    case msgpack::type::POSITIVE_INTEGER:
      *out = std::to_string(v.via.u64);
      return Status::Ok();
    case msgpack::type::NEGATIVE_INTEGER:
      *out = std::to_string(v.via.i64);
      return Status::Ok();
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: {
      if (!std::isfinite(v.via.f64)) return Bad(name, "must be a finite number");
      char b[64];
      std::snprintf(b, sizeof b, "%.17g", v.via.f64);
      *out = b;
      return Status::Ok();
    }
    case msgpack::type::STR:
      out->assign(v.via.str.ptr, v.via.str.size);
      return Status::Ok();
    case msgpack::type::ARRAY: {
      out->clear();
      for (uint32_t i = 0; i < v.via.array.size; ++i) {
        const auto& e = v.via.array.ptr[i];
        if (e.type == msgpack::type::ARRAY || e.type == msgpack::type::MAP) {
          return Bad(name + "[" + std::to_string(i) + "]", std::string("must be a scalar, not ") + TypeName(e));
        }
        std::string cell;
        QM_RETURN_IF_ERROR(CellText(e, name + "[" + std::to_string(i) + "]", &cell));
        if (i) *out += ';';
        *out += cell;
      }
      return Status::Ok();
    }
    default:
      return Bad(name, std::string("must be a string, number, bool or list, not ") + TypeName(v));
  }
}

size_t ErrorCodeIndex(const char* code) {
  for (size_t i = 0; i < kNumErrorCodes; ++i) {
    if (std::strcmp(code, kErrorCodes[i]) == 0) return i;
  }
  return kNumErrorCodes - 1;
}

const char* ErrorCodeOf(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
      return "bad_request";
    case StatusCode::kNotFound:
      return "not_found";
    case StatusCode::kResourceExhausted:
      return "overloaded";
    case StatusCode::kDeadlineExceeded:
      return "deadline_exceeded";
    case StatusCode::kConflict:
    case StatusCode::kAlreadyExists:
      return "conflict";
    case StatusCode::kPermissionDenied:
      return "forbidden";
    case StatusCode::kUnavailable:
    case StatusCode::kIoError:
    case StatusCode::kCorruption:
    case StatusCode::kFailedPrecondition:
      return "unavailable";
    default:
      return "internal";
  }
}

MapWriter::MapWriter(msgpack::sbuffer* buf) : buf_(buf), header_(buf->size()) {
  const char reserved = 0;
  buf_->write(&reserved, 1);
}

void MapWriter::Key(std::string_view key) {
  ++fields_;
  PackText(key);
}

void MapWriter::PackText(std::string_view s) {
  if (!ValidUtf8(s)) {  // whatever a message quotes or a catalogue holds, a reply stays decodable
    const std::string valid = ToValidUtf8(s);
    Packer pk(*buf_);
    pk.pack_str(static_cast<uint32_t>(valid.size()));
    pk.pack_str_body(valid.data(), static_cast<uint32_t>(valid.size()));
    return;
  }
  Packer pk(*buf_);
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

void MapWriter::Str(std::string_view key, std::string_view value) {
  Key(key);
  PackText(value);
}

void MapWriter::Int(std::string_view key, int64_t value) {
  Key(key);
  Packer(*buf_).pack_int64(value);
}

void MapWriter::Double(std::string_view key, double value) {
  Key(key);
  Packer(*buf_).pack_double(value);
}

void MapWriter::Bool(std::string_view key, bool value) {
  Key(key);
  Packer(*buf_).pack(value);
}

void MapWriter::Object(std::string_view key, const msgpack::object& value) {
  Key(key);
  Packer(*buf_).pack(value);
}

void MapWriter::StrList(std::string_view key, const std::vector<std::string>& values) {
  ArrayHeader(key, values.size());
  for (const std::string& v : values) PackText(v);
}

void MapWriter::IntMap(std::string_view key, const std::map<std::string, int64_t>& values) {
  Map(key, [&](MapWriter& map) {
    for (const auto& [k, v] : values) map.Int(k, v);
  });
}

void MapWriter::ArrayHeader(std::string_view key, size_t size) {
  Key(key);
  Packer(*buf_).pack_array(static_cast<uint32_t>(size));
}

void MapWriter::Close() {
  if (fields_ < 16) {
    buf_->data()[header_] = static_cast<char>(0x80 | fields_);  // fixmap
    return;
  }
  // map 16 or map 32: the fields move right to make room for the longer header.
  const size_t extra = fields_ < 0x10000 ? 2 : 4;
  const char room[4] = {};
  buf_->write(room, extra);
  char* d = buf_->data();
  std::memmove(d + header_ + 1 + extra, d + header_ + 1, buf_->size() - extra - header_ - 1);
  if (extra == 2) {
    d[header_] = static_cast<char>(0xde);
    _msgpack_store16(d + header_ + 1, static_cast<uint16_t>(fields_));
  } else {
    d[header_] = static_cast<char>(0xdf);
    _msgpack_store32(d + header_ + 1, fields_);
  }
}

void WriteReplyHead(bool ok, const std::optional<msgpack::object>& id, MapWriter* reply) {
  reply->Bool("ok", ok);
  if (id) reply->Object("id", *id);
}

void PackError(msgpack::sbuffer* buf, const std::optional<msgpack::object>& id, const char* code,
               const std::string& message) {
  MapWriter::Write(buf, [&](MapWriter& reply) {
    WriteReplyHead(false, id, &reply);
    reply.Map("error", [&](MapWriter& error) {
      error.Str("code", code);
      error.Str("message", message);
    });
  });
}

}  // namespace qm::server
