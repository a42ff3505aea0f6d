#include "state/db.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/write_batch.h>

#include <algorithm>

namespace attune::state {

namespace {

Error translate(const rocksdb::Status& s, std::string_view what) {
  const Errc code = s.IsBusy() || s.IsTryAgain() || s.IsTimedOut() ? Errc::kUnavailable
                                                                   : Errc::kInternal;
  return make_error(code, std::string(what) + ": " + s.ToString());
}

rocksdb::ColumnFamilyHandle* cf(void* h) { return static_cast<rocksdb::ColumnFamilyHandle*>(h); }

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

}  // namespace

struct Db::Impl {
  rocksdb::DB* db = nullptr;
  rocksdb::ColumnFamilyOptions cf_options;
  rocksdb::ColumnFamilyOptions append_options;
  std::vector<std::string> append_stores;
  const rocksdb::ColumnFamilyOptions& options_for(std::string_view name) const {
    return std::find(append_stores.begin(), append_stores.end(), name) != append_stores.end()
               ? append_options
               : cf_options;
  }
  rocksdb::WriteOptions write_options;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  ~Impl() {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
};

Db::Db(std::unique_ptr<Impl> impl, std::string path) : impl_(std::move(impl)), path_(std::move(path)) {}

Db::~Db() = default;

Result<std::unique_ptr<Db>> Db::open(const std::string& path, const DbOptions& options) {
  rocksdb::Options opts;
  opts.create_if_missing = options.create_if_missing;
  opts.create_missing_column_families = true;
  opts.IncreaseParallelism(2);
  opts.max_background_jobs = 2;
  opts.write_buffer_size = 16 << 20;
  // One budget for the memtables of all stores (there are a dozen or more column families), so
  // resident memory stays bounded however many stores exist.
  opts.db_write_buffer_size = 64 << 20;
  opts.max_total_wal_size = 128 << 20;
  opts.keep_log_file_num = 3;
  opts.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  rocksdb::BlockBasedTableOptions table;
  auto block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.block_cache = block_cache;
  // Most point reads ask for keys that do not exist (a new id, a dedupe key never written): bloom
  // filters answer those without touching data blocks, in SST files and in the memtable.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10, false));
  table.whole_key_filtering = true;
  opts.memtable_whole_key_filtering = true;
  opts.memtable_prefix_bloom_size_ratio = 0.02;
  opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Fresh data is rewritten soon by compaction: compress only from level 2 on, where it stays.
  opts.compression_per_level = {rocksdb::kNoCompression, rocksdb::kNoCompression,
                                rocksdb::kSnappyCompression};

  auto impl = std::make_unique<Impl>();
  impl->cf_options = rocksdb::ColumnFamilyOptions(opts);
  // Append stores are read by scans only: bloom filters (memtable and SST) would be built for
  // every record and never asked. No memtable insert hint either, see DbOptions::append_stores.
  impl->append_options = impl->cf_options;
  impl->append_options.memtable_prefix_bloom_size_ratio = 0;
  impl->append_options.memtable_whole_key_filtering = false;
  rocksdb::BlockBasedTableOptions append_table;
  append_table.block_cache = block_cache;
  impl->append_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(append_table));
  impl->append_stores = options.append_stores;
  impl->write_options.sync = options.sync;

  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(opts), path, &names);
  if (!s.ok() || names.empty()) names = {rocksdb::kDefaultColumnFamilyName};
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& n : names) descriptors.emplace_back(n, impl->options_for(n));
  s = rocksdb::DB::Open(rocksdb::DBOptions(opts), path, descriptors, &impl->handles, &impl->db);
  if (!s.ok()) return translate(s, "cannot open database at " + path);

  auto db = std::unique_ptr<Db>(new Db(std::move(impl), path));
  for (size_t i = 0; i < names.size(); ++i) {
    auto* h = db->impl_->handles[i];
    db->stores_.emplace(names[i], std::unique_ptr<Store>(new Store(db.get(), names[i], h)));
  }
  return db;
}

