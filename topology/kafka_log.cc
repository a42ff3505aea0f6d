#include "topology/kafka_log.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>

namespace attune {

namespace {

using state::decode_be64;
using state::encode_be32;
using state::encode_be64;

constexpr std::string_view kLocalOffsetsStore = "__kafka_offsets";
constexpr std::string_view kMetaStore = "__meta";

std::string local_offset_key(const std::string& group, const TopicPartition& tp) {
  std::string k = group;
  k.push_back('\0');
  k += tp.topic;
  k.push_back('\0');
  k += encode_be32(static_cast<uint32_t>(tp.partition));
  return k;
}

std::string restore_key(const std::string& topic, int32_t p) {
  return "changelog/" + topic + "/" + std::to_string(p);
}

int to_ms(std::chrono::milliseconds d) {
  return static_cast<int>(std::clamp<int64_t>(d.count(), 0, 1 << 30));
}

Error kafka_error(std::string what, rd_kafka_resp_err_t err) {
  return make_error(Errc::kUnavailable, what + ": " + rd_kafka_err2str(err));
}

enum class ClientKind { kProducer, kConsumer };

// Our defaults, then the user's --kafka-config (which wins).
Result<rd_kafka_conf_t*> make_conf(const KafkaOptions& o, ClientKind kind,
                                   const std::vector<std::pair<std::string, std::string>>& extra) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::vector<std::pair<std::string, std::string>> props = {
      {"bootstrap.servers", o.brokers},
      {"socket.nagle.disable", "true"},
      {"log.connection.close", "false"},
  };
  // Latency over batching on both sides: a stage commit waits for its acknowledgements, so
  // linger is paid at every hop (linger.ms=1 cost ~1-2 ms per hop, ~7 ms per execution on the
  // mock); records a stage writes while requests are in flight still travel together. A
  // broker answers a fetch as soon as data arrives (fetch.min.bytes=1), so fetch.wait.max.ms
  // only bounds how often an idle consumer asks (10/s) and how long a newly assigned or resumed
  // partition may wait for the fetch in flight.
  if (kind == ClientKind::kProducer) {
    props.insert(props.end(), {{"enable.idempotence", "true"},
                               {"acks", "all"},
                               {"linger.ms", "0"},
                               {"message.timeout.ms", "60000"}});
  } else {
    props.insert(props.end(), {{"enable.auto.commit", "false"},
                               {"enable.auto.offset.store", "false"},
                               {"partition.assignment.strategy", "cooperative-sticky"},
                               {"fetch.wait.max.ms", "100"},
                               {"fetch.error.backoff.ms", "20"},
                               {"session.timeout.ms", "10000"},
                               {"heartbeat.interval.ms", "1000"},
                               {"allow.auto.create.topics", "false"}});
  }
  props.insert(props.end(), extra.begin(), extra.end());
  props.insert(props.end(), o.config.begin(), o.config.end());
  char err[512];
  for (const auto& [k, v] : props) {
    // Client-kind specific properties given by the user apply where they make sense: librdkafka
    // warns (not fails) for consumer properties on a producer, and we drop those warnings.
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return make_error(Errc::kBadRequest, "kafka config " + k + "=" + v + ": " + err);
    }
  }
  rd_kafka_conf_set_log_cb(conf, [](const rd_kafka_t*, int level, const char* fac, const char* buf) {
    if (level <= 3) {
      spdlog::error("kafka {}: {}", fac, buf);
    } else if (level <= 4) {
      spdlog::warn("kafka {}: {}", fac, buf);
    } else {
      spdlog::debug("kafka {}: {}", fac, buf);
    }
  });
  return conf;
}

Record to_record(const rd_kafka_message_t* m) {
  Record r;
  r.topic = rd_kafka_topic_name(m->rkt);
  r.partition = m->partition;
  r.offset = m->offset;
  rd_kafka_timestamp_type_t tstype;
  r.timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
  if (m->key) r.key.assign(static_cast<const char*>(m->key), m->key_len);
  if (m->payload) r.value.assign(static_cast<const char*>(m->payload), m->len);
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
    const char* name;
    const void* val;
    size_t size;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      r.headers.emplace_back(name, val ? std::string(static_cast<const char*>(val), size) : "");
    }
  }
  return r;
}

// One produce wave (the records of one commit) waiting for its acknowledgements.
struct Delivery {
  std::mutex mu;
  std::condition_variable cv;
  size_t remaining = 0;
  std::vector<int64_t> offsets;
  std::string error;
};
struct DeliverySlot {
  Delivery* d;
  size_t index;
};

}  // namespace

Result<std::pair<std::string, std::string>> parse_kafka_property(std::string_view text) {
  const auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return make_error(Errc::kBadRequest,
                      "invalid --kafka-config '" + std::string(text) + "': use key=value");
  }
  return std::make_pair(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
}

// A store with a changelog topic.
struct Changelog {
  std::string group;
  state::Store* store = nullptr;
  std::string topic;
  int32_t partitions = 0;
  std::mutex restore_mu;  // one restore of this store at a time
  // Keys this process wrote since the last restore, with the changelog offset of the write.
  // A restore never applies an older record over them (guarded by Impl::write_mu).
  std::unordered_map<std::string, int64_t> own;
};

class KafkaConsumer;

struct KafkaLog::Impl {
  KafkaLog* self = nullptr;
  rd_kafka_t* producer = nullptr;
  std::thread poller;
  std::atomic<bool> stopping{false};

  state::Store* offsets = nullptr;  // local groups
  state::Store* meta = nullptr;

  mutable std::mutex topics_mu;
  std::map<std::string, int32_t, std::less<>> partitions;

  mutable std::mutex known_mu;  // fallback end offsets (acks and consumed records)
  mutable std::map<TopicPartition, int64_t> known_end;

  std::mutex changelog_mu;  // registry
  std::map<std::string, std::unique_ptr<Changelog>> changelogs;  // by store name
  std::map<const state::Store*, Changelog*> by_store;
  std::mutex write_mu;  // own-key maps + local writes vs. restore batches

