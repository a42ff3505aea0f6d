#include "topology/embedded_log.h"

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include <spdlog/spdlog.h>

namespace attune {

namespace {

using state::decode_be32;
using state::decode_be64;
using state::encode_be32;
using state::encode_be64;

std::string encode_record(int64_t ts, std::string_view key, std::string_view value) {
  std::string out;
  out.reserve(12 + key.size() + value.size());
  out += encode_be64(static_cast<uint64_t>(ts));
  out += encode_be32(static_cast<uint32_t>(key.size()));
  out += key;
  out += value;
  return out;
}

std::string tp_prefix(const TopicPartition& tp) {
  std::string k = tp.topic;
  k.push_back('\0');
  k += encode_be32(static_cast<uint32_t>(tp.partition));
  return k;
}

std::string offset_key(const std::string& group, const TopicPartition& tp) {
  std::string k = group;
  k.push_back('\0');
  k += tp_prefix(tp);
  return k;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class EmbeddedConsumer final : public Consumer {
 public:
  EmbeddedConsumer(EmbeddedLog& log, std::string group, std::map<TopicPartition, int64_t> positions)
      : log_(log), group_(std::move(group)), positions_(std::move(positions)) {
    for (auto it = positions_.begin(); it != positions_.end(); ++it) {
      if (waiter_.topics.empty() || waiter_.topics.back() != it->first.topic) {
        waiter_.topics.push_back(it->first.topic);
      }
      turns_.push_back(it);
    }
    log_.add_waiter(&waiter_);
  }
  ~EmbeddedConsumer() override { log_.remove_waiter(&waiter_); }

  std::vector<Record> poll(size_t max_records, std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<Record> out;
    for (;;) {
      if (!read_fairly(max_records, out)) return out;
      if (!out.empty()) return out;
      if (woken_.exchange(false)) return out;
      bool timed_out = false;
      {
        std::unique_lock lock(waiter_.mu);
        waiter_.cv.wait_until(lock, deadline, [&] {
          if (woken_.load()) return true;
          for (const auto& [tp, pos] : positions_) {
            if (log_.end_offset(tp) > pos) return true;
          }
          return false;
        });
      }
      if (std::chrono::steady_clock::now() >= deadline) timed_out = true;
      if (timed_out) {
        woken_.store(false);
        // One last look so a record that arrived with the deadline is not delayed a round.
        read_fairly(max_records, out);
        return out;
      }
    }
  }

  void wakeup() override {
    woken_.store(true);
    EmbeddedLog::wake(&waiter_);
  }

  std::vector<OffsetCommit> positions() const override {
    std::vector<OffsetCommit> out;
    if (group_.empty()) return out;
    out.reserve(positions_.size());
    for (const auto& [tp, pos] : positions_) out.push_back(OffsetCommit{group_, tp, pos});
    return out;
  }

  const std::string& group() const override { return group_; }

  void set_key_filter(KeyFilter filter) override {
    filter_ = filter;
    log_.set_waiter_filter(&waiter_, std::move(filter));
  }

 private:
  const KeyFilter* filter() const { return filter_ ? &filter_ : nullptr; }

  // Reads up to `max` records into `out`, the partitions taking turns: each call starts one
  // partition further than the previous one, and every partition first gets at most an equal
  // share of `max`; what the others leave goes to those that have more. So a flooded topic cannot
  // starve the other topics and partitions of the same consumer (issue 12: the projection stage
  // read a flood of events first and execution changes only once the flood ended). False on a
  // storage error (the position of that partition does not move; the caller retries).
  bool read_fairly(size_t max, std::vector<Record>& out) {
    if (turns_.empty()) return true;
    const size_t n = turns_.size();
    const size_t first = next_turn_;
    next_turn_ = (next_turn_ + 1) % n;
    const size_t share = std::max<size_t>(1, max / n);
    for (size_t limit : {share, max}) {
      for (size_t i = 0; i < n && out.size() < max; ++i) {
        auto& [tp, pos] = *turns_[(first + i) % n];
        const int64_t end = log_.end_offset(tp);
        if (end <= pos) continue;
        auto next = log_.read(tp, pos, end, std::min(limit, max - out.size()), out, filter());
        if (!next.ok()) return false;
        pos = *next;
      }
      if (out.size() >= max || share >= max) break;  // one partition: one pass is all
    }
    return true;
  }

  EmbeddedLog& log_;
  KeyFilter filter_;  // the polling thread's copy
  const std::string group_;
  std::map<TopicPartition, int64_t> positions_;
  std::vector<std::map<TopicPartition, int64_t>::iterator> turns_;  // positions_, in turn order
  size_t next_turn_ = 0;
  std::atomic<bool> woken_{false};
  EmbeddedLog::Waiter waiter_;
};

}  // namespace

std::vector<TopicConfig> default_topics(int32_t partitions) {
  return {
      {std::string(topics::kDefinitions), 1, true},
      {std::string(topics::kWebhooks), partitions, false},
      {std::string(topics::kEvents), partitions, false},
      {std::string(topics::kEnforcements), partitions, false},
      {std::string(topics::kCommands), partitions, false},
      {std::string(topics::kExecutions), partitions, false},
      {std::string(topics::kDispatch), partitions, false},
      {std::string(topics::kResults), partitions, false},
      {std::string(topics::kDeadletter), 1, false},
      {std::string(topics::kEventsIngress), partitions, false},
      {std::string(topics::kWorkers), 1, true},
      {std::string(topics::kAdmission), partitions, false},
  };
}

std::string EmbeddedLog::log_key(const TopicPartition& tp, int64_t offset) {
  return tp_prefix(tp) + encode_be64(static_cast<uint64_t>(offset));
}

EmbeddedLog::EmbeddedLog(state::Db& db, state::Store* log, state::Store* offsets,
                         state::Store* meta)
    : db_(db), log_(log), offsets_(offsets), meta_(meta) {}

Result<std::unique_ptr<EmbeddedLog>> EmbeddedLog::open(state::Db& db,
                                                       std::vector<TopicConfig> topic_configs) {
  auto log = db.store(kLogStore);
  if (!log.ok()) return log.error();
  auto offsets = db.store("__offsets");
  if (!offsets.ok()) return offsets.error();
  auto meta = db.store("__meta");
  if (!meta.ok()) return meta.error();
  auto self = std::unique_ptr<EmbeddedLog>(new EmbeddedLog(db, *log, *offsets, *meta));

  state::WriteBatch meta_batch;
  for (auto& t : topic_configs) {
    const std::string mk = "topic/" + t.name;
    auto stored = (*meta)->get(mk);
    if (!stored.ok()) return stored.error();
    if (stored->has_value()) {
      t.partitions = static_cast<int32_t>(decode_be32(**stored));
    } else {
      meta_batch.put(**meta, mk, encode_be32(static_cast<uint32_t>(t.partitions)));
    }
    for (int32_t p = 0; p < t.partitions; ++p) {
      TopicPartition tp{t.name, p};
      int64_t next = 0;
      auto st = (*log)->scan(
          tp_prefix(tp),
          [&](std::string_view k, std::string_view) {
            next = static_cast<int64_t>(decode_be64(k.substr(k.size() - 8))) + 1;
            return false;
          },
          /*reverse=*/true);
      if (!st.ok()) return st.error();
      self->next_offset_[tp] = next;
      self->end_offset_[tp] = next;
    }
    self->topics_.emplace(t.name, t);
  }
  if (!meta_batch.empty()) {
    auto st = db.write(meta_batch);
    if (!st.ok()) return st.error();
  }
  return self;
}

int32_t EmbeddedLog::partitions(std::string_view topic) const {
  auto it = topics_.find(topic);
  return it == topics_.end() ? 0 : it->second.partitions;
}

int64_t EmbeddedLog::end_offset(const TopicPartition& tp) const {
  std::lock_guard lock(end_mu_);
  auto it = end_offset_.find(tp);
  return it == end_offset_.end() ? 0 : it->second;
}

Result<int64_t> EmbeddedLog::committed(const std::string& group, const TopicPartition& tp) const {
  auto v = offsets_->get(offset_key(group, tp));
  if (!v.ok()) return v.error();
  if (!v->has_value()) return int64_t{-1};
  return static_cast<int64_t>(decode_be64(**v));
}

void EmbeddedLog::add_waiter(Waiter* w) {
  std::lock_guard lock(waiters_mu_);
  waiters_.push_back(w);
}

void EmbeddedLog::remove_waiter(Waiter* w) {
  std::lock_guard lock(waiters_mu_);
  waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), w), waiters_.end());
  note_filtered_topics();
}

