// Shared fixture for topology tests, parametrised over both Log implementations (DESIGN.md §1:
// a test that passes on the embedded log must pass on Kafka): a temp RocksDB with an EmbeddedLog
// on it, or with a KafkaLog on a fresh in-process mock Kafka cluster.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <type_traits>

#include "topology/embedded_log.h"
#include "topology/kafka_log.h"
#include "topology/kafka_mock.h"

namespace attune::testing {

using namespace std::chrono_literals;

enum class LogKind { kEmbedded, kKafka };

inline std::string log_kind_name(const ::testing::TestParamInfo<LogKind>& info) {
  return info.param == LogKind::kEmbedded ? "Embedded" : "Kafka";
}

// Waits that end as soon as their condition holds: generous, because joining a consumer group
// on the mock cluster takes ~3 s.
inline constexpr auto kWait = 30s;

// Base is ::testing::Test (embedded only, TEST_F) or ::testing::TestWithParam<LogKind> (TEST_P).
template <class Base>
class LogFixtureT : public Base {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("attune-log-" + std::to_string(std::random_device{}()));
    if (kafka()) {
      auto mc = MockKafkaCluster::start(1);
      ASSERT_TRUE(mc.ok()) << mc.error().message;
      cluster_ = std::move(*mc);
      auto topics = default_topics(3);
      // Changelogs of the stores used by these tests (the mock has no Admin API).
      topics.push_back({KafkaLog::changelog_topic("counter.counts"), 3, true});
      ASSERT_TRUE(cluster_->create_topics(topics).ok());
    }
    reopen();
  }
  void TearDown() override {
    log_.reset();
    db_.reset();
    cluster_.reset();
    std::filesystem::remove_all(dir_);
  }
  bool kafka() const {
    if constexpr (std::is_same_v<Base, ::testing::Test>) {
      return false;
    } else {
      return this->GetParam() == LogKind::kKafka;
    }
  }
  void reopen(int32_t partitions = 3) {
    log_.reset();
    db_.reset();
    state::DbOptions db_options;  // as attune serve opens its database
    db_options.append_stores = {std::string(EmbeddedLog::kLogStore)};
    auto db = state::Db::open(dir_.string(), db_options);
    ASSERT_TRUE(db.ok()) << db.error().message;
    db_ = std::move(*db);
    if (kafka()) {
      KafkaOptions o;
      o.brokers = cluster_->bootstraps();
      o.topics = default_topics(partitions);
      o.changelog_partitions = partitions;
      o.config = {{"log_level", "3"}, {"session.timeout.ms", "3000"}, {"heartbeat.interval.ms", "500"}};
      o.config.insert(o.config.end(), kafka_config_.begin(), kafka_config_.end());
      auto log = KafkaLog::open(*db_, o);
      ASSERT_TRUE(log.ok()) << log.error().message;
      log_ = std::move(*log);
    } else {
      auto log = EmbeddedLog::open(*db_, default_topics(partitions));
      ASSERT_TRUE(log.ok()) << log.error().message;
      log_ = std::move(*log);
    }
  }
  // Polls until `want` records arrived or kWait passed.
  std::vector<Record> poll_n(Consumer& c, size_t want, size_t max_batch = 100) {
    std::vector<Record> got;
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
      auto b = c.poll(std::min(max_batch, want - got.size()), 100ms);
      got.insert(got.end(), b.begin(), b.end());
    }
    return got;
  }
  std::vector<std::pair<std::string, std::string>> kafka_config_;  // added by reopen()
  std::filesystem::path dir_;
  std::unique_ptr<MockKafkaCluster> cluster_;
  std::unique_ptr<state::Db> db_;
  std::unique_ptr<Log> log_;
};

// TEST_F fixtures on the embedded log.
class LogFixture : public LogFixtureT<::testing::Test> {};
// TEST_P fixtures instantiated for both logs with ATTUNE_BOTH_LOGS(suite).
class BothLogsFixture : public LogFixtureT<::testing::TestWithParam<LogKind>> {};

#define ATTUNE_BOTH_LOGS(suite)                                                            \
  INSTANTIATE_TEST_SUITE_P(Logs, suite,                                                    \
                           ::testing::Values(::attune::testing::LogKind::kEmbedded,        \
                                             ::attune::testing::LogKind::kKafka),          \
                           ::attune::testing::log_kind_name)

}  // namespace attune::testing