  mutable std::mutex consumers_mu;
  std::multimap<std::string, KafkaConsumer*> consumers;  // by group
  mutable std::map<std::string, rd_kafka_t*> committers;  // groups without a local consumer

  ~Impl() {
    stopping.store(true);
    if (poller.joinable()) poller.join();
    if (producer) {
      rd_kafka_flush(producer, 5000);
      rd_kafka_destroy(producer);
    }
    for (auto& [g, rk] : committers) {
      rd_kafka_consumer_close(rk);
      rd_kafka_destroy(rk);
    }
  }

  void note_end(const TopicPartition& tp, int64_t next) const {
    std::lock_guard lock(known_mu);
    auto& v = known_end[tp];
    v = std::max(v, next);
  }

  // A consumer client. `opaque` (a KafkaConsumer) gets rebalance callbacks when given.
  Result<rd_kafka_t*> new_consumer(const std::string& group_id, bool from_beginning,
                                   void* opaque = nullptr,
                                   void (*rebalance)(rd_kafka_t*, rd_kafka_resp_err_t,
                                                     rd_kafka_topic_partition_list_t*,
                                                     void*) = nullptr) const {
    std::vector<std::pair<std::string, std::string>> extra = {
        {"group.id", group_id}, {"auto.offset.reset", from_beginning ? "earliest" : "latest"}};
    if (auto g = self->options_.group_config.find(group_id); g != self->options_.group_config.end()) {
      extra.insert(extra.end(), g->second.begin(), g->second.end());
    }
    auto conf = make_conf(self->options_, ClientKind::kConsumer, extra);
    if (!conf.ok()) return conf.error();
    if (opaque) rd_kafka_conf_set_opaque(*conf, opaque);
    if (rebalance) rd_kafka_conf_set_rebalance_cb(*conf, rebalance);
    char err[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, *conf, err, sizeof(err));
    if (!rk) {
      rd_kafka_conf_destroy(*conf);
      return make_error(Errc::kUnavailable, std::string("kafka consumer: ") + err);
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
  }

  // A consumer handle of `group` that may commit and read its offsets.
  rd_kafka_t* committer(const std::string& group) const;

  Status ensure_topics(const std::vector<TopicConfig>& wanted);
  // Brokers without the Admin API (the mock cluster): ask for the topics in a metadata request,
  // which auto-creates them where the broker allows it (broker-default partitions and policy).
  template <class ReadFn, class MissingFn>
  Status auto_create(const std::vector<TopicConfig>& todo, ReadFn& read_metadata,
                     MissingFn& missing) {
    for (const auto& t : todo) {
      rd_kafka_topic_t* rkt = rd_kafka_topic_new(producer, t.name.c_str(), nullptr);
      const rd_kafka_metadata_t* md = nullptr;
      if (rd_kafka_metadata(producer, 0, rkt, &md, to_ms(self->options_.timeout)) ==
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_metadata_destroy(md);
      }
      rd_kafka_topic_destroy(rkt);
    }
    const auto deadline = std::chrono::steady_clock::now() + self->options_.timeout;
    std::vector<TopicConfig> left;
    for (;;) {
      if (auto st = read_metadata(); !st.ok()) return st;
      left = missing();
      if (left.empty()) return {};
      if (std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // startup only
    }
    std::string names;
    for (const auto& t : left) names += (names.empty() ? "" : ", ") + t.name;
    return make_error(Errc::kUnavailable, "kafka topics missing and not creatable: " + names);
  }
  std::atomic<bool> admin_unavailable{false};
  Status restore_one(Changelog& cl);
};

// --- consumers -----------------------------------------------------------------------------

class KafkaConsumer final : public Consumer {
 public:
  enum class Mode {
    kGroup,       // subscribe(): the group balances partitions among its members
    kAssigned,    // explicit partitions, offsets committed to the group
    kLocalGroup,  // every partition, offsets in the local database
    kReader,      // every partition from the beginning, no offsets
  };

  KafkaConsumer(KafkaLog::Impl& impl, std::string group, Mode mode, bool restore_on_assign)
      : impl_(impl), group_(std::move(group)), mode_(mode), restore_on_assign_(restore_on_assign) {}

  // Creates the client. kGroup subscribes (the group assigns partitions); other modes assign
  // `start` (partition → first offset) themselves.
  Status open(const std::string& group_id, bool from_beginning,
              const std::vector<std::string>& topic_names,
              const std::map<TopicPartition, int64_t>& start) {
    auto rk = impl_.new_consumer(group_id, from_beginning, this,
                                 mode_ == Mode::kGroup ? &KafkaConsumer::rebalance_cb : nullptr);
    if (!rk.ok()) return rk.error();
    rk_ = *rk;
    queue_ = rd_kafka_queue_get_consumer(rk_);
    if (!group_.empty() && mode_ != Mode::kLocalGroup && mode_ != Mode::kReader) {
      std::lock_guard lock(impl_.consumers_mu);
      impl_.consumers.emplace(group_, this);
    }
    if (mode_ == Mode::kGroup) return subscribe(topic_names);
    auto* list = rd_kafka_topic_partition_list_new(static_cast<int>(start.size()));
    for (const auto& [tp, off] : start) {
      rd_kafka_topic_partition_list_add(list, tp.topic.c_str(), tp.partition)->offset = off;
      if (off >= 0) positions_[tp] = off;
    }
    auto st = assign(list);
    rd_kafka_topic_partition_list_destroy(list);
    return st;
  }

  ~KafkaConsumer() override {
    if (!rk_) return;
    {
      std::lock_guard lock(impl_.consumers_mu);
      for (auto it = impl_.consumers.begin(); it != impl_.consumers.end(); ++it) {
        if (it->second == this) {
          impl_.consumers.erase(it);
          break;
        }
      }
    }
    for (auto* m : held_) rd_kafka_message_destroy(m);
    rd_kafka_queue_destroy(queue_);
    closing_.store(true);
    rd_kafka_consumer_close(rk_);
    rd_kafka_destroy(rk_);
  }

  static void rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* parts, void* opaque) {
    static_cast<KafkaConsumer*>(opaque)->rebalance(rk, err, parts);
  }

  // Manual assignment at the given offsets (modes other than kGroup).
  Status assign(rd_kafka_topic_partition_list_t* parts) {
    for (int i = 0; i < parts->cnt; ++i) {
      assigned_.insert(TopicPartition{parts->elems[i].topic, parts->elems[i].partition});
    }
    if (restore_on_assign_) {
      if (auto st = impl_.self->restore(group_); !st.ok()) return st;
    }
    const auto err = rd_kafka_assign(rk_, parts);
    if (err) return kafka_error("assign", err);
    return {};
  }

  Status subscribe(const std::vector<std::string>& topic_names) {
    auto* list = rd_kafka_topic_partition_list_new(static_cast<int>(topic_names.size()));
    for (const auto& t : topic_names) {
      rd_kafka_topic_partition_list_add(list, t.c_str(), RD_KAFKA_PARTITION_UA);
    }
    const auto err = rd_kafka_subscribe(rk_, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err) return kafka_error("subscribe", err);
    return {};
  }

  std::vector<Record> poll(size_t max_records, std::chrono::milliseconds timeout) override {
    std::vector<Record> out;
    if (paused_) {
      paused_ = false;
      if (auto* parts = rd_assignment()) {
        rd_kafka_resume_partitions(rk_, parts);
        rd_kafka_topic_partition_list_destroy(parts);
      }
    }
    if (!held_.empty()) {  // taken while paused (a partition assigned meanwhile)
      for (auto* m : held_) take(m, out);
      held_.clear();
      return out;
    }
    if (woken_.exchange(false)) return out;
    rd_kafka_message_t* first = rd_kafka_consumer_poll(rk_, to_ms(timeout));
    if (first) take(first, out);
    if (woken_.exchange(false)) return out;
    // Whatever else has already arrived, without waiting.
    std::vector<rd_kafka_message_t*> more(std::max<size_t>(max_records, 1));
    while (out.size() < max_records && first) {
      const ssize_t n = rd_kafka_consume_batch_queue(queue_, 0, more.data(),
                                                     max_records - out.size());
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; ++i) take(more[static_cast<size_t>(i)], out);
    }
    return out;
  }

