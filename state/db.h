// Key-value stores on RocksDB column families (the only module that includes RocksDB).
//
// A Db is one RocksDB instance; a Store is one column family in it, created on first use.
// WriteBatch collects puts and deletes across stores; Db::write applies any number of batches
// as ONE atomic RocksDB write, which is what lets a stage commit its state, its produced
// records and its input offsets together (DESIGN.md §4).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "topology/core/result.h"

namespace attune::state {

class Db;

// Visitor for scans: return false to stop.
using ScanFn = std::function<bool(std::string_view key, std::string_view value)>;

// A named column family. Handles are owned by their Db and live as long as it. Thread-safe.
class Store {
 public:
  const std::string& name() const { return name_; }
  Result<std::optional<std::string>> get(std::string_view key) const;
  // Visits keys starting with `prefix` in key order (reverse: descending). `start`, when not
  // empty, is where to begin (inclusive) — a key inside the prefix range.
  Status scan(std::string_view prefix, const ScanFn& fn, bool reverse = false,
              std::string_view start = {}) const;

 private:
  friend class Db;
  Store(Db* db, std::string name, void* handle) : db_(db), name_(std::move(name)), cf_(handle) {}
  Db* db_;
  std::string name_;
  void* cf_;  // rocksdb::ColumnFamilyHandle*
};

// A list of writes to apply atomically. Not thread-safe; cheap to move.
class WriteBatch {
 public:
  struct Op {
    Store* store;
    std::string key;
    std::optional<std::string> value;  // nullopt: delete
    std::optional<std::string> range_end;  // set: delete every key in [key, range_end)
  };
  void put(Store& store, std::string key, std::string value) {
    bytes_ += key.size() + value.size();
    ops_.push_back(Op{&store, std::move(key), std::move(value)});
  }
  void del(Store& store, std::string key) {
    bytes_ += key.size();
    ops_.push_back(Op{&store, std::move(key), std::nullopt});
  }
  // Deletes every key in [begin, end) of the store (cheap in RocksDB: one range tombstone).
  void del_range(Store& store, std::string begin, std::string end) {
    bytes_ += begin.size() + end.size();
    ops_.push_back(Op{&store, std::move(begin), std::nullopt, std::move(end)});
  }
  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }
  size_t bytes() const { return bytes_; }
  const std::vector<Op>& ops() const { return ops_; }
  void truncate(size_t n);  // drop ops after the first n (savepoint rollback)
  void clear() {
    ops_.clear();
    bytes_ = 0;
  }

 private:
  std::vector<Op> ops_;
  size_t bytes_ = 0;
};

struct DbOptions {
  bool sync = false;  // fsync the WAL on every write; off still survives a process crash (kill -9)
  bool create_if_missing = true;
  size_t block_cache_bytes = 64 << 20;
  // Stores read only by scans (the log's records): no bloom filters are built for them. Only a
  // speed setting: a store opens with or without it.
  //
  // They deliberately do NOT use RocksDB's memtable insert hint
  // (memtable_insert_with_hint_prefix_extractor), although their keys are appended in order:
  // RocksDB before 9.2 (Debian ships 7.8.3) keeps one hint map for a memtable's point-key list
  // and its range-deletion list (facebook/rocksdb#5118, fixed by #12558). A DeleteRange whose
  // begin key shares a hint group with appended keys — log retention trimming a partition — makes
  // later appends follow a position in the other list: the memtable is corrupted, and the same
  // happens again when the write-ahead log is replayed at the next open (issue 12). Tests:
  // tests/unit/state (the raw pattern) and tests/unit/topology (trim under appends, reopen).
  std::vector<std::string> append_stores;
};

class Db {
 public:
  static Result<std::unique_ptr<Db>> open(const std::string& path, const DbOptions& options = {});
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // The store named `name`, created if missing. Thread-safe; the pointer stays valid.
  Result<Store*> store(std::string_view name);
  // Applies all batches in one atomic write.
  Status write(std::span<const WriteBatch* const> batches);
  Status write(const WriteBatch& batch) {
    const WriteBatch* one[] = {&batch};
    return write(one);
  }
  const std::string& path() const { return path_; }
  // Approximate on-disk size of live data, for metrics and tests.
  uint64_t approximate_size() const;

 private:
  friend class Store;
  struct Impl;
  explicit Db(std::unique_ptr<Impl> impl, std::string path);
  std::unique_ptr<Impl> impl_;
  std::string path_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Store>, std::less<>> stores_;
};

// A transactional view over stores: reads see this transaction's own uncommitted writes first.
// Only the net effect is kept (one value or delete per key), so a key written many times in one
// transaction — a counter bumped by every record of a batch — costs one write at commit.
// Savepoints allow dropping the effects of one record that failed to process while keeping the
// rest of the batch. Not thread-safe.
class Txn {
 public:
  Result<std::optional<std::string>> get(Store& store, std::string_view key) const;
  void put(Store& store, std::string key, std::string value);
  void del(Store& store, std::string key);
  // Prefix scan merging committed data with this transaction's writes.
  Status scan(Store& store, std::string_view prefix, const ScanFn& fn, bool reverse = false) const;

  struct Savepoint {
    size_t undo;
  };
  Savepoint savepoint() const { return {undo_.size()}; }
  void rollback(const Savepoint& sp);

  bool empty() const { return overlay_.empty(); }
  // Moves the net writes into a batch, one op per key in (store, key) order — sorted inserts are
  // the cheap case for RocksDB's memtable — and leaves the transaction empty.
  WriteBatch take_batch();
  void clear();

 private:
  using OverlayKey = std::pair<Store*, std::string>;
  struct Undo {
    OverlayKey key;
    bool existed;
    std::optional<std::string> previous;
  };
  void record(Store& store, std::string key, std::optional<std::string> value);

  std::map<OverlayKey, std::optional<std::string>, std::less<>> overlay_;
  std::vector<Undo> undo_;
};

// Big-endian fixed-width encodings so numeric keys sort in numeric order.
std::string encode_be64(uint64_t v);
uint64_t decode_be64(std::string_view s);
std::string encode_be32(uint32_t v);
uint32_t decode_be32(std::string_view s);
// The smallest key greater than every key with this prefix ("" if none exists).
std::string prefix_successor(std::string_view prefix);

}  // namespace attune::state
