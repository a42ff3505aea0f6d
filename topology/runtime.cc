#include "topology/runtime.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>

namespace attune {

void AppliedOffsets::advance(const std::string& stage, const TopicPartition& tp,
                             int64_t next_offset) {
  {
    std::lock_guard lock(mu_);
    auto& v = next_[{stage, tp}];
    if (next_offset <= v) return;
    v = next_offset;
  }
  cv_.notify_all();
}

void AppliedOffsets::committed(const std::string& stage, const TopicPartition& tp,
                               int64_t next_offset) {
  std::lock_guard lock(mu_);
  auto& v = committed_[{stage, tp}];
  v = std::max(v, next_offset);
}

bool AppliedOffsets::wait(const std::string& stage, const TopicPartition& tp, int64_t offset,
                          std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  const auto key = std::make_pair(stage, tp);
  return cv_.wait_for(lock, timeout, [&] {
    auto it = next_.find(key);
    return it != next_.end() && it->second > offset;
  });
}

int64_t AppliedOffsets::applied(const std::string& stage, const TopicPartition& tp) const {
  std::lock_guard lock(mu_);
  auto it = next_.find({stage, tp});
  return it == next_.end() ? 0 : it->second;
}

std::vector<std::pair<TopicPartition, int64_t>> AppliedOffsets::of(const std::string& stage) const {
  std::vector<std::pair<TopicPartition, int64_t>> out;
  std::lock_guard lock(mu_);
  for (auto it = committed_.lower_bound({stage, TopicPartition{}});
       it != committed_.end() && it->first.first == stage; ++it) {
    out.emplace_back(it->first.second, it->second);
  }
  return out;
}

// One stage instance: a thread, a consumer, a processor, a mailbox.
class Runtime::Instance final : public ProcessorContext, public Mailbox {
 public:
  Instance(Runtime& rt, const StageSpec& spec, int index)
      : rt_(rt), spec_(spec), index_(index) {}

  Status open() {
    for (const auto& s : spec_.stores) {
      auto store = rt_.log_.db().store(spec_.name + "." + s);
      if (!store.ok()) return store.error();
      stores_.emplace(s, *store);
    }
    std::vector<std::string> full_names;
    for (const auto& s : spec_.stores) full_names.push_back(spec_.name + "." + s);
    if (auto st = rt_.log_.attach_stores(spec_.name, full_names); !st.ok()) return st;
    std::vector<int32_t> parts;
    if (spec_.instances > 1 && !rt_.log_.balances_groups()) {
      int32_t max_parts = 0;
      for (const auto& t : spec_.topics) max_parts = std::max(max_parts, rt_.log_.partitions(t));
      for (int32_t p = index_; p < max_parts; p += spec_.instances) parts.push_back(p);
      if (parts.empty()) parts.push_back(max_parts);  // more instances than partitions: idle
    }
    if (!spec_.topics.empty()) {
      auto c = rt_.log_.subscribe(spec_.name, spec_.topics, parts, true);
      if (!c.ok()) return c.error();
      consumer_ = std::move(*c);
      if (spec_.key_filter) consumer_->set_key_filter(spec_.key_filter);
      consumer_->set_return_on_rebalance(true);  // Processor::assigned() without delay
      // What a previous run committed is applied already: readers waiting for an offset
      // below the starting position (read-your-writes after a restart) must not wait for a
      // record that will never be processed again.
      for (const auto& o : consumer_->positions()) {
        rt_.applied_.committed(spec_.name, o.tp, o.next_offset);
        rt_.applied_.advance(spec_.name, o.tp, o.next_offset);
        stored_offsets_[o.tp] = o.next_offset;
      }
    }
    processor_ = spec_.factory(index_);
    return {};
  }

  void start() {
    thread_ = std::thread([this] {
      // "<stage>/<instance>" in top -H, perf and /proc/<pid>/task/*/comm (15 chars at most).
      const std::string name = (spec_.name + "/" + std::to_string(index_)).substr(0, 15);
      pthread_setname_np(pthread_self(), name.c_str());
      run();
    });
  }

  void request_stop() {
    stopping_.store(true);
    wake();
  }

