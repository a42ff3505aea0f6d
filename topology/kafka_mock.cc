#include "topology/kafka_mock.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <future>

namespace attune {

Result<std::unique_ptr<MockKafkaCluster>> MockKafkaCluster::start(int brokers) {
  auto self = std::unique_ptr<MockKafkaCluster>(new MockKafkaCluster());
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return make_error(Errc::kInternal, std::string("mock cluster client: ") + err);
  }
  self->rk_ = rk;
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (!mc) return make_error(Errc::kInternal, "cannot start the Kafka mock cluster");
  self->cluster_ = mc;
  self->bootstraps_ = rd_kafka_mock_cluster_bootstraps(mc);
  return self;
}

MockKafkaCluster::~MockKafkaCluster() {
  if (cluster_) rd_kafka_mock_cluster_destroy(static_cast<rd_kafka_mock_cluster_t*>(cluster_));
  if (rk_) rd_kafka_destroy(static_cast<rd_kafka_t*>(rk_));
}

Status MockKafkaCluster::create_topic(const std::string& name, int32_t partitions) {
  const auto e = rd_kafka_mock_topic_create(static_cast<rd_kafka_mock_cluster_t*>(cluster_),
                                            name.c_str(), partitions, 1);
  if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
    return make_error(Errc::kInternal, "mock topic " + name + ": " + rd_kafka_err2str(e));
  }
  return {};
}

Status MockKafkaCluster::create_topics(const std::vector<TopicConfig>& topics) {
  // Each creation is a round trip to the mock's thread that waits for its next wake-up; issued
  // together they share the wait.
  std::vector<std::future<Status>> pending;
  for (const auto& t : topics) {
    pending.push_back(std::async(std::launch::async, [this, t] {
      return create_topic(t.name, t.partitions);
    }));
  }
  Status result;
  for (auto& f : pending) {
    auto st = f.get();
    if (!st.ok() && result.ok()) result = st;
  }
  return result;
}

}  // namespace attune