Result<Store*> Db::store(std::string_view name) {
  std::lock_guard lock(mu_);
  if (auto it = stores_.find(name); it != stores_.end()) return it->second.get();
  rocksdb::ColumnFamilyHandle* handle = nullptr;
  auto s = impl_->db->CreateColumnFamily(impl_->options_for(name), std::string(name), &handle);
  if (!s.ok()) return translate(s, "cannot create store " + std::string(name));
  impl_->handles.push_back(handle);
  auto store = std::unique_ptr<Store>(new Store(this, std::string(name), handle));
  Store* raw = store.get();
  stores_.emplace(std::string(name), std::move(store));
  return raw;
}

Status Db::write(std::span<const WriteBatch* const> batches) {
  size_t bytes = 0;
  for (const WriteBatch* b : batches) bytes += b->bytes() + 16 * b->size();
  rocksdb::WriteBatch wb(bytes + 64);
  for (const WriteBatch* b : batches) {
    for (const auto& op : b->ops()) {
      rocksdb::Status s =
          op.range_end ? wb.DeleteRange(cf(op.store->cf_), slice(op.key), slice(*op.range_end))
          : op.value   ? wb.Put(cf(op.store->cf_), slice(op.key), slice(*op.value))
                       : wb.Delete(cf(op.store->cf_), slice(op.key));
      if (!s.ok()) return translate(s, "batch");
    }
  }
  if (wb.Count() == 0) return {};
  auto s = impl_->db->Write(impl_->write_options, &wb);
  if (!s.ok()) return translate(s, "write");
  return {};
}

uint64_t Db::approximate_size() const {
  uint64_t total = 0;
  std::lock_guard lock(mu_);
  for (auto* h : impl_->handles) {
    uint64_t v = 0;
    impl_->db->GetIntProperty(h, rocksdb::DB::Properties::kTotalSstFilesSize, &v);
    total += v;
    impl_->db->GetIntProperty(h, rocksdb::DB::Properties::kCurSizeAllMemTables, &v);
    total += v;
  }
  return total;
}

Result<std::optional<std::string>> Store::get(std::string_view key) const {
  std::string value;
  auto s = db_->impl_->db->Get(rocksdb::ReadOptions(), cf(cf_), slice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return translate(s, "get from " + name_);
  return std::optional<std::string>(std::move(value));
}

Status Store::scan(std::string_view prefix, const ScanFn& fn, bool reverse,
                   std::string_view start) const {
  rocksdb::ReadOptions ro;
  const std::string upper = prefix_successor(prefix);
  rocksdb::Slice upper_slice(upper);
  rocksdb::Slice lower_slice(prefix.data(), prefix.size());
  if (!upper.empty()) ro.iterate_upper_bound = &upper_slice;
  ro.iterate_lower_bound = &lower_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->impl_->db->NewIterator(ro, cf(cf_)));
  if (!reverse) {
    it->Seek(slice(start.empty() ? prefix : start));
    for (; it->Valid(); it->Next()) {
      if (!fn(view(it->key()), view(it->value()))) break;
    }
  } else {
    if (!start.empty()) {
      it->SeekForPrev(slice(start));
    } else {
      it->SeekToLast();
    }
    for (; it->Valid(); it->Prev()) {
      if (!fn(view(it->key()), view(it->value()))) break;
    }
  }
  if (!it->status().ok()) return translate(it->status(), "scan " + name_);
  return {};
}

void WriteBatch::truncate(size_t n) {
  while (ops_.size() > n) {
    const auto& op = ops_.back();
    bytes_ -= op.key.size() + (op.value ? op.value->size() : 0) +
              (op.range_end ? op.range_end->size() : 0);
    ops_.pop_back();
  }
}

Result<std::optional<std::string>> Txn::get(Store& store, std::string_view key) const {
  if (auto it = overlay_.find(OverlayKey{&store, std::string(key)}); it != overlay_.end()) {
    return it->second;
  }
  return store.get(key);
}

