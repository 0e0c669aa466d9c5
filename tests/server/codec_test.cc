// The writing half of the codec without a server: MapWriter's maps are byte for byte what a
// hand-counted msgpack pack_map writes, at every header size; each op's encoder writes the keys
// and types of the wire protocol, with lists empty, short and longer than a fixmap; and the shape
// check used by the server tests catches the faults it is there for (a miscounted map, a missing,
// extra or moved key).
#include <gtest/gtest.h>

#include <string>

#include "codec.h"
#include "reply_codec.h"
#include "reply_shape.h"

namespace qm::server {
namespace {

using testing::FrameShapeMismatch;

std::string Bytes(const msgpack::sbuffer& b) { return std::string(b.data(), b.size()); }

// n fields "k0".."k<n-1>" with values 0..n-1, written by MapWriter inside an array [map, "end"],
// and the same by hand with pack_map(n).
void ExpectSameBytesAsAHandCountedMap(uint32_t n) {
  msgpack::sbuffer written, counted;
  msgpack::packer<msgpack::sbuffer> pw(written), pc(counted);
  pw.pack_array(2);
  MapWriter::Write(&written, [&](MapWriter& map) {
    for (uint32_t i = 0; i < n; ++i) map.Int("k" + std::to_string(i), i);
  });
  pw.pack(std::string("end"));
  pc.pack_array(2);
  pc.pack_map(n);
  for (uint32_t i = 0; i < n; ++i) {
    pc.pack(std::string("k" + std::to_string(i)));
    pc.pack_int64(i);
  }
  pc.pack(std::string("end"));
  EXPECT_EQ(Bytes(written), Bytes(counted)) << n << " fields";
}

TEST(MapWriter, WritesTheBytesOfAHandCountedMapAtEveryHeaderSize) {
  // fixmap up to 15 fields, map 16 from 16 to 65535, map 32 past that.
  for (uint32_t n : {0u, 1u, 2u, 15u, 16u, 17u, 65535u, 65536u, 70000u}) ExpectSameBytesAsAHandCountedMap(n);
}

TEST(MapWriter, WritesEachValueAsThePackerDoes) {
  msgpack::sbuffer written, counted;
  const msgpack::object id(int64_t{-7});
  MapWriter::Write(&written, [&](MapWriter& map) {
    map.Str("s", "text");
    map.Int("i", -300);
    map.Double("d", 0.25);
    map.Double("whole", 2.0);
    map.Bool("b", true);
    map.Object("id", id);
    map.StrList("l", {"a", "bc"});
    map.IntMap("m", {{"x", 1}, {"y", 70000}});
  });
  msgpack::packer<msgpack::sbuffer> pc(counted);
  auto key = [&](const char* k) -> msgpack::packer<msgpack::sbuffer>& { return pc.pack(std::string(k)); };
  pc.pack_map(8);
  key("s").pack(std::string("text"));
  key("i").pack_int64(-300);
  key("d").pack_double(0.25);
  key("whole").pack_double(2.0);
  key("b").pack_true();
  key("id").pack(id);
  key("l").pack(std::vector<std::string>{"a", "bc"});
  key("m").pack_map(2);
  key("x").pack_int64(1);
  key("y").pack_int64(70000);
  EXPECT_EQ(Bytes(written), Bytes(counted));
}

TEST(MapWriter, CountsNestedMapsAndArraysOfMapsFromWhatWasWritten) {
  const std::vector<int> rows = {3, 0, 17};  // fields per row: an empty map and a map 16 among them
  msgpack::sbuffer b;
  MapWriter::Write(&b, [&](MapWriter& map) {
    map.Str("name", "outer");
    map.MapArray("rows", rows, [](MapWriter& row, int fields) {
      for (int i = 0; i < fields; ++i) row.Int("f" + std::to_string(i), i);
    });
    map.Map("inner", [](MapWriter& inner) { inner.Bool("yes", true); });
  });
  size_t off = 0;
  msgpack::object_handle h = msgpack::unpack(b.data(), b.size(), off);
  EXPECT_EQ(off, b.size());
  EXPECT_EQ(testing::ShapeMismatch(h.get(), "{name:str,rows:[{*:int}],inner:{yes:bool}}"), "");
  const msgpack::object& written = h.get().via.map.ptr[1].val;
  ASSERT_EQ(written.via.array.size, rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    std::string shape;
    for (int i = 0; i < rows[r]; ++i) shape += (i ? ",f" : "f") + std::to_string(i) + ":int";
    EXPECT_EQ(testing::ShapeMismatch(written.via.array.ptr[r], "{" + shape + "}"), "") << "row " << r;
  }
}

TEST(PackError, WritesOkIdAndTheErrorCodeAndMessage) {
  msgpack::sbuffer with_id, without_id;
  PackError(&with_id, msgpack::object(int64_t{12}), "not_found", "no such thing");
  PackError(&without_id, std::nullopt, "bad_request", "'count': missing");
  EXPECT_EQ(FrameShapeMismatch(Bytes(with_id), testing::ErrorShape("int")), "");
  EXPECT_EQ(FrameShapeMismatch(Bytes(without_id), testing::ErrorShape()), "");
  msgpack::object_handle h = msgpack::unpack(with_id.data(), with_id.size());
  std::map<std::string, msgpack::object> reply;
  h.get().convert(reply);
  EXPECT_FALSE(reply["ok"].as<bool>());
  EXPECT_EQ(reply["id"].as<int64_t>(), 12);
  auto error = reply["error"].as<std::map<std::string, std::string>>();
  EXPECT_EQ(error["code"], "not_found");
  EXPECT_EQ(error["message"], "no such thing");
}

TEST(ErrorCodes, MapEachStatusToItsWireCode) {
  EXPECT_STREQ(ErrorCodeOf(Status::InvalidArgument("x")), "bad_request");
  EXPECT_STREQ(ErrorCodeOf(Status::NotFound("x")), "not_found");
  EXPECT_STREQ(ErrorCodeOf(Status::Unavailable("x")), "unavailable");
  EXPECT_STREQ(ErrorCodeOf(Status::DeadlineExceeded("x")), "deadline_exceeded");
  EXPECT_STREQ(ErrorCodeOf(Status::Internal("x")), "internal");
  EXPECT_EQ(ErrorCodeIndex("bad_request"), 0u);
  EXPECT_EQ(ErrorCodeIndex("internal"), kNumErrorCodes - 1);
  EXPECT_EQ(ErrorCodeIndex("no_such_code"), kNumErrorCodes - 1);
}

// A whole success reply, {ok, id: 5, <fields encode writes>}, decoded.
template <class Encode>
std::string OkReply(Encode&& encode) {
  msgpack::sbuffer b;
  MapWriter::Write(&b, [&](MapWriter& reply) {
    WriteReplyHead(true, msgpack::object(int64_t{5}), &reply);
    encode(&reply);
  });
  return Bytes(b);
}

// The value under `key` of the decoded map `reply` (nil when absent).
msgpack::object Get(const msgpack::object& map, const std::string& key) {
  for (uint32_t i = 0; i < map.via.map.size; ++i) {
    if (map.via.map.ptr[i].key.as<std::string>() == key) return map.via.map.ptr[i].val;
  }
  return msgpack::object();
}

serving::Response SomeResponse(int items, int debug_counts) {
  serving::Response r;
  r.request_id = "rq-1";
  r.model_version = "v1";
  r.took_us = 1234;
  for (int i = 0; i < items; ++i) r.items.push_back({"I" + std::to_string(i), "content", 0.5 + i, {"recall:ann"}});
  for (int i = 0; i < debug_counts; ++i) r.debug.counts["stage." + std::to_string(i)] = i;
  r.debug.dropped["excluded"] = 2;
  r.debug.stage_us["recall"] = 40;
  r.debug.fallbacks = {"popular"};
  return r;
}

TEST(ReplyCodec, EncodesRecommendWithAndWithoutDebug) {
  EXPECT_EQ(FrameShapeMismatch(OkReply([](MapWriter* m) { EncodeRecommend(SomeResponse(3, 0), false, m); }),
                               testing::OkShape(testing::kRecommendFields, "int")),
            "");
  // 20 debug counts: a map past the fixmap's 15 fields inside the reply.
  const std::string debug = OkReply([](MapWriter* m) { EncodeRecommend(SomeResponse(2, 20), true, m); });
  EXPECT_EQ(FrameShapeMismatch(debug, testing::OkShape(testing::kRecommendDebugFields, "int")), "");
  msgpack::object_handle h = msgpack::unpack(debug.data(), debug.size());
  const msgpack::object counts = Get(Get(h.get(), "debug"), "counts");
  EXPECT_EQ(counts.via.map.size, 20u);
  EXPECT_EQ(Get(counts, "stage.19").as<int64_t>(), 19);
  EXPECT_EQ(Get(h.get(), "took_us").as<int64_t>(), 1234);
  // No items: an empty list, not a missing key.
  const std::string empty = OkReply([](MapWriter* m) { EncodeRecommend(SomeResponse(0, 0), false, m); });
  EXPECT_EQ(FrameShapeMismatch(empty, "{ok:bool,id:int,request_id:str,model_version:str,items:[str]*,took_us:int}"),
            "");
}

TEST(ReplyCodec, NamesTheCustomersExperimentArmsInDebugOnlyWithExperiments) {
  serving::Response r = SomeResponse(1, 0);
  r.debug.arms = {"home=convert", "push=two"};
  const std::string debug = OkReply([&](MapWriter* m) { EncodeRecommend(r, true, m); });
  msgpack::object_handle h = msgpack::unpack(debug.data(), debug.size());
  const msgpack::object arms = Get(Get(h.get(), "debug"), "arms");
  ASSERT_EQ(arms.type, msgpack::type::ARRAY);
  ASSERT_EQ(arms.via.array.size, 2u);
  EXPECT_EQ(arms.via.array.ptr[1].as<std::string>(), "push=two");
  const std::string plain = OkReply([](MapWriter* m) { EncodeRecommend(SomeResponse(1, 0), true, m); });
  msgpack::object_handle p = msgpack::unpack(plain.data(), plain.size());
  EXPECT_EQ(Get(Get(p.get(), "debug"), "arms").type, msgpack::type::NIL);
}

TEST(ReplyCodec, EncodesFeedbackScoresCountsHistoryReloadAndHealth) {
  serving::FeedbackResult fb;
  fb.accepted = 3;
  fb.rejected = {{1, "not_found", "events[1]: no item"}, {4, "bad_request", "'events[4].ts_ms': missing"}};
  EXPECT_EQ(FrameShapeMismatch(OkReply([&](MapWriter* m) { EncodeFeedback(fb, m); }),
                               testing::OkShape(testing::kFeedbackFields, "int")),
            "");
  // A whole-valued probability is written as an integer, as msgpack-c's pack_double does.
  std::vector<serving::ItemScore> scores = {{"A", 0.25f, 0.5f, true, {}}, {"B", 0, 0, false, {"not_found"}}};
  EXPECT_EQ(FrameShapeMismatch(OkReply([&](MapWriter* m) { EncodeScores(scores, m); }),
                               testing::OkShape(testing::kScoreFields, "int")),
            "");
  EXPECT_EQ(FrameShapeMismatch(OkReply([](MapWriter* m) { EncodeCount(7, m); }),
                               testing::OkShape(testing::kCountFields, "int")),
            "");
  policy::CustomerHistory h;
  h.events.push_back({});
  h.events[0].ts = 1700000000000;
  h.events[0].item_id = "A";
  h.events[0].type = EventType::kClick;
  h.events[0].channel = "app_home";
  h.caps.push_back({"daily", "app_home", 1, 3, 86400000});
  const std::string history = OkReply([&](MapWriter* m) { EncodeHistory(h, m); });
  EXPECT_EQ(FrameShapeMismatch(history, testing::OkShape(testing::kHistoryFields, "int")), "");
  msgpack::object_handle decoded = msgpack::unpack(history.data(), history.size());
  const msgpack::object event = Get(decoded.get(), "events").via.array.ptr[0];
  EXPECT_EQ(Get(event, "type").as<std::string>(), "click");
  EXPECT_EQ(Get(event, "ts_ms").as<int64_t>(), 1700000000000);
  EXPECT_EQ(FrameShapeMismatch(OkReply([](MapWriter* m) { EncodeReload("v2", m); }),
                               testing::OkShape(testing::kReloadFields, "int")),
            "");
  const std::string health = OkReply([](MapWriter* m) { EncodeHealth(true, "v2", m); });
  EXPECT_EQ(FrameShapeMismatch(health, testing::OkShape(testing::kHealthFields, "int")), "");
  EXPECT_EQ(Get(msgpack::unpack(health.data(), health.size()).get(), "status").as<std::string>(), "draining");
}

TEST(ReplyCodec, HistoryCarriesTheDecisionsBesideTheEvents) {
  policy::CustomerHistory h;
  policy::DecisionRecord d;
  d.ts = 1700000000123;
  d.request_id = "r1";
  d.customer_id = "alice";
  d.channel = "app_home";
  d.item_id = "P3";
  d.position = 2;
  d.score = 0.75;
  d.p_click = 0.25f;
  d.p_convert = 0.5f;
  d.model_version = "v2";
  d.arms = {"home=b"};
  d.reasons = {"recall:ann", "experiment:home=b"};
  d.kind = policy::DecisionKind::kGhost;
  h.decisions.push_back(d);
  const std::string history = OkReply([&](MapWriter* m) { EncodeHistory(h, m); });
  // Events and caps are empty here; the decisions list is not, so its element shape is checked.
  const std::string shape =
      "events:[{ts_ms:int,item_id:str,type:str,channel:str,request_id:str}]*,"
      "decisions:[{ts_ms:int,kind:str,request_id:str,channel:str,item_id:str,position:int,score:num,p_click:num,"
      "p_convert:num,model_version:str,arms:[str],reasons:[str]}],"
      "caps:[{rule:str,scope:str,used:int,limit:int,window_ms:int}]*";
  EXPECT_EQ(FrameShapeMismatch(history, testing::OkShape(shape, "int")), "");
  msgpack::object_handle decoded = msgpack::unpack(history.data(), history.size());
  const msgpack::object dec = Get(decoded.get(), "decisions").via.array.ptr[0];
  EXPECT_EQ(Get(dec, "kind").as<std::string>(), "ghost");
  EXPECT_EQ(Get(dec, "model_version").as<std::string>(), "v2");
  EXPECT_EQ(Get(dec, "position").as<int64_t>(), 2);
  EXPECT_EQ(Get(dec, "ts_ms").as<int64_t>(), 1700000000123);
  EXPECT_DOUBLE_EQ(Get(dec, "p_convert").as<double>(), 0.5);
  EXPECT_EQ(Get(dec, "arms").via.array.ptr[0].as<std::string>(), "home=b");
  EXPECT_EQ(Get(dec, "reasons").via.array.size, 2u);
}

TEST(ReplyCodec, EncodesTheReportWithEveryArmsMetricsAndTheLiftOfTheTreatedArms) {
  experiment::LayerConfig layer;
  layer.name = "push_cap";
  layer.arms.resize(2);
  layer.arms[0].name = "control";
  layer.arms[0].share = 0.5;
  layer.arms[0].control_all = true;
  layer.arms[1].name = "cap4";
  layer.arms[1].share = 0.5;
  std::vector<experiment::CustomerOutcome> cs(6);
  for (int i = 0; i < 6; ++i) {
    cs[i].arm = i % 2;
    cs[i].in_window[experiment::kClicks] = i % 3;
  }
  experiment::ExperimentReport r = experiment::BuildReport(layer, cs, false);
  r.from = 1000;
  r.to = 2000;
  const std::string reply = OkReply([&](MapWriter* m) { EncodeReport(r, m); });
  const std::string metric =
      "{total:num,per_customer:num,low:num,high:num,"
      "lift:{difference:num,low:num,high:num,relative:num,p_value:num,cuped:bool}}";
  auto metrics = [](const std::string& m) {
    return "metrics:{contacts:" + m + ",clicks:" + m + ",conversions:" + m + ",value:" + m + ",dismissals:" + m +
           ",opens:" + m + ",ghosts:" + m + ",opt_outs:" + m + "}";
  };
  const std::string arm = "{arm:str,share:num,control:bool,assigned:int,contacted:int,ghosted:int,";
  EXPECT_EQ(FrameShapeMismatch(reply, testing::OkShape("experiment:str,from_ms:int,to_ms:int,cuped:bool,"
                                                       "holdout_customers:int,"
                                                       "sample_ratio:{chi_square:num,p_value:num,mismatch:bool},"
                                                       "arms:[" +
                                                           arm + metrics(metric) + "}]",
                                                       "int")),
            "");
}

TEST(ReplyCodec, EncodesStatsWithEachOpsErrorsAndTheTotals) {
  StatsReply s;
  s.server_version = "0.1.0";
  int64_t n = 0;
  for (const char* op : testing::kStatsOps) {
    OpStatsReply& o = s.ops.emplace_back();
    o.name = op;
    o.count = ++n;
  }
  s.ops[0].errors[ErrorCodeIndex("bad_request")] = 2;
  s.ops.back().errors[ErrorCodeIndex("unknown_op")] = 1;
  s.ops[2].errors[ErrorCodeIndex("bad_request")] = 1;
  const std::string stats = OkReply([&](MapWriter* m) { EncodeStats(s, m); });
  EXPECT_EQ(FrameShapeMismatch(stats, testing::OkShape(testing::StatsFields(), "int")), "");
  msgpack::object_handle h = msgpack::unpack(stats.data(), stats.size());
  // An op lists the codes it has had; the totals list every code.
  const msgpack::object ops = Get(h.get(), "ops");
  EXPECT_EQ(Get(Get(ops, "recommend"), "errors").via.map.size, 1u);
  EXPECT_EQ(Get(Get(ops, "feedback"), "errors").via.map.size, 0u);
  const msgpack::object totals = Get(h.get(), "totals");
  const int64_t n_ops = static_cast<int64_t>(std::size(testing::kStatsOps));
  EXPECT_EQ(Get(totals, "requests").as<int64_t>(), n_ops * (n_ops + 1) / 2);  // 1 + 2 + ... + n_ops
  EXPECT_EQ(Get(Get(totals, "errors"), "bad_request").as<int64_t>(), 3);
  EXPECT_EQ(Get(Get(totals, "errors"), "unknown_op").as<int64_t>(), 1);
  EXPECT_EQ(Get(Get(totals, "errors"), "internal").as<int64_t>(), 0);
}

// The shape check of reply_shape.h, on hand-made frames: each fault it exists for is caught.
TEST(ReplyShape, CatchesAMiscountedMapAndAMissingExtraMovedOrMistypedKey) {
  // A short string as msgpack writes it (fixstr).
  auto str = [](const std::string& s) { return std::string(1, static_cast<char>(0xa0 | s.size())) + s; };
  // {a: 1, b: "x"} by hand, with the map's count right, one too high and one too low.
  const std::string fields = str("a") + "\x01" + str("b") + str("x");
  EXPECT_EQ(FrameShapeMismatch("\x82" + fields, "{a:int,b:str}"), "");
  EXPECT_NE(FrameShapeMismatch("\x83" + fields, "{a:int,b:str}"), "");  // reads past the end
  EXPECT_NE(FrameShapeMismatch("\x81" + fields, "{a:int,b:str}"), "");  // bytes left over
  EXPECT_NE(FrameShapeMismatch("\x82" + fields, "{a:int,b:str,c:int}"), "");
  EXPECT_NE(FrameShapeMismatch("\x82" + fields, "{a:int}"), "");
  EXPECT_NE(FrameShapeMismatch("\x82" + fields, "{b:str,a:int}"), "");
  EXPECT_NE(FrameShapeMismatch("\x82" + fields, "{a:str,b:str}"), "");
  // Arrays: [S] needs an element, [S]* does not; every element is checked.
  const std::string empty_array = "\x81" + str("l") + "\x90", mixed = "\x81" + str("l") + "\x92\x01" + str("x");
  EXPECT_NE(FrameShapeMismatch(empty_array, "{l:[int]}"), "");
  EXPECT_EQ(FrameShapeMismatch(empty_array, "{l:[int]*}"), "");
  EXPECT_EQ(FrameShapeMismatch(mixed, "{l:[int]*}"), "reply.l[1]: is str, expected int");
  // Dictionaries: any string keys, every value checked.
  EXPECT_EQ(FrameShapeMismatch("\x82" + str("p") + "\x01" + str("q") + "\x02", "{*:int}"), "");
  EXPECT_NE(FrameShapeMismatch("\x82" + str("p") + "\x01" + str("q") + "\xc3", "{*:int}"), "");
  // Numbers: a float64 or a whole value as an integer; not a string.
  EXPECT_EQ(FrameShapeMismatch("\x81" + str("n") + "\x02", "{n:num}"), "");
  EXPECT_NE(FrameShapeMismatch("\x81" + str("n") + str("2"), "{n:num}"), "");
}

}  // namespace
}  // namespace qm::server
