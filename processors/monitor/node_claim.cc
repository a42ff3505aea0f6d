#include "processors/monitor/node_claim.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <deque>

namespace attune::monitor {
namespace {

std::string claim_key(unsigned node) { return "node:" + std::to_string(node); }

bool process_gone(int64_t pid) {
  return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

}  // namespace

std::optional<ClaimHolder> holder_before(const std::vector<Envelope>& records, unsigned node,
                                         const std::string& instance) {
  std::optional<ClaimHolder> holder;
  for (const auto& e : records) {
    if (e.key != claim_key(node) || !e.payload.is_object()) continue;
    const std::string who = e.payload.value("instance", "");
    if (who == instance) continue;
    if (e.type == kNodeReleased) {
      if (holder && holder->instance == who) holder.reset();
    } else if (e.type == kNodeClaim) {
      holder = ClaimHolder{who, e.payload.value("host", ""), e.payload.value("roles", ""),
                           e.payload.value("pid", int64_t{0}), e.ts};
    }
  }
  return holder;
}

NodeClaim::NodeClaim(Log& log, NodeClaimOptions options)
    : log_(log), options_(std::move(options)) {}

NodeClaim::~NodeClaim() { stop(); }

Status NodeClaim::write(std::string_view type, int64_t* offset) {
  const int64_t now = options_.clock->now_ms();
  Envelope e{std::string(type), static_cast<int64_t>(options_.node), claim_key(options_.node),
             now, "node",
             Json{{"node", options_.node},
                  {"instance", options_.instance},
                  {"host", options_.host},
                  {"roles", options_.roles},
                  {"pid", static_cast<int64_t>(::getpid())}}};
  auto pos = log_.produce(
      {OutRecord{std::string(topics::kWorkers), claim_key(options_.node), e.dump()}});
  if (!pos.ok()) return pos.error();
  if (offset && !pos->empty()) *offset = pos->front().offset;
  return {};
}

Status NodeClaim::read_through(int64_t through, std::vector<Envelope>& seen) {
  if (!reader_) {
    auto c = log_.reader({std::string(topics::kWorkers)});
    if (!c.ok()) return c.error();
    reader_ = std::move(*c);
  }
  // Continues where the previous call stopped: a wait reads only what was written since.
  // Records past `through` (read in the same batch) wait in ahead_ for a later call.
  std::deque<std::pair<int64_t, Envelope>> pending = std::move(ahead_);
  ahead_.clear();
  auto take = [&](int64_t offset, Envelope e) {
    if (offset > through) {
      ahead_.emplace_back(offset, std::move(e));
      return false;
    }
    seen.push_back(std::move(e));
    return offset < through;
  };
  bool more = true;
  while (!pending.empty()) {
    more = take(pending.front().first, std::move(pending.front().second)) && more;
    pending.pop_front();
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (more) {
    for (const auto& r : reader_->poll(4096, std::chrono::milliseconds(200))) {
      Envelope e;
      std::string error;
      if (!Envelope::parse(r.value, e, error)) e = Envelope{};  // keeps the offset's place
      e.key = r.key;  // the record key decides, whatever the envelope says
      more = take(r.offset, std::move(e)) && more;
    }
    if (!more) break;
    if (std::chrono::steady_clock::now() > deadline) {
      return make_error(Errc::kUnavailable, "cannot read attune.workers up to offset " +
                                                std::to_string(through));
    }
  }
  return {};
}

Status NodeClaim::start() {
  const auto started = std::chrono::steady_clock::now();
  std::vector<Envelope> seen;  // attune.workers up to our latest claim, in order
  for (;;) {
    int64_t offset = -1;
    if (auto st = write(kNodeClaim, &offset); !st.ok()) return st;
    if (auto st = read_through(offset, seen); !st.ok()) return st;
    // Records of other instances after our claim are not read: the one that came first decides.
    auto holder = holder_before(seen, options_.node, options_.instance);
    const int64_t now = options_.clock->now_ms();
    bool free = !holder || now - holder->ts > options_.timeout.count();
    if (!free && holder->host == options_.host &&
        (holder->pid == static_cast<int64_t>(::getpid()) || process_gone(holder->pid))) {
      free = true;  // an earlier process of this host, gone (or our own pid before a restart)
    }
    if (free) break;
    // A holder that beat recently: wait for it to fall silent, unless it keeps beating.
    if (std::chrono::steady_clock::now() - started > options_.timeout + options_.interval * 2) {
      // Our own claims written while waiting must not make the next starter wait for us.
      if (auto st = write(kNodeReleased, nullptr); !st.ok()) {
        spdlog::warn("node id {}: release failed: {}", options_.node, st.error().message);
      }
      return make_error(Errc::kConflict,
                        "node id " + std::to_string(options_.node) + " is in use by a live process (" +
                            holder->roles + " on " + holder->host + ", pid " +
                            std::to_string(holder->pid) + "): every process that mints ids " +
                            "(roles api, rules, executor, sensor) needs its own --node-id 0..15");
    }
    spdlog::warn("node id {} was claimed {} ms ago by {} on {} (pid {}); waiting for it to expire",
                 options_.node, now - holder->ts, holder->roles, holder->host, holder->pid);
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, options_.interval, [&] { return stopping_; });
    if (stopping_) return make_error(Errc::kUnavailable, "stopped while claiming the node id");
  }
  claimed_ = true;
  reader_.reset();
  ahead_.clear();
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, options_.interval, [&] { return stopping_; })) {
      lock.unlock();
      if (auto st = write(kNodeClaim, nullptr); !st.ok()) {
        spdlog::warn("node id {}: claim renewal failed: {}", options_.node, st.error().message);
      }
      lock.lock();
    }
  });
  return {};
}

void NodeClaim::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (claimed_) {
    if (auto st = write(kNodeReleased, nullptr); !st.ok()) {
      spdlog::warn("node id {}: release failed: {}", options_.node, st.error().message);
    }
  }
}

}  // namespace attune::monitor
