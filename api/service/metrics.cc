#include "api/service/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>

namespace attune::service {

struct Metrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& http = prometheus::BuildCounter()
                                                      .Name("attune_http_requests_total")
                                                      .Help("HTTP requests by method and status")
                                                      .Register(*registry);
  prometheus::Family<prometheus::Counter>& executions =
      prometheus::BuildCounter()
          .Name("attune_executions_total")
          .Help("Executions that reached a terminal status")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& webhooks = prometheus::BuildCounter()
                                                          .Name("attune_webhook_requests_total")
                                                          .Help("Webhook requests by outcome")
                                                          .Register(*registry);
  prometheus::Family<prometheus::Counter>& dead = prometheus::BuildCounter()
                                                      .Name("attune_deadletter_records_total")
                                                      .Help("Records sent to attune.deadletter")
                                                      .Register(*registry);
  prometheus::Family<prometheus::Counter>& rule_errors =
      prometheus::BuildCounter()
          .Name("attune_rule_evaluation_errors_total")
          .Help("Rule conditions or templates that failed to evaluate (no match)")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& ingress =
      prometheus::BuildCounter()
          .Name("attune_kafka_ingress_records_total")
          .Help("Kafka ingress records by topic and outcome")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& restored = prometheus::BuildGauge()
                                                        .Name("attune_store_restore_records")
                                                        .Help("Changelog records restored into a store by the last restore")
                                                        .Register(*registry);
  prometheus::Family<prometheus::Gauge>& restore_total =
      prometheus::BuildGauge()
          .Name("attune_store_restore_records_total_expected")
          .Help("Changelog records the last restore of a store had to apply")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& trimmed =
      prometheus::BuildCounter()
          .Name("attune_log_records_trimmed_total")
          .Help("Consumed log records dropped by retention")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& backlog =
      prometheus::BuildGauge()
          .Name("attune_stage_backlog_records")
          .Help("Records of a stage's topics that it has not applied yet")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& lag_records =
      prometheus::BuildGauge()
          .Name("attune_stage_lag_records")
          .Help("Records of a topic a stage has not applied yet (end offset - applied offset, "
                "over the partitions this process consumes)")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& lag_seconds =
      prometheus::BuildGauge()
          .Name("attune_stage_lag_seconds")
          .Help("While a stage is behind in a topic: now - timestamp of the last record it "
                "applied there (0 when caught up)")
          .Register(*registry);
  std::mutex backlog_mu;
  BacklogSource backlog_source;  // guarded by backlog_mu
  LagSource lag_source;          // guarded by backlog_mu
  prometheus::Family<prometheus::Gauge>& ws = prometheus::BuildGauge()
                                                  .Name("attune_ws_connections")
                                                  .Help("Open notifier WebSocket connections")
                                                  .Register(*registry);

  // Family::Add hashes a label map under the family's lock; the hot paths (every HTTP request
  // and webhook) look their counter up here by a flat key instead. Counters are never removed,
  // so the pointers stay valid.
  std::shared_mutex cache_mu;
  std::unordered_map<std::string, prometheus::Counter*> cache;

  template <typename MakeLabels>
  prometheus::Counter& counter(prometheus::Family<prometheus::Counter>& family,
                               const std::string& key, MakeLabels make_labels) {
    {
      std::shared_lock lock(cache_mu);
      if (auto it = cache.find(key); it != cache.end()) return *it->second;
    }
    prometheus::Counter& c = family.Add(make_labels());
    std::unique_lock lock(cache_mu);
    cache.emplace(key, &c);
    return c;
  }
};

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {
  impl_->ws.Add({});
  impl_->rule_errors.Add({});
  impl_->trimmed.Add({});
  impl_->webhooks.Add({{"outcome", "accepted"}});
  impl_->http.Add({{"method", "GET"}, {"status", "200"}});
  for (const char* s : {"completed", "failed", "timeout", "cancelled", "abandoned"}) {
    impl_->executions.Add({{"status", s}});
  }
}

Metrics::~Metrics() = default;

void Metrics::http_request(std::string_view method, int status) {
  const std::string code = std::to_string(status);
  std::string key = "http|";
  key.append(method).append("|").append(code);
  impl_->counter(impl_->http, key, [&] {
         return std::map<std::string, std::string>{{"method", std::string(method)},
                                                   {"status", code}};
       }).Increment();
}

void Metrics::execution_finished(std::string_view status) {
  impl_->executions.Add({{"status", std::string(status)}}).Increment();
}

void Metrics::webhook_request(std::string_view outcome) {
  std::string key = "webhook|";
  key.append(outcome);
  impl_->counter(impl_->webhooks, key, [&] {
         return std::map<std::string, std::string>{{"outcome", std::string(outcome)}};
       }).Increment();
}

void Metrics::dead_letter(std::string_view stage) {
  impl_->dead.Add({{"stage", std::string(stage)}}).Increment();
}

void Metrics::rule_evaluation_error() { impl_->rule_errors.Add({}).Increment(); }

void Metrics::store_restore(std::string_view store, double restored, double total) {
  impl_->restored.Add({{"store", std::string(store)}}).Set(restored);
  impl_->restore_total.Add({{"store", std::string(store)}}).Set(total);
}

void Metrics::kafka_ingress(std::string_view topic, std::string_view outcome) {
  impl_->ingress.Add({{"topic", std::string(topic)}, {"outcome", std::string(outcome)}}).Increment();
}

void Metrics::ws_connections_set(double n) { impl_->ws.Add({}).Set(n); }

void Metrics::log_trimmed(double records) { impl_->trimmed.Add({}).Increment(records); }

void Metrics::set_backlog_source(BacklogSource source) {
  std::lock_guard lock(impl_->backlog_mu);
  impl_->backlog_source = std::move(source);
}

void Metrics::set_lag_source(LagSource source) {
  std::lock_guard lock(impl_->backlog_mu);
  impl_->lag_source = std::move(source);
}

std::string Metrics::serialize() const {
  {
    std::lock_guard lock(impl_->backlog_mu);
    if (impl_->lag_source) {
      std::map<std::string, int64_t> by_stage;
      for (const auto& l : impl_->lag_source()) {
        const std::map<std::string, std::string> labels{{"stage", l.stage}, {"topic", l.topic}};
        impl_->lag_records.Add(labels).Set(static_cast<double>(l.records));
        impl_->lag_seconds.Add(labels).Set(l.seconds);
        by_stage[l.stage] += l.records;
      }
      for (const auto& [stage, records] : by_stage) {
        impl_->backlog.Add({{"stage", stage}}).Set(static_cast<double>(records));
      }
    } else if (impl_->backlog_source) {
      for (const auto& [stage, records] : impl_->backlog_source()) {
        impl_->backlog.Add({{"stage", stage}}).Set(static_cast<double>(records));
      }
    }
  }
  prometheus::TextSerializer serializer;
  return serializer.Serialize(impl_->registry->Collect());
}

}  // namespace attune::service