void EmbeddedLog::note_filtered_topics() {
  filtered_topics_.clear();
  for (const Waiter* x : waiters_) {
    if (!x->filter) continue;
    for (const auto& t : x->topics) {
      auto known = topics_.find(t);
      if (known == topics_.end()) continue;
      if (std::find(filtered_topics_.begin(), filtered_topics_.end(), known->first) ==
          filtered_topics_.end()) {
        filtered_topics_.push_back(known->first);  // a view of the (stable) topic map's key
      }
    }
  }
}

void EmbeddedLog::set_waiter_filter(Waiter* w, KeyFilter filter) {
  std::lock_guard lock(waiters_mu_);
  w->filter = std::move(filter);
  note_filtered_topics();
}

int EmbeddedLog::add_append_listener(std::string_view topic, std::function<void()> fn) {
  std::unique_lock lock(listeners_mu_);
  const int id = next_listener_id_++;
  listeners_.push_back(Listener{id, std::string(topic), std::move(fn)});
  return id;
}

void EmbeddedLog::remove_append_listener(int id) {
  std::unique_lock lock(listeners_mu_);  // waits for a running call to end
  listeners_.erase(std::remove_if(listeners_.begin(), listeners_.end(),
                                  [&](const Listener& l) { return l.id == id; }),
                   listeners_.end());
}

