#include "api/service/distributed.h"

#include <spdlog/spdlog.h>

#include "api/rest/pagination.h"
#include "topology/core/time.h"

namespace attune::service {

using detail::data;
using detail::error;

void register_worker_routes(RouteTable& t, const monitor::WorkersView& workers) {
  t.add("GET", "/api/v1/workers", Access::to("workers", "read"), [&workers](Call& c) {
    if (!c.can().may("read", authz::Object{"workers", ""})) {
      return error(Errc::kForbidden, "Permission denied: needs workers:read");
    }
    auto page = rest::parse_page_request(c.req);
    if (!page.ok()) return rest::HttpResponse::error(page.error());
    const auto status = c.req.query_param("status");
    const auto role = c.req.query_param("worker_role");
    std::vector<Json> rows;
    for (auto& w : workers.list()) {
      if (status && !status->empty() && w.value("status", "") != *status) continue;
      if (role && !role->empty() && w.value("worker_role", "") != *role) continue;
      rows.push_back(std::move(w));
    }
    if (page->order == rest::SortOrder::kAsc) std::reverse(rows.begin(), rows.end());
    Json items = Json::array();
    const auto total = static_cast<int64_t>(rows.size());
    for (int64_t i = page->offset; i < total && i < page->offset + page->page_size; ++i) {
      items.push_back(std::move(rows[static_cast<size_t>(i)]));
    }
    return rest::HttpResponse::json(200, rest::list_envelope(std::move(items), *page, total));
  });
  t.add("GET", "/api/v1/workers/{id}", Access::to("workers", "read"), [&workers](Call& c) {
    if (!c.can().may("read", authz::Object{"workers", ""})) {
      return error(Errc::kForbidden, "Permission denied: needs workers:read");
    }
    const std::string& id = c.req.params["id"];
    const std::string missing = "Worker " + id + " not found";
    if (!detail::all_digits(id)) return error(Errc::kNotFound, missing);
    auto w = workers.get(std::stoll(id));
    if (!w) return error(Errc::kNotFound, missing);
    return data(200, *w);
  });
}

std::string webhook_reason_code(int status, const std::string& message) {
  switch (status) {
    case 404:
      return "unknown_webhook_key";
    case 403:
      return "ip_not_allowed";
    case 429:
      return "rate_limited";
    case 401:
      return "hmac_invalid";
    case 413:
      return "payload_too_large";
    default:
      break;
  }
  if (message.rfind("Webhooks are not enabled", 0) == 0) return "webhooks_disabled";
  if (message.rfind("Payload too large", 0) == 0) return "payload_too_large";
  if (message.find("is disabled") != std::string::npos) return "trigger_disabled";
  return status == 422 ? "validation_error" : "invalid_json";
}

std::string event_reason_code(int status, const std::string& message) {
  switch (status) {
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 413:
      return "payload_too_large";
    case 422:
      return "validation_error";
    case 429:
      return "rate_limited";
    default:
      break;
  }
  if (message.find("is disabled") != std::string::npos) return "trigger_disabled";
  return "invalid_json";
}

namespace {

bool valid_utf8(std::string_view s) {
  try {
    (void)Json(std::string(s)).dump();
    return true;
  } catch (const Json::exception&) {
    return false;
  }
}

std::string base64(std::string_view in) {
  static const char* kTable = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kTable[(n >> 18) & 63];
    out += kTable[(n >> 12) & 63];
    out += kTable[(n >> 6) & 63];
    out += kTable[n & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t n = uint8_t(in[i]) << 16;
    out += kTable[(n >> 18) & 63];
    out += kTable[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kTable[(n >> 18) & 63];
    out += kTable[(n >> 12) & 63];
    out += kTable[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

class IngressProcessor final : public Processor {
 public:
  IngressProcessor(const rest::Router& router, Metrics& metrics, size_t max_body)
      : router_(router), metrics_(metrics), max_body_(max_body) {}

  void process(const Record& r, ProcessorContext& ctx) override {
    const bool webhook = r.topic == topics::kWebhooks;
    rest::HttpRequest req;
    req.method = "POST";
    req.headers = r.headers;
    req.body = r.value;
    // A record processed again (a crash or rebalance between the event write and the offset
    // commit) recreates the same event id, which the projections and the rules stage ignore.
    req.derived_id = ingress_event_id(webhook ? IngressSource::kWebhooks : IngressSource::kEvents,
                                      r.partition, r.offset);
    if (!req.derived_id) {
      spdlog::warn(
          "kafka ingress {}[{}]@{}: position outside the derivable range (partition < {}, offset "
          "< 2^40); the event gets a minted id, so a replay of this record could repeat it",
          r.topic, r.partition, r.offset, kMaxIngressPartitions);
    }
    if (webhook) {
      req.path = "/api/v1/webhooks/" + r.key;
    } else {
      req.path = "/api/v1/events";
      // `api_token` in the body stands for the Authorization header; it is never stored.
      Json body = Json::parse(r.value, nullptr, false);
      if (body.is_object() && body.contains("api_token")) {
        if (body["api_token"].is_string()) {
          req.headers.emplace_back("Authorization", "Bearer " + body["api_token"].get<std::string>());
        }
        body.erase("api_token");
        req.body = body.dump();
      }
      for (auto& [k, v] : req.headers) {
        if (k == "authorization") k = "Authorization";
      }
    }
    rest::HttpResponse resp;
    if (r.value.size() > max_body_) {
      resp = rest::HttpResponse::error(
          413, "PAYLOAD_TOO_LARGE",
          "Payload too large: " + std::to_string(r.value.size()) + " bytes exceeds limit of " +
              std::to_string(max_body_) + " bytes");
      if (webhook) metrics_.webhook_request("payload_too_large");
    } else {
      resp = router_.dispatch(req).resolve();
    }
    if (resp.status >= 200 && resp.status < 300) {
      metrics_.kafka_ingress(r.topic, "accepted");
      return;
    }
    Json body = Json::parse(resp.body, nullptr, false);
    const std::string reason =
        body.is_object() ? body.value("error", resp.body) : resp.body;
    const std::string code = webhook ? webhook_reason_code(resp.status, reason)
                                     : event_reason_code(resp.status, reason);
    metrics_.kafka_ingress(r.topic, code);
    spdlog::warn("kafka ingress {}[{}]@{}: refused ({}): {}", r.topic, r.partition, r.offset,
                 code, reason);
    Json v = {{"reason_code", code},       {"reason", reason},       {"http_status", resp.status},
              {"source_topic", r.topic},   {"partition", r.partition}, {"offset", r.offset},
              {"key", r.key},              {"received_at", format_rfc3339_ms(ctx.clock().now_ms())}};
    std::string original = r.value;
    if (!webhook) {
      // Never keep a token: drop api_token from what is dead-lettered.
      Json parsed = Json::parse(original, nullptr, false);
      if (parsed.is_object() && parsed.contains("api_token")) {
        parsed.erase("api_token");
        original = parsed.dump();
      }
    }
    if (valid_utf8(original)) {
      v["original_value"] = original;
    } else {
      v["original_value"] = base64(original);
      v["original_value_encoding"] = "base64";
    }
    OutRecord out{std::string(topics::kDeadletter), r.key, v.dump()};
    for (const auto& [k, val] : r.headers) {
      std::string lower = k;
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      if (lower == "authorization") continue;  // no secrets in the dead letter topic
      out.headers.emplace_back(k, val);
    }
    ctx.forward(std::move(out));
  }

 private:
  const rest::Router& router_;
  Metrics& metrics_;
  const size_t max_body_;
};

}  // namespace

std::unique_ptr<Processor> make_ingress_processor(const rest::Router& router, Metrics& metrics,
                                                  size_t max_body_bytes) {
  return std::make_unique<IngressProcessor>(router, metrics, max_body_bytes);
}

void add_ingress_stage(Topology& topology, const rest::Router& router, Metrics& metrics,
                       size_t max_body_bytes) {
  topology.add({std::string(kIngressStage),
                {std::string(topics::kWebhooks), std::string(topics::kEventsIngress)},
                {},
                1,
                64,
                [&router, &metrics, max_body_bytes](int) {
                  return make_ingress_processor(router, metrics, max_body_bytes);
                }});
}

}  // namespace attune::service