  void wakeup() override {
    woken_.store(true);
    rd_kafka_queue_yield(queue_);
  }

  void keep_alive() override {
    // Paused partitions fetch nothing; what was fetched and not handed out is fetched again
    // from the consumed position on resume. A partition assigned since is paused on the next
    // call; a message it delivered meanwhile is kept for the next poll().
    if (auto* parts = rd_assignment()) {
      if (parts->cnt > 0) rd_kafka_pause_partitions(rk_, parts);
      rd_kafka_topic_partition_list_destroy(parts);
    }
    paused_ = true;
    while (rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, 0)) held_.push_back(m);
  }

  std::vector<OffsetCommit> positions() const override {
    std::vector<OffsetCommit> out;
    if (mode_ == Mode::kReader) return out;
    std::lock_guard lock(mu_);
    for (const auto& [tp, pos] : positions_) {
      if (assigned_.count(tp)) out.push_back(OffsetCommit{group_, tp, pos});
    }
    return out;
  }

  const std::string& group() const override { return group_; }

  void set_key_filter(KeyFilter filter) override { filter_ = std::move(filter); }

  uint64_t assignment_generation() const override { return generation_.load(); }
  void set_return_on_rebalance(bool on) override { return_on_rebalance_.store(on); }
  std::vector<TopicPartition> assignment() const override {
    std::lock_guard lock(mu_);
    return {assigned_.begin(), assigned_.end()};
  }

  bool owns(const TopicPartition& tp) const {
    std::lock_guard lock(mu_);
    return assigned_.count(tp) > 0;
  }
  rd_kafka_t* handle() const { return rk_; }
  // KafkaLog::commit sent `next` for `tp` without waiting (flushed on revocation).
  void note_sent(const TopicPartition& tp, int64_t next) {
    std::lock_guard lock(mu_);
    sent_[tp] = next;
  }
  void set_position(const TopicPartition& tp, int64_t next) {
    std::lock_guard lock(mu_);
    positions_[tp] = next;
  }

 private:
  void take(rd_kafka_message_t* m, std::vector<Record>& out) {
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        spdlog::warn("kafka consumer {}: {}", group_.empty() ? "(reader)" : group_,
                     rd_kafka_message_errstr(m));
      }
      rd_kafka_message_destroy(m);
      return;
    }
    Record r = to_record(m);
    rd_kafka_message_destroy(m);
    TopicPartition tp{r.topic, r.partition};
    {
      std::lock_guard lock(mu_);
      if (mode_ == Mode::kGroup && !assigned_.count(tp)) return;  // revoked meanwhile
      positions_[tp] = r.offset + 1;
    }
    impl_.note_end(tp, r.offset + 1);
    if (filter_ && !filter_(r.key)) return;  // skipped: the position moved past it
    out.push_back(std::move(r));
  }

  void rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
    on_rebalance(rk, err, parts);
    // The stage learns of the new assignment (Processor::assigned) as soon as poll() returns.
    generation_.fetch_add(1);
    if (return_on_rebalance_.load() && !closing_.load()) rd_kafka_yield(rk);
  }

  void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
    const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      {
        std::lock_guard lock(mu_);
        for (int i = 0; i < parts->cnt; ++i) {
          assigned_.insert(TopicPartition{parts->elems[i].topic, parts->elems[i].partition});
        }
      }
      spdlog::info("kafka group {}: assigned {} partition(s)", group_, parts->cnt);
      // The stage's stores must be current before it processes the new partitions.
      if (restore_on_assign_ && parts->cnt > 0) {
        if (auto st = impl_.self->restore(group_); !st.ok()) {
          spdlog::error("kafka group {}: restore failed: {}", group_, st.error().message);
        }
      }
      if (cooperative) {
        if (auto* e = rd_kafka_incremental_assign(rk, parts)) {
          spdlog::error("kafka group {}: incremental assign: {}", group_, rd_kafka_error_string(e));
          rd_kafka_error_destroy(e);
        }
      } else {
        rd_kafka_assign(rk, parts);
      }
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      // KafkaLog::commit sends offsets without waiting; before the partitions go to another
      // member, make sure they have landed: a synchronous commit of the last offsets sent is
      // answered after every earlier commit of this member. Closing waits for them anyway.
      rd_kafka_topic_partition_list_t* flush = rd_kafka_topic_partition_list_new(parts->cnt);
      {
        std::lock_guard lock(mu_);
        for (int i = 0; i < parts->cnt; ++i) {
          TopicPartition tp{parts->elems[i].topic, parts->elems[i].partition};
          if (auto p = sent_.find(tp); p != sent_.end() && !closing_.load()) {
            rd_kafka_topic_partition_list_add(flush, tp.topic.c_str(), tp.partition)->offset =
                p->second;
          }
          assigned_.erase(tp);
          positions_.erase(tp);
          sent_.erase(tp);
        }
      }
      if (flush->cnt > 0) {
        const auto cerr = rd_kafka_commit(rk, flush, 0);
        if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET) {
          spdlog::warn("kafka group {}: offset commit on revocation: {}", group_,
                       rd_kafka_err2str(cerr));
        }
      }
      rd_kafka_topic_partition_list_destroy(flush);
      spdlog::info("kafka group {}: revoked {} partition(s)", group_, parts->cnt);
      if (cooperative) {
        if (auto* e = rd_kafka_incremental_unassign(rk, parts)) rd_kafka_error_destroy(e);
      } else {
        rd_kafka_assign(rk, nullptr);
      }
    } else {
      spdlog::warn("kafka group {}: rebalance error: {}", group_, rd_kafka_err2str(err));
      {
        std::lock_guard lock(mu_);
        assigned_.clear();
        positions_.clear();
      }
      rd_kafka_assign(rk, nullptr);
    }
  }

  // The current assignment (caller destroys), or null.
  rd_kafka_topic_partition_list_t* rd_assignment() const {
    rd_kafka_topic_partition_list_t* parts = nullptr;
    if (rd_kafka_assignment(rk_, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR) return nullptr;
    return parts;
  }

  KafkaLog::Impl& impl_;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_queue_t* queue_ = nullptr;
  bool paused_ = false;                     // keep_alive() paused the assignment; polling thread's
  std::vector<rd_kafka_message_t*> held_;   // delivered during keep_alive(); polling thread's
  const std::string group_;
  const Mode mode_;
  const bool restore_on_assign_;
  std::atomic<bool> woken_{false};
  std::atomic<uint64_t> generation_{0};  // rebalances seen (assignment_generation)
  std::atomic<bool> closing_{false};       // the final revocation needs no wake-up
  std::atomic<bool> return_on_rebalance_{false};
  KeyFilter filter_;  // set_key_filter; the polling thread's
  mutable std::mutex mu_;
  std::set<TopicPartition> assigned_;
  std::map<TopicPartition, int64_t> positions_;  // next offset to process, per partition
  std::map<TopicPartition, int64_t> sent_;       // last offset committed without waiting
};