Status EmbeddedLog::trim(const TopicPartition& tp, int64_t offset) {
  if (offset <= 0) return {};
  state::WriteBatch batch;
  batch.del_range(*log_, log_key(tp, 0), log_key(tp, offset));
  auto st = db_.write(batch);
  if (st.ok()) forget_recent(tp, offset);
  return st;
}

void EmbeddedLog::forget_recent(const TopicPartition& tp, std::optional<int64_t> below) {
  std::lock_guard lock(recent_mu_);
  auto it = recent_.find(tp);
  if (it == recent_.end()) return;
  Window& w = it->second;
  if (!below) {
    w.items.clear();
    w.bytes = 0;
    return;
  }
  while (!w.items.empty() && w.items.front().offset < *below) {
    w.bytes -= weight(w.items.front());
    w.items.pop_front();
  }
}

Result<int64_t> EmbeddedLog::compact(const TopicPartition& tp) {
  std::lock_guard lock(compact_mu_);
  Compaction& c = compaction_[tp];
  const int64_t end = end_offset(tp);
  // Incremental: only the records appended since the last compaction are read (the first one
  // after opening reads everything); each supersedes the newest earlier record of its key.
  std::vector<int64_t> superseded;
  auto st = log_->scan(
      tp_prefix(tp),
      [&](std::string_view k, std::string_view v) {
        const auto off = static_cast<int64_t>(decode_be64(k.substr(k.size() - 8)));
        if (off >= end) return false;
        if (v.size() < 12) return true;
        const uint32_t klen = decode_be32(v.substr(8, 4));
        const std::string_view key = v.substr(12, klen);
        if (auto it = c.newest.find(key); it != c.newest.end()) {
          superseded.push_back(it->second);
          it->second = off;
        } else {
          c.newest.emplace(std::string(key), off);
        }
        return true;
      },
      false, log_key(tp, c.scanned));
  if (!st.ok()) {
    compaction_.erase(tp);  // start over next time
    return st.error();
  }
  c.scanned = end;
  // Deleted in small batches: one write of every superseded record (hundreds of thousands after
  // a burst of datastore writes) would hold up the log's own writes behind it for a long while.
  constexpr size_t kDeletesPerWrite = 1024;
  state::WriteBatch batch;
  for (size_t i = 0; i < superseded.size(); ++i) {
    batch.del(*log_, log_key(tp, superseded[i]));
    if (batch.size() >= kDeletesPerWrite || i + 1 == superseded.size()) {
      if (auto w = db_.write(batch); !w.ok()) {
        compaction_.erase(tp);  // the rest is found again by a full pass
        return w.error();
      }
      batch = state::WriteBatch();
    }
  }
  if (superseded.empty()) return int64_t{0};
  forget_recent(tp, std::nullopt);  // the window holds only contiguous offsets: start it anew
  return static_cast<int64_t>(superseded.size());
}