  void join() {
    if (thread_.joinable()) thread_.join();
  }

  // Mailbox
  void post(Task task) override {
    {
      std::lock_guard lock(mailbox_mu_);
      tasks_.push_back(std::move(task));
    }
    wake();
  }

  // ProcessorContext
  state::Store& store(std::string_view name) override {
    auto it = stores_.find(std::string(name));
    if (it == stores_.end()) {
      throw std::logic_error("stage " + spec_.name + " has no store " + std::string(name));
    }
    return *it->second;
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
  void forward(OutRecord record) override { out_.push_back(std::move(record)); }
  void after_commit(std::function<void()> fn) override { hooks_.push_back(std::move(fn)); }
  const Clock& clock() const override { return *rt_.options_.clock; }
  IdGenerator& ids() override { return *rt_.options_.ids; }
  Mailbox& mailbox() override { return *this; }
  Log& log() override { return rt_.log_; }
  const std::string& stage() const override { return spec_.name; }
  int instance() const override { return index_; }
  void request_punctuate(SystemTime at) override {
    if (!requested_punctuate_ || at < *requested_punctuate_) requested_punctuate_ = at;
  }
  void pause_input(bool paused) override { input_paused_ = paused; }

 private:
  void wake() {
    if (consumer_) consumer_->wakeup();
    std::lock_guard lock(mailbox_mu_);  // a paused stage waits here rather than in poll()
    idle_cv_.notify_all();
  }

  std::vector<Task> take_tasks() {
    std::lock_guard lock(mailbox_mu_);
    std::vector<Task> out(std::make_move_iterator(tasks_.begin()),
                          std::make_move_iterator(tasks_.end()));
    tasks_.clear();
    return out;
  }

  // Runs fn with savepoint protection: on an exception its effects are rolled back.
  template <class Fn>
  bool guarded(Fn&& fn, std::string& reason) {
    const auto sp = txn_.savepoint();
    const size_t out_mark = out_.size();
    const size_t hook_mark = hooks_.size();
    try {
      fn();
      return true;
    } catch (const std::exception& e) {
      reason = e.what();
    }
    txn_.rollback(sp);
    out_.resize(out_mark);
    hooks_.resize(hook_mark);
    return false;
  }

  void dead_letter(const Record& r, const std::string& reason) {
    spdlog::warn("{}: dead-lettering {}[{}]@{}: {}", spec_.name, r.topic, r.partition, r.offset,
                 reason);
    Json v = {{"reason", reason},         {"stage", spec_.name},   {"source_topic", r.topic},
              {"partition", r.partition}, {"offset", r.offset},    {"key", r.key},
              {"received_at", clock().now_ms()}};
    Json parsed = Json::parse(r.value, nullptr, false);
    if (parsed.is_discarded()) {
      v["original_value"] = r.value;  // dumped with replacement of invalid UTF-8 below
    } else {
      v["original_value"] = std::move(parsed);
    }
    out_.push_back(OutRecord{std::string(topics::kDeadletter), r.topic,
                             v.dump(-1, ' ', false, Json::error_handler_t::replace)});
    if (rt_.options_.on_dead_letter) rt_.options_.on_dead_letter(spec_.name, r, reason);
  }

  // A punctuation asked for (request_punctuate) moves `next` earlier, and is consumed.
  void take_requested_punctuate(std::optional<SystemTime>& next) {
    if (!requested_punctuate_) return;
    if (!next || *requested_punctuate_ < *next) next = requested_punctuate_;
    requested_punctuate_.reset();
  }

  void run() {
    std::string reason;
    if (!guarded([&] { processor_->init(*this); }, reason)) {
      spdlog::critical("{}[{}]: init failed: {}", spec_.name, index_, reason);
      rt_.failed_.store(true);
      return;
    }
    std::optional<SystemTime> next_punctuate = clock().now();
    while (!stopping_.load()) {
      take_requested_punctuate(next_punctuate);  // by a commit hook or task: counts for this wait
      auto timeout = std::chrono::milliseconds(1000);
      if (next_punctuate) {
        const auto until = std::chrono::duration_cast<std::chrono::milliseconds>(
            *next_punctuate - clock().now());
        timeout = std::clamp(until, std::chrono::milliseconds(0), timeout);
      }
      if (offsets_pending_) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            last_commit_ + spec_.lazy_offsets - std::chrono::steady_clock::now());
        timeout = std::clamp(left, std::chrono::milliseconds(0), timeout);
      }
      std::vector<Record> records;
      const bool held = spec_.hold && spec_.hold();
      if (held) timeout = std::min(timeout, std::chrono::milliseconds(StageSpec::kHoldRecheck));
      if (consumer_ && !input_paused_ && !held) {
        records = consumer_->poll(batch_limit_, timeout);
      } else {
        if (consumer_) consumer_->keep_alive();
        std::unique_lock lock(mailbox_mu_);
        idle_cv_.wait_for(lock, timeout, [&] { return !tasks_.empty() || stopping_.load(); });
      }
      if (consumer_ && consumer_->assignment_generation() != assignment_generation_) {
        // Partitions moved (Kafka rebalance, inside poll()): before any record of them.
        assignment_generation_ = consumer_->assignment_generation();
        const std::vector<TopicPartition> owned = consumer_->assignment();
        if (!guarded([&] { processor_->assigned(owned, *this); }, reason)) {
          spdlog::error("{}[{}]: assignment change failed: {}", spec_.name, index_, reason);
        }
      }
      for (auto& task : take_tasks()) {
        if (!guarded([&] { task(*this); }, reason)) {
          spdlog::error("{}[{}]: task failed: {}", spec_.name, index_, reason);
        }
      }
      const auto batch_start = std::chrono::steady_clock::now();
      for (size_t i = 0; i < records.size(); ++i) {
        const Record& r = records[i];
        if (!guarded([&] { processor_->process(r, *this); }, reason)) dead_letter(r, reason);
        // The timestamp of the last record of each run of one partition (Runtime::lag).
        if (i + 1 == records.size() || records[i + 1].partition != r.partition ||
            records[i + 1].topic != r.topic) {
          last_ts_[TopicPartition{r.topic, r.partition}] = r.timestamp_ms;
        }
      }
      // Only processing counts: a commit's fixed cost (an fsync) must not shrink every batch.
      if (!records.empty()) {
        adapt_batch(records.size(), std::chrono::steady_clock::now() - batch_start);
      }
      take_requested_punctuate(next_punctuate);
      const auto now = clock().now();
      if (next_punctuate && now >= *next_punctuate) {
        std::optional<SystemTime> next;
        if (!guarded([&] { next = processor_->punctuate(now, *this); }, reason)) {
          spdlog::error("{}[{}]: punctuate failed: {}", spec_.name, index_, reason);
        }
        next_punctuate = next;
        take_requested_punctuate(next_punctuate);  // asked for during punctuate() itself
      }
      if (!commit(!records.empty() || skipped_records())) return;
      // Nothing in flight: the positions are applied. This makes a partition that was just
      // assigned (Kafka) and has nothing new count as caught up rather than as behind by all of it.
      if (records.empty() && !offsets_pending_ && consumer_) {
        for (const auto& o : consumer_->positions()) {
          rt_.applied_.advance(spec_.name, o.tp, o.next_offset);
        }
      }
    }
    if (offsets_pending_) commit(false, /*force=*/true);  // a clean stop replays nothing
    processor_->close();
  }

