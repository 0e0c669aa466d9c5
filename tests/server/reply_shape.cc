#include "reply_shape.h"

#include <cctype>
#include <exception>
#include <iterator>

namespace qm::server::testing {
namespace {

std::string Text(const msgpack::object& o) { return std::string(o.via.str.ptr, o.via.str.size); }

bool IsInt(const msgpack::object& o) {
  return o.type == msgpack::type::POSITIVE_INTEGER || o.type == msgpack::type::NEGATIVE_INTEGER;
}

// The shape word of a value's msgpack type (msgpack::type::object_type numbers them 0..10).
const char* TypeName(const msgpack::object& o) {
  static const char* const kNames[] = {"nil", "bool",  "int", "int", "float",  "str",
                                       "bin", "array", "map", "ext", "float32"};
  return o.type < std::size(kNames) ? kNames[o.type] : "unknown";
}

// Walks a value and its shape together; the first difference ends the walk.
class Matcher {
 public:
  explicit Matcher(std::string_view shape) : shape_(shape) {}

  std::string Run(const msgpack::object& o) {
    if (Value(o, "reply") && pos_ != shape_.size())
      Fail("shape", "trailing text in the shape at " + std::to_string(pos_));
    return error_;
  }

 private:
  bool Fail(const std::string& path, const std::string& problem) {
    error_ = path + ": " + problem;
    return false;
  }
  char At(size_t pos) const { return pos < shape_.size() ? shape_[pos] : '\0'; }
  bool Expect(char c) {
    if (At(pos_) != c) return Fail("shape", std::string("expected '") + c + "' at " + std::to_string(pos_));
    ++pos_;
    return true;
  }
  std::string Word() {
    const size_t begin = pos_;
    while (std::isalnum(static_cast<unsigned char>(At(pos_))) || At(pos_) == '_' || At(pos_) == '.') ++pos_;
    return std::string(shape_.substr(begin, pos_ - begin));
  }
  // The position just past the shape that starts at `pos` (brackets matched).
  size_t End(size_t pos) const {
    int depth = 0;
    for (; pos < shape_.size(); ++pos) {
      const char c = shape_[pos];
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (depth == 0) return pos;
        if (--depth == 0) return At(pos + 1) == '*' ? pos + 2 : pos + 1;
      }
      if (c == ',' && depth == 0) return pos;
    }
    return pos;
  }

  bool Value(const msgpack::object& o, const std::string& path) {
    if (At(pos_) == '{' && At(pos_ + 1) == '*') return Dictionary(o, path);
    if (At(pos_) == '{') return Map(o, path);
    if (At(pos_) == '[') return Array(o, path);
    const std::string want = Word();
    if (want.empty()) return Fail("shape", "a shape expected at " + std::to_string(pos_));
    const bool number = want == "num" && (o.type == msgpack::type::FLOAT64 || IsInt(o));
    if (!number && want != TypeName(o)) return Fail(path, std::string("is ") + TypeName(o) + ", expected " + want);
    return true;
  }

  bool Map(const msgpack::object& o, const std::string& path) {
    if (o.type != msgpack::type::MAP) return Fail(path, std::string("is ") + TypeName(o) + ", expected a map");
    ++pos_;
    uint32_t i = 0;
    while (At(pos_) != '}') {
      const std::string key = Word();
      if (!Expect(':')) return false;
      if (i == o.via.map.size) return Fail(path, "has " + std::to_string(i) + " keys; '" + key + "' is missing");
      const msgpack::object_kv& kv = o.via.map.ptr[i];
      if (kv.key.type != msgpack::type::STR) return Fail(path, "key " + std::to_string(i) + " is not a string");
      if (Text(kv.key) != key) {
        return Fail(path, "key " + std::to_string(i) + " is '" + Text(kv.key) + "', expected '" + key + "'");
      }
      if (!Value(kv.val, path + "." + key)) return false;
      ++i;
      if (At(pos_) == ',') ++pos_;
    }
    ++pos_;
    if (i != o.via.map.size) {
      const msgpack::object& extra = o.via.map.ptr[i].key;
      return Fail(path, "has " + std::to_string(o.via.map.size) + " keys, expected " + std::to_string(i) +
                            " (the first extra is " +
                            (extra.type == msgpack::type::STR ? "'" + Text(extra) + "'" : "not a string") + ")");
    }
    return true;
  }