rd_kafka_t* KafkaLog::Impl::committer(const std::string& group) const {
  {
    std::lock_guard lock(consumers_mu);
    auto it = consumers.find(group);
    if (it != consumers.end()) return it->second->handle();
    auto c = committers.find(group);
    if (c != committers.end()) return c->second;
  }
  auto rk = new_consumer(group, true);
  if (!rk.ok()) {
    spdlog::error("kafka: {}", rk.error().message);
    return nullptr;
  }
  std::lock_guard lock(consumers_mu);
  auto [it, inserted] = committers.emplace(group, *rk);
  if (!inserted) {
    rd_kafka_destroy(*rk);
  }
  return it->second;
}

// --- KafkaLog ------------------------------------------------------------------------------

KafkaLog::KafkaLog(state::Db& db, KafkaOptions options)
    : db_(db), options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  impl_->self = this;
}

KafkaLog::~KafkaLog() = default;

Status KafkaLog::Impl::ensure_topics(const std::vector<TopicConfig>& wanted) {
  auto read_metadata = [&]() -> Status {
    const rd_kafka_metadata_t* md = nullptr;
    const auto err = rd_kafka_metadata(producer, 1, nullptr, &md, to_ms(self->options_.timeout));
    if (err) return kafka_error("metadata from " + self->options_.brokers, err);
    std::lock_guard lock(topics_mu);
    for (int i = 0; i < md->topic_cnt; ++i) {
      const auto& t = md->topics[i];
      if (t.err == RD_KAFKA_RESP_ERR_NO_ERROR && t.partition_cnt > 0) {
        partitions[t.topic] = t.partition_cnt;
      }
    }
    rd_kafka_metadata_destroy(md);
    return {};
  };
  auto missing = [&] {
    std::vector<TopicConfig> out;
    std::lock_guard lock(topics_mu);
    for (const auto& t : wanted) {
      if (!partitions.count(t.name)) out.push_back(t);
    }
    return out;
  };
  if (auto st = read_metadata(); !st.ok()) return st;
  auto todo = missing();
  if (todo.empty()) return {};

  if (admin_unavailable.load()) return auto_create(todo, read_metadata, missing);
  // Admin API: create with the configured partition counts and cleanup policies.
  std::vector<rd_kafka_NewTopic_t*> news;
  char err[512];
  for (const auto& t : todo) {
    auto* nt = rd_kafka_NewTopic_new(t.name.c_str(), t.partitions,
                                     self->options_.replication_factor, err, sizeof(err));
    if (!nt) {
      for (auto* n : news) rd_kafka_NewTopic_destroy(n);
      return make_error(Errc::kInternal, "topic " + t.name + ": " + err);
    }
    if (t.compacted) {
      rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
      // Heartbeats and node claims rewrite a few keys every second: roll segments often so the
      // cleaner (which skips the active segment) keeps the topic, and every start's replay, small.
      if (t.name == topics::kWorkers) rd_kafka_NewTopic_set_config(nt, "segment.ms", "600000");
    }
    news.push_back(nt);
  }
  rd_kafka_queue_t* q = rd_kafka_queue_new(producer);
  rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(producer, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_request_timeout(opts, to_ms(std::min(self->options_.timeout,
                                                                  std::chrono::milliseconds(5000))),
                                            err, sizeof(err));
  rd_kafka_CreateTopics(producer, news.data(), news.size(), opts, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, to_ms(self->options_.timeout) + 1000);
  if (ev) {
    if (rd_kafka_event_error(ev)) {
      spdlog::warn("kafka: creating topics with the Admin API: {} (falling back to auto-creation)",
                   rd_kafka_event_error_string(ev));
      admin_unavailable.store(true);
    } else if (const auto* res = rd_kafka_event_CreateTopics_result(ev)) {
      size_t n = 0;
      const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(res, &n);
      for (size_t i = 0; i < n; ++i) {
        const auto e = rd_kafka_topic_result_error(results[i]);
        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
          spdlog::warn("kafka: creating topic {}: {}", rd_kafka_topic_result_name(results[i]),
                       rd_kafka_topic_result_error_string(results[i]));
        } else if (!e) {
          spdlog::info("kafka: created topic {}", rd_kafka_topic_result_name(results[i]));
        }
      }
    }
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_queue_destroy(q);
  for (auto* n : news) rd_kafka_NewTopic_destroy(n);

  if (admin_unavailable.load()) return auto_create(missing(), read_metadata, missing);
  // New topics take a moment to appear in metadata everywhere (startup only).
  const auto deadline = std::chrono::steady_clock::now() + self->options_.timeout;
  for (;;) {
    if (auto st = read_metadata(); !st.ok()) return st;
    todo = missing();
    if (todo.empty()) return {};
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::string names;
  for (const auto& t : todo) names += (names.empty() ? "" : ", ") + t.name;
  return make_error(Errc::kUnavailable, "kafka topics missing and not creatable: " + names);
}

Result<std::unique_ptr<KafkaLog>> KafkaLog::open(state::Db& db, KafkaOptions options) {
  if (options.brokers.empty()) return make_error(Errc::kBadRequest, "no Kafka brokers given");
  auto self = std::unique_ptr<KafkaLog>(new KafkaLog(db, std::move(options)));
  Impl& impl = *self->impl_;
  auto offsets = db.store(kLocalOffsetsStore);
  if (!offsets.ok()) return offsets.error();
  impl.offsets = *offsets;
  auto meta = db.store(kMetaStore);
  if (!meta.ok()) return meta.error();
  impl.meta = *meta;

  auto conf = make_conf(self->options_, ClientKind::kProducer, {});
  if (!conf.ok()) return conf.error();
  rd_kafka_conf_set_dr_msg_cb(*conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    auto* slot = static_cast<DeliverySlot*>(m->_private);
    if (!slot) return;
    Delivery* d = slot->d;
    {
      std::lock_guard lock(d->mu);
      if (m->err) {
        if (d->error.empty()) d->error = rd_kafka_err2str(m->err);
      } else {
        d->offsets[slot->index] = m->offset;
      }
      --d->remaining;
    }
    d->cv.notify_all();
  });
  char err[512];
  impl.producer = rd_kafka_new(RD_KAFKA_PRODUCER, *conf, err, sizeof(err));
  if (!impl.producer) {
    rd_kafka_conf_destroy(*conf);
    return make_error(Errc::kBadRequest, std::string("kafka producer: ") + err);
  }
  // Serves delivery reports (a blocking wait on librdkafka's queue, not a sleep).
  impl.poller = std::thread([&impl] {
    while (!impl.stopping.load()) rd_kafka_poll(impl.producer, 100);
  });
  if (auto st = impl.ensure_topics(self->options_.topics); !st.ok()) return st.error();
  return self;
}

int32_t KafkaLog::partitions(std::string_view topic) const {
  std::lock_guard lock(impl_->topics_mu);
  auto it = impl_->partitions.find(topic);
  return it == impl_->partitions.end() ? 0 : it->second;
}

int64_t KafkaLog::end_offset(const TopicPartition& tp) const {
  int64_t lo = 0, hi = 0;
  const auto err = rd_kafka_query_watermark_offsets(impl_->producer, tp.topic.c_str(), tp.partition,
                                                    &lo, &hi, to_ms(options_.timeout));
  if (err) {
    spdlog::warn("kafka: end offset of {}[{}]: {}", tp.topic, tp.partition, rd_kafka_err2str(err));
    std::lock_guard lock(impl_->known_mu);
    auto it = impl_->known_end.find(tp);
    return it == impl_->known_end.end() ? 0 : it->second;
  }
  impl_->note_end(tp, hi);
  return hi;
}

std::optional<int64_t> KafkaLog::cached_end_offset(const std::string& group,
                                                   const TopicPartition& tp) const {
  int64_t lo = -1, hi = -1;
  {
    std::lock_guard lock(impl_->consumers_mu);
    auto range = impl_->consumers.equal_range(group);
    auto it = range.first;
    for (; it != range.second && !it->second->owns(tp); ++it) {
    }
    if (it == range.second) return std::nullopt;
    if (rd_kafka_get_watermark_offsets(it->second->handle(), tp.topic.c_str(), tp.partition, &lo,
                                       &hi) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      hi = -1;
    }
  }
  std::lock_guard lock(impl_->known_mu);
  auto known = impl_->known_end.find(tp);
  if (known != impl_->known_end.end()) hi = std::max(hi, known->second);
  if (hi < 0) return std::nullopt;  // nothing fetched from it yet
  return hi;
}

Result<int64_t> KafkaLog::committed(const std::string& group, const TopicPartition& tp) const {
  if (options_.local_groups.count(group)) {
    auto v = impl_->offsets->get(local_offset_key(group, tp));
    if (!v.ok()) return v.error();
    if (!v->has_value()) return int64_t{-1};
    return static_cast<int64_t>(decode_be64(**v));
  }
  rd_kafka_t* rk = impl_->committer(group);
  if (!rk) return make_error(Errc::kUnavailable, "no Kafka client for group " + group);
  auto* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, tp.topic.c_str(), tp.partition);
  const auto err = rd_kafka_committed(rk, list, to_ms(options_.timeout));
  int64_t off = list->elems[0].offset;
  const auto perr = list->elems[0].err;
  rd_kafka_topic_partition_list_destroy(list);
  if (err) return kafka_error("committed offsets of " + group, err);
  if (perr) return kafka_error("committed offset of " + group, perr);
  return off < 0 ? int64_t{-1} : off;
}