Result<int64_t> EmbeddedLog::read(const TopicPartition& tp, int64_t offset, int64_t end,
                                  size_t max, std::vector<Record>& out,
                                  const KeyFilter* filter) const {
  int64_t next = offset;
  {
    std::lock_guard lock(recent_mu_);
    auto it = recent_.find(tp);
    if (it != recent_.end() && !it->second.items.empty() &&
        it->second.items.front().offset <= offset && offset <= it->second.items.back().offset) {
      const auto& recent = it->second.items;
      for (auto i = static_cast<size_t>(offset - recent.front().offset);
           i < recent.size() && recent[i].offset < end && max > 0; ++i, --max) {
        const Recent& e = recent[i];
        next = e.offset + 1;
        if (filter && !(*filter)(e.key)) continue;
        Record r;
        r.topic = tp.topic;
        r.partition = tp.partition;
        r.offset = e.offset;
        r.timestamp_ms = e.timestamp_ms;
        r.key = e.key;
        r.value = e.value;
        r.parsed = e.parsed;
        out.push_back(std::move(r));
      }
      return next;
    }
  }
  const std::string prefix = tp_prefix(tp);
  const std::string start = log_key(tp, offset);
  const size_t before = out.size();
  size_t n = 0;
  bool full = false;
  auto st = log_->scan(
      prefix,
      [&](std::string_view k, std::string_view v) {
        const auto off = static_cast<int64_t>(decode_be64(k.substr(k.size() - 8)));
        if (off >= end) return false;
        if (n >= max) {
          full = true;
          return false;
        }
        ++n;
        next = off + 1;
        if (v.size() < 12) return true;  // cannot happen: we write every record
        const uint32_t klen = decode_be32(v.substr(8, 4));
        const std::string_view key = v.substr(12, klen);
        if (filter && !(*filter)(key)) return true;
        Record r;
        r.topic = tp.topic;
        r.partition = tp.partition;
        r.offset = off;
        r.timestamp_ms = static_cast<int64_t>(decode_be64(v.substr(0, 8)));
        r.key = std::string(key);
        r.value = std::string(v.substr(12 + klen));
        out.push_back(std::move(r));
        return true;
      },
      false, start);
  if (!st.ok()) {
    out.resize(before);  // nothing read: the position does not move, so nothing is read twice
    return st.error();
  }
  // Everything below `end` was looked at: offsets missing there (compacted away) are done too.
  return full ? next : std::max(next, end);
}

EmbeddedLog::~EmbeddedLog() {
  std::unique_lock lock(commit_mu_);
  stopping_ = true;
  commit_cv_.notify_all();
  async_cv_.notify_all();
  if (async_leader_.joinable()) {
    lock.unlock();
    async_leader_.join();
    lock.lock();
  }
  // Whatever is still queued is written now, so every callback runs exactly once.
  while (!queue_.empty()) {
    if (!leading_) {
      lead(lock);
    } else {
      commit_cv_.wait(lock);
    }
  }
}

Status EmbeddedLog::validate(const Transaction& txn) const {
  for (const auto& r : txn.records) {
    auto it = topics_.find(r.topic);
    if (it == topics_.end()) return make_error(Errc::kInternal, "unknown topic " + r.topic);
    if (r.partition >= it->second.partitions) {
      return make_error(Errc::kInternal, "partition out of range for " + r.topic);
    }
  }
  return {};
}

void EmbeddedLog::commit_async(Transaction txn, CommitCallback done) {
  if (auto st = validate(txn); !st.ok()) {
    done(st.error());
    return;
  }
  auto* p = new Pending{};
  p->owned = std::move(txn);
  p->txn = &p->owned;
  p->callback = std::move(done);
  std::unique_lock lock(commit_mu_);
  queue_.push_back(p);
  ++async_queued_;
  if (!leading_) {
    // Commits queued meanwhile are written here too, a few groups at most, rather than by
    // waking the async leader (a thread hand-off costs more than the write on small machines).
    for (int groups = 0; groups < kInlineGroups; ++groups) {
      lead(lock, /*hand_off=*/false);
      if (leading_ || async_queued_ == 0) break;
    }
    if (leading_ || async_queued_ == 0) return;
  }
  // The leader is busy with an earlier group (or this thread wrote enough): the async leader
  // writes this one unless a waiting committer takes the lead first.
  if (!async_leader_.joinable() && !stopping_) {
    async_leader_ = std::thread([this] { async_leader_loop(); });
  }
  if (!leading_) async_cv_.notify_one();
}

