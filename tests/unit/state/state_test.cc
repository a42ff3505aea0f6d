// Unit tests for attune::state: stores, atomic multi-batch writes, scans, Txn overlay and
// savepoints, and close → reopen → verify.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "state/db.h"

namespace attune::state {
namespace {

class StateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("attune-state-" + std::to_string(std::random_device{}()));
    open();
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  void open() {
    auto db = Db::open(dir_.string());
    ASSERT_TRUE(db.ok()) << db.error().message;
    db_ = std::move(*db);
  }
  Store& store(const char* name) { return **db_->store(name); }
  std::filesystem::path dir_;
  std::unique_ptr<Db> db_;
};

TEST_F(StateTest, PutGetDeleteAcrossStores) {
  WriteBatch b;
  b.put(store("a"), "k1", "v1");
  b.put(store("b"), "k1", "other");
  ASSERT_TRUE(db_->write(b).ok());
  EXPECT_EQ(**store("a").get("k1"), "v1");
  EXPECT_EQ(**store("b").get("k1"), "other");
  EXPECT_FALSE(store("a").get("missing")->has_value());
  WriteBatch d;
  d.del(store("a"), "k1");
  ASSERT_TRUE(db_->write(d).ok());
  EXPECT_FALSE(store("a").get("k1")->has_value());
}

TEST_F(StateTest, ReopenKeepsStoresAndData) {
  WriteBatch b;
  for (int i = 0; i < 100; ++i) b.put(store("x"), "k" + std::to_string(i), std::to_string(i));
  b.put(store("y"), "only", "y");
  ASSERT_TRUE(db_->write(b).ok());
  db_.reset();
  open();
  EXPECT_EQ(**store("x").get("k42"), "42");
  EXPECT_EQ(**store("y").get("only"), "y");
}

TEST_F(StateTest, MultipleBatchesAreOneWrite) {
  WriteBatch a, b;
  a.put(store("s"), "a", "1");
  b.put(store("s"), "b", "2");
  const WriteBatch* both[] = {&a, &b};
  ASSERT_TRUE(db_->write(both).ok());
  EXPECT_EQ(**store("s").get("a"), "1");
  EXPECT_EQ(**store("s").get("b"), "2");
}

TEST_F(StateTest, PrefixScanForwardReverseAndStart) {
  WriteBatch b;
  for (const char* k : {"p/1", "p/2", "p/3", "q/1", "o/9"}) b.put(store("s"), k, k);
  ASSERT_TRUE(db_->write(b).ok());
  std::vector<std::string> seen;
  auto collect = [&](std::string_view k, std::string_view) {
    seen.emplace_back(k);
    return true;
  };
  ASSERT_TRUE(store("s").scan("p/", collect).ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"p/1", "p/2", "p/3"}));
  seen.clear();
  ASSERT_TRUE(store("s").scan("p/", collect, true).ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"p/3", "p/2", "p/1"}));
  seen.clear();
  ASSERT_TRUE(store("s").scan("p/", collect, false, "p/2").ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"p/2", "p/3"}));
  seen.clear();
  ASSERT_TRUE(store("s").scan("p/", collect, true, "p/2").ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"p/2", "p/1"}));
}

TEST_F(StateTest, ScanStopsWhenVisitorSaysSo) {
  WriteBatch b;
  for (int i = 0; i < 10; ++i) b.put(store("s"), "k" + std::to_string(i), "v");
  ASSERT_TRUE(db_->write(b).ok());
  int n = 0;
  ASSERT_TRUE(store("s").scan("k", [&](auto, auto) { return ++n < 3; }).ok());
  EXPECT_EQ(n, 3);
}

TEST_F(StateTest, TxnReadsOwnWritesAndRollsBackToSavepoint) {
  WriteBatch b;
  b.put(store("s"), "a", "committed");
  b.put(store("s"), "c", "committed");
  ASSERT_TRUE(db_->write(b).ok());
  Txn t;
  t.put(store("s"), "a", "mine");
  auto sp = t.savepoint();
  t.put(store("s"), "b", "later");
  t.del(store("s"), "c");
  EXPECT_EQ(**t.get(store("s"), "b"), "later");
  EXPECT_FALSE(t.get(store("s"), "c")->has_value());
  t.rollback(sp);
  EXPECT_FALSE(t.get(store("s"), "b")->has_value());
  EXPECT_EQ(**t.get(store("s"), "c"), "committed");
  EXPECT_EQ(**t.get(store("s"), "a"), "mine");
  const WriteBatch batch = t.take_batch();
  EXPECT_EQ(batch.size(), 1u);
  EXPECT_TRUE(t.empty());
  ASSERT_TRUE(db_->write(batch).ok());
  EXPECT_EQ(**store("s").get("a"), "mine");
}

TEST_F(StateTest, TxnKeepsOnlyTheNetWritePerKeyInKeyOrder) {
  Txn t;
  for (int i = 0; i < 5; ++i) t.put(store("s"), "counter", std::to_string(i));
  t.put(store("s"), "z", "1");
  t.put(store("s"), "gone", "1");
  t.del(store("s"), "gone");
  t.put(store("s"), "a", "1");
  const WriteBatch batch = t.take_batch();
  ASSERT_EQ(batch.size(), 4u);
  std::vector<std::string> keys;
  for (const auto& op : batch.ops()) keys.push_back(op.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "counter", "gone", "z"}));
  EXPECT_EQ(*batch.ops()[1].value, "4");
  EXPECT_FALSE(batch.ops()[2].value.has_value());
  ASSERT_TRUE(db_->write(batch).ok());
  EXPECT_EQ(**store("s").get("counter"), "4");
  EXPECT_FALSE(store("s").get("gone")->has_value());
}

TEST_F(StateTest, TxnScanMergesOverlay) {
  WriteBatch b;
  for (const char* k : {"p/1", "p/3", "p/5"}) b.put(store("s"), k, "db");
  ASSERT_TRUE(db_->write(b).ok());
  Txn t;
  t.put(store("s"), "p/2", "tx");
  t.del(store("s"), "p/3");
  t.put(store("s"), "p/5", "tx");
  std::vector<std::string> seen;
  ASSERT_TRUE(t.scan(store("s"), "p/", [&](std::string_view k, std::string_view v) {
                 seen.push_back(std::string(k) + "=" + std::string(v));
                 return true;
               }).ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"p/1=db", "p/2=tx", "p/5=tx"}));
}

TEST(Encoding, BigEndianSortsNumerically) {
  EXPECT_LT(encode_be64(255), encode_be64(256));
  EXPECT_EQ(decode_be64(encode_be64(0x0102030405060708ULL)), 0x0102030405060708ULL);
  EXPECT_EQ(decode_be32(encode_be32(70000)), 70000u);
  EXPECT_EQ(prefix_successor("ab"), "ac");
  EXPECT_EQ(prefix_successor(std::string("a\xff", 2)), "b");
}

TEST_F(StateTest, OpenFailsClearlyOnBadPath) {
  auto db = Db::open("/proc/definitely/not/here");
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.error().message.find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace attune::state