  bool commit(bool consumed, bool force = false) {
    const auto now = std::chrono::steady_clock::now();
    if (txn_.empty() && out_.empty()) {
      const bool lazy = !force && spec_.lazy_offsets.count() > 0 &&
                        now < last_commit_ + spec_.lazy_offsets;
      if ((!consumed && !offsets_pending_) || ((consumed || offsets_pending_) && lazy)) {
        offsets_pending_ = offsets_pending_ || consumed;
        run_hooks();
        return true;
      }
    }
    last_commit_ = now;
    offsets_pending_ = false;
    Transaction t;
    t.state = txn_.take_batch();
    t.records = std::move(out_);
    // Only the positions that moved since the last commit: every other one is stored already
    // (a consumer reads several topics and partitions; most commits move one or two of them).
    if (consumer_) {
      for (auto& o : consumer_->positions()) {
        auto it = stored_offsets_.find(o.tp);
        if (it == stored_offsets_.end() || it->second != o.next_offset) {
          t.offsets.push_back(std::move(o));
        }
      }
    }
    auto offsets = t.offsets;
    auto res = rt_.log_.commit(std::move(t));
    txn_.clear();
    out_.clear();
    if (!res.ok()) {
      spdlog::critical("{}[{}]: commit failed, stopping: {}", spec_.name, index_,
                       res.error().message);
      rt_.failed_.store(true);
      hooks_.clear();
      return false;
    }
    // Hooks first (e.g. change notifications), then the applied offsets that release
    // read-your-writes waiters: a notification is never later than a REST read (DESIGN.md §5).
    for (const auto& o : offsets) {
      rt_.applied_.committed(spec_.name, o.tp, o.next_offset);
      stored_offsets_[o.tp] = o.next_offset;
    }
    run_hooks();
    for (const auto& o : offsets) rt_.applied_.advance(spec_.name, o.tp, o.next_offset);
    for (const auto& [tp, ts] : last_ts_) rt_.note_applied_ts(spec_.name, tp, ts);
    last_ts_.clear();
    return true;
  }