void EmbeddedLog::async_leader_loop() {
  std::unique_lock lock(commit_mu_);
  for (;;) {
    async_cv_.wait(lock, [&] { return stopping_ || (!leading_ && async_queued_ > 0); });
    if (stopping_) return;
    lead(lock);
  }
}

Result<std::vector<RecordPosition>> EmbeddedLog::commit(Transaction txn) {
  if (auto st = validate(txn); !st.ok()) return st.error();
  Pending p{&txn, {}, {}, false};
  std::unique_lock lock(commit_mu_);
  queue_.push_back(&p);
  while (!p.done) {
    if (!leading_) {
      lead(lock);
    } else {
      commit_cv_.wait(lock);
    }
  }
  if (!p.status.ok()) return p.status.error();
  return std::move(p.positions);
}

void EmbeddedLog::lead(std::unique_lock<std::mutex>& lock, bool hand_off) {
  leading_ = true;
  std::deque<Pending*> group;
  group.swap(queue_);
  async_queued_ = 0;
  // The partitions this group appends to, with their next offset before it (to roll back on a
  // failed write, and to publish only what moved).
  std::vector<std::pair<TopicPartition, int64_t>> touched;
  const int64_t ts = now_ms();
  state::WriteBatch log_batch;
  std::vector<std::string> written;  // topics with new records, to wake their consumers
  std::vector<const state::WriteBatch*> batches;
  batches.push_back(&log_batch);
  for (Pending* p : group) {
    for (const auto& r : p->txn->records) {
      const int32_t n = topics_.find(r.topic)->second.partitions;
      TopicPartition tp{r.topic, r.partition >= 0 ? r.partition : partition_for(r.key, n)};
      int64_t& next = next_offset_[tp];
      if (std::none_of(touched.begin(), touched.end(),
                       [&](const auto& t) { return t.first == tp; })) {
        touched.emplace_back(tp, next);
      }
      const int64_t off = next++;
      log_batch.put(*log_, log_key(tp, off), encode_record(ts, r.key, r.value));
      if (std::find(written.begin(), written.end(), r.topic) == written.end()) {
        written.push_back(r.topic);
      }
      p->positions.push_back(RecordPosition{std::move(tp), off});
    }
    for (const auto& o : p->txn->offsets) {
      log_batch.put(*offsets_, offset_key(o.group, o.tp),
                    encode_be64(static_cast<uint64_t>(o.next_offset)));
    }
    batches.push_back(&p->txn->state);
  }
  // Filtered consumers (Consumer::set_key_filter) are woken only for records they take: their
  // keys, noted before the records move into the window.
  std::vector<std::pair<std::string_view, std::string>> keys;  // (topic, key)
  // The topics whose keys were noted: a filter set meanwhile on another topic cannot be checked,
  // so its waiter is woken.
  std::vector<std::string_view> keyed_topics;
  {
    std::lock_guard waiters_lock(waiters_mu_);
    if (!filtered_topics_.empty()) {
      keyed_topics = filtered_topics_;
      for (Pending* p : group) {
        for (const auto& r : p->txn->records) {
          if (std::find(filtered_topics_.begin(), filtered_topics_.end(), r.topic) ==
              filtered_topics_.end()) {
            continue;  // no filtered consumer reads this topic
          }
          keys.emplace_back(topics_.find(r.topic)->first, r.key);
        }
      }
    }
  }
  lock.unlock();
  Status st = db_.write(batches);
  lock.lock();
  if (!st.ok()) {
    for (const auto& [tp, before] : touched) next_offset_[tp] = before;
  } else {
    {
      std::lock_guard recent_lock(recent_mu_);
      for (Pending* p : group) {
        for (size_t i = 0; i < p->txn->records.size(); ++i) {
          auto& r = p->txn->records[i];
          Window& w = recent_[p->positions[i].tp];
          // The transaction is spent once written: its strings move into the window.
          w.items.push_back(Recent{p->positions[i].offset, ts, std::move(r.key),
                                   std::move(r.value), std::move(r.parsed)});
          w.bytes += weight(w.items.back());
          while (w.items.size() > kRecentRecords ||
                 (w.bytes > kRecentBytes && !w.items.empty())) {
            w.bytes -= weight(w.items.front());
            w.items.pop_front();
          }
        }
      }
    }
    {
      std::lock_guard end_lock(end_mu_);
      for (const auto& [tp, before] : touched) end_offset_[tp] = next_offset_[tp];
    }
    // Still leading: listener calls are serial and in offset order.
    lock.unlock();
    {
      std::shared_lock listeners_lock(listeners_mu_);
      for (const Listener& l : listeners_) {
        if (std::find(written.begin(), written.end(), l.topic) == written.end()) continue;
        try {
          l.fn();
        } catch (const std::exception& e) {
          spdlog::error("log: append listener of {} failed: {}", l.topic, e.what());
        } catch (...) {
          spdlog::error("log: append listener of {} failed", l.topic);
        }
      }
    }
    lock.lock();
  }
  std::vector<Pending*> finished_async;
  for (Pending* p : group) {
    p->status = st;
    if (!st.ok()) p->positions.clear();
    p->done = true;
    if (p->callback) finished_async.push_back(p);
  }
  leading_ = false;
  commit_cv_.notify_all();
  if (hand_off && async_queued_ > 0) async_cv_.notify_one();
  if ((st.ok() && !written.empty()) || !finished_async.empty()) {
    lock.unlock();  // consumers may commit (and so take commit_mu_) as soon as they wake
    if (st.ok() && !written.empty()) {
      std::lock_guard waiters_lock(waiters_mu_);
      for (Waiter* w : waiters_) {
        const bool wanted = std::any_of(w->topics.begin(), w->topics.end(), [&](const auto& t) {
          if (std::find(written.begin(), written.end(), t) == written.end()) return false;
          const bool keyed =
              std::find(keyed_topics.begin(), keyed_topics.end(), t) != keyed_topics.end();
          return !w->filter || !keyed || std::any_of(keys.begin(), keys.end(), [&](const auto& k) {
                   return k.first == t && w->filter(k.second);
                 });
        });
        if (wanted) wake(w);
      }
    }
    for (Pending* p : finished_async) {
      try {
        if (p->status.ok()) {
          p->callback(std::move(p->positions));
        } else {
          p->callback(p->status.error());
        }
      } catch (const std::exception& e) {
        spdlog::error("log: commit callback failed: {}", e.what());
      } catch (...) {
        spdlog::error("log: commit callback failed");
      }
      delete p;
    }
    lock.lock();
  }
}