Status KafkaLog::attach_stores(const std::string& group, const std::vector<std::string>& stores) {
  if (options_.local_groups.count(group)) return {};
  std::vector<TopicConfig> wanted;
  for (const auto& name : stores) {
    if (options_.local_stores.count(name)) continue;
    wanted.push_back({changelog_topic(name), options_.changelog_partitions, true});
  }
  if (auto st = impl_->ensure_topics(wanted); !st.ok()) return st;
  std::lock_guard lock(impl_->changelog_mu);
  for (const auto& name : stores) {
    if (options_.local_stores.count(name) || impl_->changelogs.count(name)) continue;
    auto store = db_.store(name);
    if (!store.ok()) return store.error();
    auto cl = std::make_unique<Changelog>();
    cl->group = group;
    cl->store = *store;
    cl->topic = changelog_topic(name);
    cl->partitions = partitions(cl->topic);
    impl_->by_store[*store] = cl.get();
    impl_->changelogs.emplace(name, std::move(cl));
  }
  return {};
}

Status KafkaLog::restore(const std::string& group) {
  std::vector<Changelog*> mine;
  {
    std::lock_guard lock(impl_->changelog_mu);
    for (auto& [name, cl] : impl_->changelogs) {
      if (cl->group == group) mine.push_back(cl.get());
    }
  }
  for (Changelog* cl : mine) {
    if (auto st = impl_->restore_one(*cl); !st.ok()) return st;
  }
  return {};
}

