// The server's logs (issue 19; server.h ConfigureLogging): on stderr, as text or as JSON lines,
// at a configured level; and the access log, one line per reply with its op, code, request id,
// version and latency (never a customer id or attribute).
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>

#include "qianmian/core/time.h"
#include "qianmian/server/server.h"

namespace qm::server {

namespace {

using json = nlohmann::json;

// One JSON object a line: ts (ISO-8601 UTC, ms), level, logger, and msg, or for the access
// logger the fields of its message (itself a JSON object).
class JsonLinesSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count();
    const std::string payload(msg.payload.data(), msg.payload.size());
    json j = {{"ts", FormatIsoUtc(static_cast<TimeMs>(ms))},
              {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                                    spdlog::level::to_string_view(msg.level).size())},
              {"logger", std::string(msg.logger_name.data(), msg.logger_name.size())}};
    json fields = msg.logger_name == "access" ? json::parse(payload, nullptr, false) : json();
    if (fields.is_object()) {
      j.update(fields);
    } else {
      j["msg"] = payload;
    }
    const std::string line = j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }
};

}  // namespace

Status ConfigureLogging(const ServerConfig& config) {
  const spdlog::level::level_enum level = spdlog::level::from_str(config.log_level);
  if (level == spdlog::level::off && config.log_level != "off") {
    return Status::InvalidArgument("'server.log_level': '" + config.log_level +
                                   "' is not trace, debug, info, warn, error, critical or off");
  }
  spdlog::sink_ptr sink;
  if (config.log_format == "json") {
    sink = std::make_shared<JsonLinesSink>();
  } else if (config.log_format == "text") {
    sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  } else {
    return Status::InvalidArgument("'server.log_format': '" + config.log_format + "' is not text or json");
  }
  auto main = std::make_shared<spdlog::logger>("qianmian", sink);
  main->set_level(level);
  main->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(main);
  spdlog::drop("access");
  if (config.access_log) {
    auto access = std::make_shared<spdlog::logger>("access", sink);
    access->set_level(level);
    spdlog::register_logger(access);
  }
  return Status::Ok();
}

void LogAccess(const std::string& op, const char* code, const std::string& request_id, const std::string& version,
               int64_t us, bool json_format) {
  auto access = spdlog::get("access");
  if (!access) return;
  if (json_format) {
    access->info(json{
        {"msg", "request"},
        {"op", op},
        {"code", code ? code : "ok"},
        {"request_id", request_id},
        {"version", version},
        {"us", us}}.dump(-1, ' ', false, json::error_handler_t::replace));
  } else {
    access->info("request op={} code={} request_id={} version={} us={}", op, code ? code : "ok", request_id, version,
                 us);
  }
}

}  // namespace qm::server