void Txn::record(Store& store, std::string key, std::optional<std::string> value) {
  OverlayKey ok{&store, std::move(key)};
  auto it = overlay_.find(ok);
  if (it == overlay_.end()) {
    undo_.push_back(Undo{ok, false, std::nullopt});
    overlay_.emplace(std::move(ok), std::move(value));
  } else {
    undo_.push_back(Undo{ok, true, it->second});
    it->second = std::move(value);
  }
}

void Txn::put(Store& store, std::string key, std::string value) {
  record(store, std::move(key), std::move(value));
}

void Txn::del(Store& store, std::string key) { record(store, std::move(key), std::nullopt); }

WriteBatch Txn::take_batch() {
  WriteBatch batch;
  while (!overlay_.empty()) {
    auto node = overlay_.extract(overlay_.begin());
    Store& store = *node.key().first;
    if (node.mapped()) {
      batch.put(store, std::move(node.key().second), std::move(*node.mapped()));
    } else {
      batch.del(store, std::move(node.key().second));
    }
  }
  undo_.clear();
  return batch;
}

void Txn::rollback(const Savepoint& sp) {
  while (undo_.size() > sp.undo) {
    Undo& u = undo_.back();
    if (u.existed) {
      overlay_[u.key] = std::move(u.previous);
    } else {
      overlay_.erase(u.key);
    }
    undo_.pop_back();
  }
}

void Txn::clear() {
  overlay_.clear();
  undo_.clear();
}

Status Txn::scan(Store& store, std::string_view prefix, const ScanFn& fn, bool reverse) const {
  // This transaction's writes within the prefix, merged in order with the committed keys as the
  // store's iterator yields them (overlay entries shadow committed ones; deletes hide them). The
  // merge streams, so a visitor that stops early (a page, an expiry pass over a due prefix) reads
  // only what it visits, whatever the transaction wrote under the prefix.
  std::vector<std::pair<std::string, std::optional<std::string>>> mine;
  for (auto it = overlay_.lower_bound(OverlayKey{&store, std::string(prefix)});
       it != overlay_.end() && it->first.first == &store &&
       std::string_view(it->first.second).starts_with(prefix);
       ++it) {
    mine.emplace_back(it->first.second, it->second);
  }
  if (mine.empty()) return store.scan(prefix, fn, reverse);
  if (reverse) std::reverse(mine.begin(), mine.end());

  auto next = mine.begin();
  bool stopped = false;
  const auto before = [reverse](std::string_view a, std::string_view b) {
    return reverse ? a > b : a < b;
  };
  auto st = store.scan(
      prefix,
      [&](std::string_view k, std::string_view v) {
        for (; next != mine.end() && before(next->first, k); ++next) {
          if (next->second && !fn(next->first, *next->second)) {
            stopped = true;
            return false;
          }
        }
        if (next != mine.end() && next->first == k) {  // shadowed by this transaction
          const auto& mine_value = next->second;
          ++next;
          if (mine_value && !fn(k, *mine_value)) {
            stopped = true;
            return false;
          }
          return true;
        }
        if (!fn(k, v)) {
          stopped = true;
          return false;
        }
        return true;
      },
      reverse);
  if (!st.ok()) return st;
  for (; !stopped && next != mine.end(); ++next) {
    if (next->second && !fn(next->first, *next->second)) break;
  }
  return {};
}

std::string encode_be64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i) {
    s[i] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
  return s;
}

uint64_t decode_be64(std::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

std::string encode_be32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 3; i >= 0; --i) {
    s[i] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
  return s;
}

uint32_t decode_be32(std::string_view s) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4 && i < s.size(); ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

std::string prefix_successor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(s.back());
    if (c != 0xFF) {
      ++c;
      return s;
    }
    s.pop_back();
  }
  return s;
}

}  // namespace attune::state