Status KafkaLog::Impl::restore_one(Changelog& cl) {
  std::lock_guard restore_lock(cl.restore_mu);
  const auto& opts = self->options_;
  auto rk = new_consumer("attune-restore", true);
  if (!rk.ok()) return rk.error();
  struct Guard {
    rd_kafka_t* rk;
    ~Guard() {
      rd_kafka_consumer_close(rk);
      rd_kafka_destroy(rk);
    }
  } guard{*rk};

  std::map<int32_t, int64_t> target;  // partition → high watermark to reach
  int64_t total = 0;
  auto* list = rd_kafka_topic_partition_list_new(cl.partitions);
  for (int32_t p = 0; p < cl.partitions; ++p) {
    int64_t lo = 0, hi = 0;
    const auto err = rd_kafka_query_watermark_offsets(*rk, cl.topic.c_str(), p, &lo, &hi,
                                                      to_ms(opts.timeout));
    if (err) {
      rd_kafka_topic_partition_list_destroy(list);
      return kafka_error("watermarks of " + cl.topic, err);
    }
    auto tracked = meta->get(restore_key(cl.topic, p));
    if (!tracked.ok()) {
      rd_kafka_topic_partition_list_destroy(list);
      return tracked.error();
    }
    const int64_t from =
        std::max(lo, tracked->has_value() ? static_cast<int64_t>(decode_be64(**tracked)) : 0);
    if (from >= hi) continue;
    rd_kafka_topic_partition_list_add(list, cl.topic.c_str(), p)->offset = from;
    target[p] = hi;
    total += hi - from;
  }
  if (target.empty()) {
    rd_kafka_topic_partition_list_destroy(list);
    return {};
  }
  const std::string store_name = cl.store->name();
  spdlog::info("restoring store {} from {}: up to {} record(s)", store_name, cl.topic, total);
  RestoreProgress progress{store_name, 0, total, false};
  if (opts.on_restore) opts.on_restore(progress);
  const auto aerr = rd_kafka_assign(*rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (aerr) return kafka_error("assign " + cl.topic, aerr);

  std::map<int32_t, int64_t> reached;  // next offset per partition
  std::vector<Record> batch;
  auto apply = [&]() -> Status {
    if (batch.empty()) return {};
    std::lock_guard lock(write_mu);
    state::WriteBatch wb;
    for (auto& r : batch) {
      auto own = cl.own.find(r.key);
      if (own != cl.own.end() && own->second > r.offset) continue;  // we wrote it later
      if (r.value.empty() && r.headers.empty()) {
        wb.del(*cl.store, r.key);
      } else {
        wb.put(*cl.store, r.key, r.value);
      }
    }
    for (const auto& [p, next] : reached) {
      wb.put(*meta, restore_key(cl.topic, p), encode_be64(static_cast<uint64_t>(next)));
    }
    if (auto st = self->db_.write(wb); !st.ok()) return st;
    progress.restored += static_cast<int64_t>(batch.size());
    self->restored_total_ += static_cast<int64_t>(batch.size());
    batch.clear();
    if (opts.on_restore) opts.on_restore(progress);
    return {};
  };
  auto done = [&] {
    for (const auto& [p, hi] : target) {
      auto it = reached.find(p);
      if (it == reached.end() || it->second < hi) return false;
    }
    return true;
  };
  auto last_progress = std::chrono::steady_clock::now();
  while (!done()) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(*rk, 200);
    if (!m) {
      if (std::chrono::steady_clock::now() - last_progress > opts.timeout) {
        return make_error(Errc::kUnavailable, "restore of " + store_name + " made no progress");
      }
      continue;
    }
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        spdlog::warn("restore {}: {}", cl.topic, rd_kafka_message_errstr(m));
      }
      rd_kafka_message_destroy(m);
      continue;
    }
    last_progress = std::chrono::steady_clock::now();
    Record r = to_record(m);
    const bool tombstone = m->payload == nullptr;
    rd_kafka_message_destroy(m);
    if (tombstone) {
      r.value.clear();
      r.headers.clear();
    } else if (r.value.empty()) {
      r.headers.emplace_back("", "");  // an empty value is a value, not a delete
    }
    reached[r.partition] = r.offset + 1;
    if (r.offset < target[r.partition]) batch.push_back(std::move(r));
    if (batch.size() >= 1000) {
      if (auto st = apply(); !st.ok()) return st;
    }
  }
  if (auto st = apply(); !st.ok()) return st;
  {
    // Our own writes below the restored point are superseded by what was just applied.
    std::lock_guard lock(write_mu);
    for (auto it = cl.own.begin(); it != cl.own.end();) {
      const int32_t p = partition_for(it->first, cl.partitions);
      auto t = target.find(p);
      if (t != target.end() && it->second < t->second) {
        it = cl.own.erase(it);
      } else {
        ++it;
      }
    }
  }
  progress.done = true;
  if (opts.on_restore) opts.on_restore(progress);
  spdlog::info("restored store {}: {} record(s)", store_name, progress.restored);
  return {};
}

