// libFuzzer target for the request decoder (SPEC §5: "nothing a client sends may crash the
// server"): every input goes through DecodeRequest under the server's limits, and a decoded
// request's whole tree through the typed field readers the ops use, on every key of every map.
// Build and run: scripts/fuzz.sh [SECONDS] (clang, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "codec.h"

namespace {

using qm::server::Fields;

void Walk(const msgpack::object& obj, const std::string& path, int depth) {
  if (depth > 32) return;
  std::string text;
  (void)qm::server::CellText(obj, path, &text);
  if (obj.type == msgpack::type::ARRAY) {
    for (uint32_t i = 0; i < obj.via.array.size; ++i) {
      Walk(obj.via.array.ptr[i], path + "[" + std::to_string(i) + "]", depth + 1);
    }
    return;
  }
  if (obj.type != msgpack::type::MAP) return;
  auto fields = Fields::Of(obj, path);
  if (!fields.ok()) return;
  for (uint32_t i = 0; i < obj.via.map.size; ++i) {
    const msgpack::object& key = obj.via.map.ptr[i].key;
    if (key.type != msgpack::type::STR) continue;
    const std::string k(key.via.str.ptr, key.via.str.size);
    std::string s;
    int64_t n = 0;
    bool b = false;
    std::vector<std::string> list;
    std::map<std::string, std::string> m;
    const msgpack::object* begin = nullptr;
    size_t size = 0;
    (void)fields->Str(k.c_str(), &s, true);
    (void)fields->Int(k.c_str(), &n, true, -1000000, 1000000);
    (void)fields->Bool(k.c_str(), &b);
    (void)fields->StrList(k.c_str(), &list, true);
    (void)fields->StrMap(k.c_str(), &m);
    (void)fields->Array(k.c_str(), &begin, &size);
    Walk(obj.via.map.ptr[i].val, fields->Name(k.c_str()), depth + 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qm::server::DecodeLimits limits;  // the server's defaults
  qm::server::Decoded d;
  if (!qm::server::DecodeRequest(data, size, limits, &d).ok()) return 0;
  Walk(d.root(), "", 0);
  return 0;
}
