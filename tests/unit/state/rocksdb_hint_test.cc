// Why the append stores use no memtable insert hint (issue 12): with RocksDB before 9.2, a
// DeleteRange whose begin key falls in a hint group that point keys also use corrupts the
// memtable (facebook/rocksdb#5118, fixed upstream by #12558 in 9.2). This test shows it on the
// RocksDB we build against, straight on RocksDB: appends and range deletes on one partition
// prefix, then a scan. It passes when the bug is there (the child aborts on an assertion, as
// Debian's build does, or sees wrong data); when it fails, the RocksDB in use has the fix and the
// hint could come back (state/db.h, DbOptions::append_stores).
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/version.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "state/db.h"

namespace attune::state {
namespace {

// The hint group of the removed option: everything but a key's last 8 bytes (its offset).
class AllButOffset final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "test.AllButOffset"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return {key.data(), key.size() - 8};
  }
  bool InDomain(const rocksdb::Slice& key) const override { return key.size() > 8; }
};

// 0: every record is where it should be; 1: the scan saw wrong data; 2: cannot open.
int appends_and_range_deletes(const std::string& path) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.memtable_insert_with_hint_prefix_extractor = std::make_shared<AllButOffset>();
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(options, path, &raw).ok()) return 2;
  std::unique_ptr<rocksdb::DB> db(raw);
  const std::string prefix = std::string("attune.events\0", 14) + encode_be32(1);
  uint64_t next = 0;
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < 100; ++i) {
      if (!db->Put({}, prefix + encode_be64(next++), std::string(100, 'x')).ok()) return 1;
    }
    const std::string end = prefix + encode_be64(next - 50);
    if (!db->DeleteRange({}, db->DefaultColumnFamily(), prefix + encode_be64(0), end).ok()) {
      return 1;
    }
  }
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}));
  uint64_t expect = next - 50;
  for (it->SeekToFirst(); it->Valid(); it->Next(), ++expect) {
    if (decode_be64(it->key().ToStringView().substr(it->key().size() - 8)) != expect) return 1;
  }
  return expect == next ? 0 : 1;
}

TEST(RocksDbMemtableHint, RangeDeletesCorruptHintedAppendsInThisRocksDb) {
  if (ROCKSDB_MAJOR > 9 || (ROCKSDB_MAJOR == 9 && ROCKSDB_MINOR >= 2)) {
    GTEST_SKIP() << "RocksDB " << ROCKSDB_MAJOR << "." << ROCKSDB_MINOR << " has the fix";
  }
  const auto dir = std::filesystem::temp_directory_path() /
                   ("attune-hint-" + std::to_string(std::random_device{}()));
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(STDERR_FILENO);  // the expected assertion message is noise in the test log
    _exit(appends_and_range_deletes(dir.string()));
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  std::filesystem::remove_all(dir);
  ASSERT_NE(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 2) << "could not open RocksDB";
  EXPECT_TRUE(WIFSIGNALED(status) || WEXITSTATUS(status) == 1)
      << "RocksDB " << ROCKSDB_MAJOR << "." << ROCKSDB_MINOR << "." << ROCKSDB_PATCH
      << " kept every record with the insert hint and range deletes: it has the fix";
}

}  // namespace
}  // namespace attune::state