  // StageSpec::batch_time: the next poll takes fewer records after a batch whose processing
  // took too long, more after a full one that was quick.
  void adapt_batch(size_t taken, std::chrono::steady_clock::duration took) {
    if (spec_.batch_time.count() <= 0) return;
    if (took > spec_.batch_time) {
      batch_limit_ = std::max(std::min(StageSpec::kMinBatch, spec_.max_batch), batch_limit_ / 2);
    } else if (taken >= batch_limit_ && took < spec_.batch_time / 2) {
      batch_limit_ = std::min(spec_.max_batch, batch_limit_ * 2);
    }
  }

  // A filtered consumer (StageSpec::key_filter) moves past the records it skips without
  // returning them: those count as consumed (their offsets are committed like any other).
  bool skipped_records() {
    if (!spec_.key_filter || !consumer_) return false;
    std::vector<int64_t> now;
    for (const auto& o : consumer_->positions()) now.push_back(o.next_offset);
    if (now == polled_positions_) return false;
    polled_positions_ = std::move(now);
    return true;
  }

  void run_hooks() {
    auto hooks = std::move(hooks_);
    hooks_.clear();
    for (auto& h : hooks) h();
  }

  Runtime& rt_;
  const StageSpec& spec_;
  const int index_;
  std::map<std::string, state::Store*> stores_;
  std::unique_ptr<Consumer> consumer_;
  std::unique_ptr<Processor> processor_;
  size_t batch_limit_ = spec_.max_batch;           // StageSpec::batch_time; stage thread only
  bool input_paused_ = false;                      // pause_input(); stage thread only
  uint64_t assignment_generation_ = 0;             // last one Processor::assigned() saw
  std::optional<SystemTime> requested_punctuate_;  // stage thread only
  std::thread thread_;
  std::atomic<bool> stopping_{false};

  state::Txn txn_;
  std::vector<OutRecord> out_;
  // StageSpec::lazy_offsets: consumed offsets not committed yet, and when the last commit was.
  bool offsets_pending_ = false;
  std::vector<int64_t> polled_positions_;  // skipped_records(): positions at the last look
  std::chrono::steady_clock::time_point last_commit_{};
  std::vector<std::function<void()>> hooks_;
  std::map<TopicPartition, int64_t> last_ts_;  // of the records processed since the last commit
  // The position committed last per partition (from the consumer's start positions on): commit()
  // writes only those that moved.
  std::map<TopicPartition, int64_t> stored_offsets_;

  std::mutex mailbox_mu_;
  std::condition_variable idle_cv_;
  std::deque<Task> tasks_;
};

Runtime::Runtime(Log& log, const Topology& topology, RuntimeOptions options)
    : log_(log), topology_(topology), options_(std::move(options)) {}

Runtime::~Runtime() { stop(); }

