// Shared fixture for topology tests: a temp RocksDB with an EmbeddedLog on it.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "topology/embedded_log.h"

namespace attune::testing {

class LogFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("attune-log-" + std::to_string(std::random_device{}()));
    reopen();
  }
  void TearDown() override {
    log_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  void reopen(int32_t partitions = 3) {
    log_.reset();
    db_.reset();
    auto db = state::Db::open(dir_.string());
    ASSERT_TRUE(db.ok()) << db.error().message;
    db_ = std::move(*db);
    auto log = EmbeddedLog::open(*db_, default_topics(partitions));
    ASSERT_TRUE(log.ok()) << log.error().message;
    log_ = std::move(*log);
  }
  std::filesystem::path dir_;
  std::unique_ptr<state::Db> db_;
  std::unique_ptr<EmbeddedLog> log_;
};

}  // namespace attune::testing
