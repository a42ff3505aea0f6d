// A stage transaction without a Runtime, for stage tests (executor, admission): reads see the
// open transaction, commit() writes it to a real RocksDB store and releases its records;
// punctuation requests are recorded.
#pragma once

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "state/db.h"
#include "topology/core/clock.h"
#include "topology/core/ids.h"
#include "topology/topology.h"

namespace attune {

// A stage transaction without a Runtime: reads see the open transaction, commit() writes it.
class TxnContext final : public ProcessorContext, public Mailbox {
 public:
  TxnContext(state::Db& db, const Clock& clock) : db_(db), clock_(clock), ids_(0, clock) {}
  state::Store& store(std::string_view name) override {
    auto s = db_.store("stage." + std::string(name));
    if (!s.ok()) throw std::runtime_error(s.error().message);
    return **s;
  }
  Result<std::optional<std::string>> get(state::Store& s, std::string_view key) override {
    return txn_.get(s, key);
  }
  void put(state::Store& s, std::string key, std::string value) override {
    txn_.put(s, std::move(key), std::move(value));
  }
  void del(state::Store& s, std::string key) override { txn_.del(s, std::move(key)); }
  Status scan(state::Store& s, std::string_view prefix, const state::ScanFn& fn,
              bool reverse) override {
    return txn_.scan(s, prefix, fn, reverse);
  }
  void forward(OutRecord r) override { pending_.push_back(std::move(r)); }
  void after_commit(std::function<void()>) override {}
  const Clock& clock() const override { return clock_; }
  IdGenerator& ids() override { return ids_; }
  Mailbox& mailbox() override { return *this; }
  void post(Task) override {}
  Log& log() override { throw std::logic_error("no log"); }
  const std::string& stage() const override { return name_; }
  int instance() const override { return 0; }
  void request_punctuate(SystemTime at) override {
    punctuations.push_back(
        std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count());
  }
  void pause_input(bool) override {}

  // Records of committed transactions only (a crash loses the open one with its records).
  std::vector<OutRecord> forwarded;
  std::vector<int64_t> punctuations;  // times asked for, epoch ms

  void commit() {
    const state::WriteBatch batch = txn_.take_batch();
    ASSERT_TRUE(db_.write(batch).ok());
    txn_.clear();
    for (auto& r : pending_) forwarded.push_back(std::move(r));
    pending_.clear();
  }
  void crash() {
    txn_.clear();
    pending_.clear();
  }

 private:
  state::Db& db_;
  const Clock& clock_;
  IdGenerator ids_;
  state::Txn txn_;
  std::vector<OutRecord> pending_;
  std::string name_ = "executor";
 public:
  void set_stage(std::string name) { name_ = std::move(name); }
};

inline Record record_of(std::string_view topic, const std::string& key, const Envelope& e) {
  Record r;
  r.topic = std::string(topic);
  r.key = key;
  r.value = e.dump();
  return r;
}

}  // namespace attune
