// mock_kafka: runs librdkafka's mock cluster (a real Kafka-protocol broker, in memory) until
// SIGTERM/SIGINT, with Attune's topics and stage changelogs created (the mock has no Admin API).
// Prints "bootstrap=<host:port,...>" on stdout once it accepts connections.
//
//   mock_kafka [--partitions N] [--brokers N] [--topic name:partitions]... [--no-long-poll]
//
// --no-long-poll: the mock answers an empty fetch only after the client's fetch.wait.max.ms
// (MockKafkaCluster: by default a fetch returns as soon as data arrives, as on a broker).
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "topology/kafka_log.h"
#include "topology/kafka_mock.h"

int main(int argc, char** argv) {
  int partitions = 4;
  int brokers = 1;
  bool long_poll = true;
  std::vector<attune::TopicConfig> extra;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--partitions" && i + 1 < argc) {
      partitions = std::atoi(argv[++i]);
    } else if (a == "--brokers" && i + 1 < argc) {
      brokers = std::atoi(argv[++i]);
    } else if (a == "--no-long-poll") {
      long_poll = false;
    } else if (a == "--topic" && i + 1 < argc) {
      const std::string t = argv[++i];
      const auto colon = t.rfind(':');
      extra.push_back({t.substr(0, colon), colon == std::string::npos ? 1 : std::atoi(t.c_str() + colon + 1), false});
    } else {
      std::fprintf(stderr,
                   "usage: mock_kafka [--partitions N] [--brokers N] [--topic name:partitions]... "
                   "[--no-long-poll]\n");
      return 2;
    }
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto cluster = attune::MockKafkaCluster::start(brokers, long_poll);
  if (!cluster.ok()) {
    std::fprintf(stderr, "mock_kafka: %s\n", cluster.error().message.c_str());
    return 1;
  }
  auto topics = attune::default_topics(partitions);
  // Changelogs of the stages' stores (KafkaLog::changelog_topic), partitioned like the work.
  for (const char* store : {"rules.dedupe", "executor.executions", "monitor.running"}) {
    topics.push_back({attune::KafkaLog::changelog_topic(store), partitions, true});
  }
  topics.insert(topics.end(), extra.begin(), extra.end());
  if (auto st = (*cluster)->create_topics(topics); !st.ok()) {
    std::fprintf(stderr, "mock_kafka: %s\n", st.error().message.c_str());
    return 1;
  }
  std::printf("bootstrap=%s\n", (*cluster)->bootstraps().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  return 0;
}
