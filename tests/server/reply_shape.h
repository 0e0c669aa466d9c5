// Test support: checks a reply frame against the shape SPEC §5 gives it, decoded with msgpack
// (not through a JSON library, which would hide a miscounted map's stray or missing fields).
//
// A shape is a small pattern:
//   str int num bool       a scalar: a string, an integer, a number, a bool; a number is a float64
//                          or, for a whole value, an integer (msgpack-c's pack_double writes 2.0 as 2)
//   {a:S,b:T}              a map with exactly the keys a, b, in this order, their values of shape S, T
//   {*:S}                  a map of string keys (any number, none included), each value of shape S
//   [S]                    an array of one or more elements, each of shape S
//   [S]*                   the same, possibly empty
#pragma once

#include <msgpack.hpp>
#include <string>
#include <string_view>

namespace qm::server::testing {

// "" when `o` has `shape`; otherwise the path of the first difference and what differs
// (e.g. "items[0]: key 3 is 'score', expected 'reasons'").
std::string ShapeMismatch(const msgpack::object& o, std::string_view shape);

// As above for a whole frame: it must hold exactly one msgpack value, with nothing after it.
std::string FrameShapeMismatch(const std::string& frame, std::string_view shape);

// The shape of a success reply: `{ok:bool,id:<id>,<fields>}` (no id when id is ""); `fields`
// is a comma-separated list of the op's own fields, e.g. "count:int".
std::string OkShape(std::string_view fields, std::string_view id = "");
// The shape of an error reply: `{ok:bool,id:<id>,error:{code:str,message:str}}`.
std::string ErrorShape(std::string_view id = "");

// The fields of each op's success reply (after `ok` and `id`), as the wire has them. The lists a
// test fills (items, scores, events, caps, rejected) are written `[S]`, so their elements are checked.
inline constexpr const char* kHealthFields = "status:str,model_version:str";
inline constexpr const char* kRecommendFields =
    "request_id:str,model_version:str,items:[{item_id:str,kind:str,score:num,reasons:[str]*}],took_us:int";
inline constexpr const char* kRecommendDebugFields =
    "request_id:str,model_version:str,items:[{item_id:str,kind:str,score:num,reasons:[str]*}],took_us:int,"
    "debug:{counts:{*:int},dropped:{*:int},fallbacks:[str]*,stage_us:{*:int},known_customer:bool}";
inline constexpr const char* kFeedbackFields = "accepted:int,rejected:[{index:int,code:str,message:str}]";
inline constexpr const char* kScoreFields =
    "scores:[{item_id:str,p_click:num,p_convert:num,eligible:bool,blocked_by:[str]*}]";
inline constexpr const char* kCountFields = "count:int";  // items.upsert, items.retire, customers.upsert
inline constexpr const char* kHistoryFields =
    "events:[{ts_ms:int,item_id:str,type:str,channel:str,request_id:str}],"
    "decisions:[{ts_ms:int,kind:str,request_id:str,channel:str,item_id:str,position:int,score:num,p_click:num,"
    "p_convert:num,model_version:str,arms:[str]*,reasons:[str]*}]*,"
    "caps:[{rule:str,scope:str,used:int,limit:int,window_ms:int}]";
inline constexpr const char* kReloadFields = "model_version:str";
// Every op the server has, in the order `stats` lists them, then "other" (unknown ops).
inline constexpr const char* kStatsOps[] = {"recommend",
                                            "feedback",
                                            "score",
                                            "items.upsert",
                                            "items.retire",
                                            "customers.upsert",
                                            "history",
                                            "report",
                                            "reload",
                                            "stats",
                                            "health",
                                            "campaigns.create",
                                            "campaigns.update",
                                            "campaigns.transition",
                                            "campaigns.get",
                                            "campaigns.list",
                                            "campaigns.audit",
                                            "campaigns.dryrun",
                                            "pressure",
                                            "events.ingest",
                                            "profile",
                                            "segments.save",
                                            "segments.get",
                                            "segments.list",
                                            "other"};
// `stats`: the op counters are listed in the order of `ops` (every op of SPEC §5, then "other").
std::string StatsFields();

}  // namespace qm::server::testing