Result<std::vector<RecordPosition>> KafkaLog::commit(Transaction txn) {
  Impl& impl = *impl_;
  // 1. Records and changelog entries, acknowledged by the brokers.
  struct Out {
    const std::string* topic;
    int32_t partition;
    std::string_view key;
    const std::string* value;  // null: tombstone
    const std::vector<std::pair<std::string, std::string>>* headers;
    Changelog* changelog;
  };
  std::vector<Out> outs;
  outs.reserve(txn.records.size() + txn.state.size());
  for (const auto& r : txn.records) {
    const int32_t n = partitions(r.topic);
    if (n == 0) return make_error(Errc::kInternal, "unknown topic " + r.topic);
    if (r.partition >= n) return make_error(Errc::kInternal, "partition out of range for " + r.topic);
    outs.push_back(Out{&r.topic, r.partition >= 0 ? r.partition : partition_for(r.key, n), r.key,
                       &r.value, &r.headers, nullptr});
  }
  const size_t n_records = outs.size();
  if (!txn.state.empty()) {
    std::lock_guard lock(impl.changelog_mu);
    for (const auto& op : txn.state.ops()) {
      auto it = impl.by_store.find(op.store);
      if (it == impl.by_store.end()) continue;
      Changelog* cl = it->second;
      if (op.range_end) {
        spdlog::warn("changelog {}: range deletes are not replicated", cl->topic);
        continue;
      }
      outs.push_back(Out{&cl->topic, partition_for(op.key, cl->partitions), op.key,
                         op.value ? &*op.value : nullptr, nullptr, cl});
    }
  }
  Delivery d;
  d.offsets.assign(outs.size(), -1);
  std::vector<DeliverySlot> slots(outs.size());
  for (size_t i = 0; i < outs.size(); ++i) {
    const Out& o = outs[i];
    slots[i] = DeliverySlot{&d, i};
    rd_kafka_headers_t* hdrs = nullptr;
    if (o.headers && !o.headers->empty()) {
      hdrs = rd_kafka_headers_new(o.headers->size());
      for (const auto& [k, v] : *o.headers) {
        rd_kafka_header_add(hdrs, k.data(), static_cast<ssize_t>(k.size()), v.data(),
                            static_cast<ssize_t>(v.size()));
      }
    }
    for (;;) {
      rd_kafka_resp_err_t err;
      void* value = o.value ? const_cast<char*>(o.value->data()) : nullptr;
      const size_t value_len = o.value ? o.value->size() : 0;
      if (hdrs) {
        err = rd_kafka_producev(impl.producer, RD_KAFKA_V_TOPIC(o.topic->c_str()),
                                RD_KAFKA_V_PARTITION(o.partition),
                                RD_KAFKA_V_KEY(const_cast<char*>(o.key.data()), o.key.size()),
                                RD_KAFKA_V_VALUE(value, value_len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                                RD_KAFKA_V_OPAQUE(&slots[i]), RD_KAFKA_V_END);
      } else {
        err = rd_kafka_producev(impl.producer, RD_KAFKA_V_TOPIC(o.topic->c_str()),
                                RD_KAFKA_V_PARTITION(o.partition),
                                RD_KAFKA_V_KEY(const_cast<char*>(o.key.data()), o.key.size()),
                                RD_KAFKA_V_VALUE(value, value_len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_OPAQUE(&slots[i]), RD_KAFKA_V_END);
      }
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(impl.producer, 10);  // serve delivery reports to make room
        continue;
      }
      if (err) {
        if (hdrs) rd_kafka_headers_destroy(hdrs);
        // Earlier messages of this wave are in flight and reference `d`: wait for their reports.
        std::unique_lock lock(d.mu);
        d.cv.wait(lock, [&] { return d.remaining == 0; });
        return kafka_error("produce to " + *o.topic, err);
      }
      std::lock_guard lock(d.mu);
      ++d.remaining;
      break;
    }
  }
  {
    std::unique_lock lock(d.mu);
    d.cv.wait(lock, [&] { return d.remaining == 0; });
    if (!d.error.empty()) {
      return make_error(Errc::kUnavailable, "kafka produce failed: " + d.error);
    }
  }
  for (size_t i = 0; i < outs.size(); ++i) {
    impl.note_end(TopicPartition{*outs[i].topic, outs[i].partition}, d.offsets[i] + 1);
  }

  // 2. Local state (and the offsets of local groups) in one write.
  std::map<std::string, std::vector<const OffsetCommit*>> remote;
  {
    state::WriteBatch local_offsets;
    for (const auto& o : txn.offsets) {
      if (options_.local_groups.count(o.group)) {
        local_offsets.put(*impl.offsets, local_offset_key(o.group, o.tp),
                          encode_be64(static_cast<uint64_t>(o.next_offset)));
      } else {
        remote[o.group].push_back(&o);
      }
    }
    const state::WriteBatch* batches[] = {&txn.state, &local_offsets};
    std::lock_guard lock(impl.write_mu);
    for (size_t i = n_records; i < outs.size(); ++i) {
      auto& own = outs[i].changelog->own[std::string(outs[i].key)];
      own = std::max(own, d.offsets[i]);
    }
    if (!txn.state.empty() || !local_offsets.empty()) {
      if (auto st = db_.write(batches); !st.ok()) return st.error();
    }
  }

  // 3. Offsets of shared groups, through the member that owns each partition. A member that
  // owns the partition commits asynchronously: the records and state above are durable
  // already, so the offsets cannot run ahead of them; a commit that is lost (crash, failure,
  // revocation) only replays records whose effects are deduped (at-least-once). The member's
  // commits reach the coordinator in order, a revocation waits for them (on_rebalance: the next
  // owner starts where this one stopped), librdkafka logs a failed one (COMMITFAIL, no
  // offset_commit_cb: its results would queue up on handles nobody polls), and closing the
  // member waits for what is in flight. A group without a member here commits through a
  // handle nobody polls: synchronously, so that the result is seen here.
  for (const auto& [group, commits] : remote) {
    struct Target {
      rd_kafka_topic_partition_list_t* list = nullptr;
      bool member = false;
    };
    std::map<rd_kafka_t*, Target> targets;
    for (const OffsetCommit* o : commits) {
      rd_kafka_t* rk = nullptr;
      {
        std::lock_guard lock(impl.consumers_mu);
        auto range = impl.consumers.equal_range(group);
        for (auto it = range.first; it != range.second; ++it) {
          if (it->second->owns(o->tp)) {
            rk = it->second->handle();
            it->second->note_sent(o->tp, o->next_offset);
            break;
          }
        }
        if (!rk && range.first != range.second) continue;  // revoked meanwhile: not ours
      }
      const bool member = rk != nullptr;
      if (!rk) rk = impl.committer(group);
      if (!rk) return make_error(Errc::kUnavailable, "no Kafka client for group " + group);
      auto& t = targets[rk];
      if (!t.list) t.list = rd_kafka_topic_partition_list_new(4);
      t.member = member;
      rd_kafka_topic_partition_list_add(t.list, o->tp.topic.c_str(), o->tp.partition)->offset =
          o->next_offset;
    }
    for (auto& [rk, t] : targets) {
      const auto err = rd_kafka_commit(rk, t.list, t.member ? 1 : 0);  // copies the list
      rd_kafka_topic_partition_list_destroy(t.list);
      if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        // Not fatal: the state is durable; a later commit (or a replay, deduped) catches up.
        spdlog::warn("kafka group {}: offset commit: {}", group, rd_kafka_err2str(err));
      }
    }
  }

  std::vector<RecordPosition> positions;
  positions.reserve(n_records);
  for (size_t i = 0; i < n_records; ++i) {
    positions.push_back(RecordPosition{TopicPartition{*outs[i].topic, outs[i].partition},
                                       d.offsets[i]});
  }
  return positions;
}