Result<std::unique_ptr<Consumer>> EmbeddedLog::subscribe(std::string group,
                                                         std::vector<std::string> topic_names,
                                                         std::vector<int32_t> parts,
                                                         bool from_beginning) {
  std::map<TopicPartition, int64_t> positions;
  for (const auto& name : topic_names) {
    const int32_t n = partitions(name);
    if (n == 0) return make_error(Errc::kInternal, "unknown topic " + name);
    std::vector<int32_t> assigned;
    if (parts.empty()) {
      for (int32_t p = 0; p < n; ++p) assigned.push_back(p);
    } else {
      for (int32_t p : parts) {
        if (p < n) assigned.push_back(p);
      }
    }
    for (int32_t p : assigned) {
      TopicPartition tp{name, p};
      auto c = committed(group, tp);
      if (!c.ok()) return c.error();
      positions[tp] = *c >= 0 ? *c : (from_beginning ? 0 : end_offset(tp));
    }
  }
  return std::unique_ptr<Consumer>(
      std::make_unique<EmbeddedConsumer>(*this, std::move(group), std::move(positions)));
}

Result<std::unique_ptr<Consumer>> EmbeddedLog::reader(std::vector<std::string> topic_names) {
  std::map<TopicPartition, int64_t> positions;
  for (const auto& name : topic_names) {
    const int32_t n = partitions(name);
    if (n == 0) return make_error(Errc::kInternal, "unknown topic " + name);
    for (int32_t p = 0; p < n; ++p) positions[TopicPartition{name, p}] = 0;
  }
  return std::unique_ptr<Consumer>(
      std::make_unique<EmbeddedConsumer>(*this, std::string(), std::move(positions)));
}

}  // namespace attune
