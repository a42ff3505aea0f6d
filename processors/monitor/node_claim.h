// Node-id claims (DESIGN.md §7): ids carry a 4-bit node id, so two processes that mint ids with
// the same --node-id could mint the same id in the same millisecond. On Kafka every process that
// mints ids (api, rules, executor, sensor) claims its node id on attune.workers (one partition,
// compacted, key "node:<n>") and keeps the claim alive with its heartbeat:
//   node.claim     {node, instance, host, pid, base}   at start, then every interval
//   node.released  {node, instance}                    at a clean stop
// The topic's single partition is the total order that decides: a starting process writes its
// claim, reads the topic up to that very record, and finds the last record of its key written
// by another instance before it. A live claim there (younger than the timeout) means the id is
// taken: the starter waits for that holder to fall silent (a process killed a moment ago) and
// refuses to start if it keeps beating. Two processes starting at once both see the other's
// order: the later one waits for the earlier, which proceeds. A claim of this host written by a
// process that no longer exists (or by this very pid: a container's pid 1 restarted) is free at
// once, so a restart after kill -9 does not wait.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "topology/core/clock.h"
#include "topology/log.h"

namespace attune::monitor {

inline constexpr std::string_view kNodeClaim = "node.claim";
inline constexpr std::string_view kNodeReleased = "node.released";

struct NodeClaimOptions {
  unsigned node = 0;
  std::string instance;   // unique per process start (new_instance_suffix())
  std::string host;       // this host's name
  std::string roles;      // shown in the refusal message of the other process
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds timeout{10000};  // a claim this old is a dead process's
  const Clock* clock = &SystemClock::instance();
};

// Who holds a node id, from the records of its key before a claim (pure, for tests).
struct ClaimHolder {
  std::string instance, host, roles;
  int64_t pid = 0;
  int64_t ts = 0;  // its last claim record's time
};
// The holder (if any) of `node` among `records` (attune.workers, in offset order, up to and
// excluding the claim of `instance`): the last claim/release of the key by another instance.
std::optional<ClaimHolder> holder_before(const std::vector<Envelope>& records, unsigned node,
                                         const std::string& instance);

class NodeClaim {
 public:
  NodeClaim(Log& log, NodeClaimOptions options);
  ~NodeClaim();
  // Claims the node id: ok once it is ours (maybe after waiting up to the timeout for a silent
  // holder), an error naming the holder when another live process keeps it.
  Status start();
  // Releases the claim (a clean stop frees the id at once).
  void stop();

 private:
  Status write(std::string_view type, int64_t* offset);
  // Appends the records of attune.workers up to offset `through` to `seen`, in order.
  Status read_through(int64_t through, std::vector<Envelope>& seen);
  Log& log_;
  const NodeClaimOptions options_;
  std::unique_ptr<Consumer> reader_;                 // start() only
  std::deque<std::pair<int64_t, Envelope>> ahead_;   // read past the last `through`
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool claimed_ = false;
};

}  // namespace attune::monitor