  bool Dictionary(const msgpack::object& o, const std::string& path) {
    if (o.type != msgpack::type::MAP) return Fail(path, std::string("is ") + TypeName(o) + ", expected a map");
    pos_ += 2;
    if (!Expect(':')) return false;
    const size_t value = pos_;
    for (uint32_t i = 0; i < o.via.map.size; ++i) {
      const msgpack::object_kv& kv = o.via.map.ptr[i];
      if (kv.key.type != msgpack::type::STR) return Fail(path, "key " + std::to_string(i) + " is not a string");
      pos_ = value;
      if (!Value(kv.val, path + "." + Text(kv.key))) return false;
    }
    pos_ = End(value);
    return Expect('}');
  }

  bool Array(const msgpack::object& o, const std::string& path) {
    if (o.type != msgpack::type::ARRAY) return Fail(path, std::string("is ") + TypeName(o) + ", expected an array");
    ++pos_;
    const size_t element = pos_;
    for (uint32_t i = 0; i < o.via.array.size; ++i) {
      pos_ = element;
      if (!Value(o.via.array.ptr[i], path + "[" + std::to_string(i) + "]")) return false;
    }
    pos_ = End(element);
    if (!Expect(']')) return false;
    if (At(pos_) == '*') {
      ++pos_;
    } else if (o.via.array.size == 0) {
      return Fail(path, "is empty, expected at least one element");
    }
    return true;
  }

  std::string_view shape_;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace

std::string ShapeMismatch(const msgpack::object& o, std::string_view shape) { return Matcher(shape).Run(o); }

std::string FrameShapeMismatch(const std::string& frame, std::string_view shape) {
  msgpack::object_handle handle;
  size_t off = 0;
  try {
    handle = msgpack::unpack(frame.data(), frame.size(), off);
  } catch (const std::exception& e) {
    return std::string("not one msgpack value (") + e.what() + ")";
  }
  if (off != frame.size()) {
    return std::to_string(frame.size() - off) + " bytes after the reply (a map holds more fields than it counts)";
  }
  return ShapeMismatch(handle.get(), shape);
}

std::string OkShape(std::string_view fields, std::string_view id) {
  std::string s = "{ok:bool,";
  if (!id.empty()) s += "id:" + std::string(id) + ",";
  return s + std::string(fields) + "}";
}

std::string ErrorShape(std::string_view id) { return OkShape("error:{code:str,message:str}", id); }

std::string StatsFields() {
  std::string ops;
  for (const char* op : kStatsOps) {
    if (!ops.empty()) ops += ",";
    ops +=
        std::string(op) + ":{count:int,errors:{*:int},p50_us:int,p90_us:int,p99_us:int,p999_us:int,max_us_bucket:int}";
  }
  return "uptime_s:int,versions:{server:str,model:str,current:str},"
         "store:{backend:str,status:str,compactions:int,compaction_failures:int,last_compaction_error:str},"
         "queue:{depth:int,write_depth:int,capacity:int,busy_workers:int,shed:int,shed_delay:int,queue_deadline:int},"
         "experiments:[str]*,"
         "reloads:{ok:int,"
         "failed:int,last_error:str,recent:[{ts_ms:int,asked:str,by:str,served:str,error:str}]*},"
         "ops:{" +
         ops +
         "},"
         "totals:{requests:int,errors:{bad_request:int,unknown_op:int,not_found:int,overloaded:int,"
         "deadline_exceeded:int,unavailable:int,conflict:int,forbidden:int,internal:int}}";
}

}  // namespace qm::server::testing