Result<std::unique_ptr<Consumer>> KafkaLog::subscribe(std::string group,
                                                      std::vector<std::string> topic_names,
                                                      std::vector<int32_t> parts,
                                                      bool from_beginning) {
  for (const auto& t : topic_names) {
    if (partitions(t) == 0) return make_error(Errc::kInternal, "unknown topic " + t);
  }
  bool changelogged = false;
  {
    std::lock_guard lock(impl_->changelog_mu);
    for (auto& [name, cl] : impl_->changelogs) changelogged = changelogged || cl->group == group;
  }
  const bool local = options_.local_groups.count(group) > 0;
  using Mode = KafkaConsumer::Mode;
  const Mode mode = local ? Mode::kLocalGroup : (parts.empty() ? Mode::kGroup : Mode::kAssigned);
  std::map<TopicPartition, int64_t> start;
  if (mode != Mode::kGroup) {
    for (const auto& t : topic_names) {
      const int32_t n = partitions(t);
      std::vector<int32_t> mine;
      if (parts.empty()) {
        for (int32_t p = 0; p < n; ++p) mine.push_back(p);
      } else {
        for (int32_t p : parts) {
          if (p < n) mine.push_back(p);
        }
      }
      for (int32_t p : mine) {
        TopicPartition tp{t, p};
        auto c = committed(group, tp);
        if (!c.ok()) return c.error();
        start[tp] = *c >= 0 ? *c : (from_beginning ? RD_KAFKA_OFFSET_BEGINNING : end_offset(tp));
      }
    }
  }
  // Local groups read with a private client id: they never join a Kafka group.
  const std::string group_id = local ? "attune-local." + group : group;
  auto c = std::make_unique<KafkaConsumer>(*impl_, group, mode, changelogged);
  if (auto st = c->open(group_id, from_beginning, topic_names, start); !st.ok()) {
    return st.error();
  }
  return std::unique_ptr<Consumer>(std::move(c));
}

Result<std::unique_ptr<Consumer>> KafkaLog::reader(std::vector<std::string> topic_names) {
  std::map<TopicPartition, int64_t> start;
  for (const auto& t : topic_names) {
    const int32_t n = partitions(t);
    if (n == 0) return make_error(Errc::kInternal, "unknown topic " + t);
    for (int32_t p = 0; p < n; ++p) start[TopicPartition{t, p}] = RD_KAFKA_OFFSET_BEGINNING;
  }
  auto c = std::make_unique<KafkaConsumer>(*impl_, std::string(), KafkaConsumer::Mode::kReader,
                                           false);
  if (auto st = c->open("attune-reader", true, topic_names, start); !st.ok()) return st.error();
  return std::unique_ptr<Consumer>(std::move(c));
}

}  // namespace attune