Status Runtime::start() {
  if (!options_.ids) return make_error(Errc::kInternal, "Runtime needs an IdGenerator");
  std::vector<std::unique_ptr<Instance>> instances;
  for (const auto& spec : topology_.stages()) {
    for (int i = 0; i < spec.instances; ++i) {
      auto inst = std::make_unique<Instance>(*this, spec, i);
      auto st = inst->open();
      if (!st.ok()) return make_error(st.error().code, spec.name + ": " + st.error().message);
      instances.push_back(std::move(inst));
    }
  }
  instances_ = std::move(instances);
  started_ms_ = options_.clock->now_ms();
  for (auto& inst : instances_) inst->start();
  started_.store(true);
  return {};
}

Result<int64_t> Runtime::trim_consumed(int64_t keep) {
  std::map<std::string, std::vector<std::string>> readers;  // topic → groups
  for (const auto& spec : topology_.stages()) {
    for (const auto& t : spec.topics) readers[t].push_back(spec.name);
  }
  int64_t dropped = 0;
  for (const auto& [topic, groups] : readers) {
    if (topic == topics::kDefinitions) continue;  // compacted: every reader replays it
    for (int32_t p = 0; p < log_.partitions(topic); ++p) {
      const TopicPartition tp{topic, p};
      int64_t low = log_.end_offset(tp);
      for (const auto& g : groups) {
        auto c = log_.committed(g, tp);
        if (!c.ok()) return c.error();
        low = std::min(low, std::max<int64_t>(*c, 0));
      }
      const int64_t below = low - keep;
      auto& done = trimmed_[tp];
      if (below <= done) continue;
      if (auto st = log_.trim(tp, below); !st.ok()) return st.error();
      dropped += below - done;
      done = below;
    }
  }
  return dropped;
}

int64_t Runtime::backlog(const std::string& stage, std::string_view topic) const {
  if (!started_.load()) return 0;
  for (const auto& spec : topology_.stages()) {
    if (spec.name != stage) continue;
    int64_t behind = 0;
    for (const auto& t : spec.topics) {
      if (!topic.empty() && t != topic) continue;
      for (int32_t p = 0; p < log_.partitions(t); ++p) {
        const TopicPartition tp{t, p};
        behind += std::max<int64_t>(0, log_.end_offset(tp) - applied_.applied(spec.name, tp));
      }
    }
    return behind;
  }
  return 0;
}

std::vector<std::pair<std::string, int64_t>> Runtime::backlog() const {
  std::vector<std::pair<std::string, int64_t>> out;
  if (!started_.load()) return out;  // the topology may still be growing
  for (const auto& spec : topology_.stages()) out.emplace_back(spec.name, backlog(spec.name));
  return out;
}

void Runtime::note_applied_ts(const std::string& stage, const TopicPartition& tp, int64_t ts_ms) {
  std::lock_guard lock(applied_ts_mu_);
  auto& v = applied_ts_[{stage, tp}];
  v = std::max(v, ts_ms);
}

std::vector<Runtime::Lag> Runtime::lag() const {
  std::vector<Lag> out;
  if (!started_.load()) return out;
  const int64_t now = options_.clock->now_ms();
  for (const auto& spec : topology_.stages()) {
    for (const auto& t : spec.topics) {
      Lag lag{spec.name, t, 0, 0};
      for (int32_t p = 0; p < log_.partitions(t); ++p) {
        const TopicPartition tp{t, p};
        const auto end = log_.cached_end_offset(spec.name, tp);
        if (!end) continue;
        const int64_t behind = std::max<int64_t>(0, *end - applied_.applied(spec.name, tp));
        if (behind == 0) continue;
        lag.records += behind;
        int64_t since = started_ms_;
        {
          std::lock_guard lock(applied_ts_mu_);
          auto it = applied_ts_.find({spec.name, tp});
          if (it != applied_ts_.end() && it->second > 0) since = it->second;
        }
        lag.seconds = std::max(lag.seconds, std::max<int64_t>(0, now - since) / 1000.0);
      }
      out.push_back(std::move(lag));
    }
  }
  return out;
}

void Runtime::stop() {
  for (auto& inst : instances_) inst->request_stop();
  for (auto& inst : instances_) inst->join();
  instances_.clear();
}

}  // namespace attune
