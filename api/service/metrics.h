// Metrics: the platform's Prometheus counters and gauges (API.md §5), behind a narrow facade so
// prometheus-cpp headers stay inside this module. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace attune::service {

class Metrics {
 public:
  Metrics();
  ~Metrics();
  void http_request(std::string_view method, int status);
  void execution_finished(std::string_view status);
  void webhook_request(std::string_view outcome);
  void dead_letter(std::string_view stage);
  void rule_evaluation_error();
  void kafka_ingress(std::string_view topic, std::string_view outcome);
  void ws_connections_set(double n);
  // Distributed mode: changelog restore progress of a stage store (records restored/to restore).
  void store_restore(std::string_view store, double restored, double total);
  // Log retention dropped this many consumed records.
  void log_trimmed(double records);
  // Where `attune_stage_backlog_records{stage}` comes from: records of each stage's topics not yet
  // applied by it, asked at every serialize() (cheap: offsets kept in memory). Overload shows here
  // as a backlog that grows and then drains.
  using BacklogSource = std::function<std::vector<std::pair<std::string, int64_t>>()>;
  void set_backlog_source(BacklogSource source);
  // Per-stage consumer lag (issue 13), asked at every serialize(); must not do I/O (Runtime::lag:
  // offsets and timestamps kept in memory; on Kafka the watermarks librdkafka cached from its
  // fetches). Exported as attune_stage_lag_records{stage,topic}, attune_stage_lag_seconds{stage,
  // topic}, and attune_stage_backlog_records{stage} = the records summed over the topics (it
  // replaces a backlog source).
  struct StageLag {
    std::string stage;
    std::string topic;
    int64_t records = 0;
    double seconds = 0;
  };
  using LagSource = std::function<std::vector<StageLag>()>;
  void set_lag_source(LagSource source);
  // Prometheus text exposition format 0.0.4.
  std::string serialize() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace attune::service
