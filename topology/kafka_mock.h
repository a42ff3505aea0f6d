// MockKafkaCluster: librdkafka's in-process mock cluster (a real Kafka-protocol broker inside
// this process, reachable over TCP by other processes) for tests, benchmarks and the
// tests/tools/mock_kafka broker process. Not for production.
//
// Limits of the mock (ENVIRONMENT.md): ~5 MiB per partition, no Admin API (create topics here),
// joining a consumer group takes ~3 s. Unlike the bare mock, its connections disable Nagle
// (as brokers do). With `long_poll` (the default) a proxy in front of each
// broker makes an empty Fetch return as soon as a Produce to one of its partitions is answered,
// as a real broker does (the mock alone waits out the client's fetch.wait.max.ms); brokers
// cannot then be taken down and up (rd_kafka_mock_broker_set_down).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "topology/log.h"

namespace attune {

class MockKafkaCluster {
 public:
  static Result<std::unique_ptr<MockKafkaCluster>> start(int brokers = 1, bool long_poll = true);
  ~MockKafkaCluster();
  // "host:port,..." to pass as bootstrap.servers (--broker).
  const std::string& bootstraps() const { return bootstraps_; }
  Status create_topic(const std::string& name, int32_t partitions);
  // default_topics(partitions) plus the changelogs of the given store names.
  Status create_topics(const std::vector<TopicConfig>& topics);

 private:
  class LongPoll;
  MockKafkaCluster();
  void disable_nagle();
  Status start_long_poll();
  void* rk_ = nullptr;       // rd_kafka_t* owning the cluster
  void* cluster_ = nullptr;  // rd_kafka_mock_cluster_t*
  std::string bootstraps_;
  std::unique_ptr<LongPoll> long_poll_;
};

}  // namespace attune
