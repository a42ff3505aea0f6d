// Consistency tokens (issue 13): read-your-writes across API instances.
//
// Every API instance builds complete views from the same topics, each at its own pace. A token
// is a position in those topics — for each topic the views read, the next offset of every
// partition — written `definitions=13;events=5.0.3.9;enforcements=...;executions=...` (topics
// without "attune.", partitions in order). Every response carries the position its instance had
// applied when it answered (merged with what the request itself wrote, e.g. a webhook's event,
// which is answered once durable rather than once applied) in the header X-Attune-Consistency.
// A request that sends a token back, to any instance, is answered only once that instance has
// applied at least that position — so it sees everything the client saw or wrote before — or,
// after a bounded wait, 503 with Retry-After. A malformed token is a 400.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>

#include "api/projections/projections.h"
#include "topology/definitions_table.h"

namespace attune::service {

inline constexpr std::string_view kConsistencyHeader = "X-Attune-Consistency";

using Positions = std::map<TopicPartition, int64_t>;  // next offset per partition

std::string encode_positions(const Positions& positions);
Result<Positions> decode_positions(std::string_view token);
// Element-wise maximum.
void merge_positions(Positions& into, const Positions& other);

class Consistency {
 public:
  Consistency(const Log& log, const DefinitionsTable& defs, const projections::Projections& views);
  // What this instance has applied now.
  Positions applied() const;
  std::string token() const { return encode_positions(applied()); }
  // Waits until this instance has applied `wanted`: ok, kBadRequest for a position in a topic
  // or partition this instance does not read, kUnavailable after `timeout`.
  Status wait(const Positions& wanted, std::chrono::milliseconds timeout) const;

 private:
  const Log& log_;
  const DefinitionsTable& defs_;
  const projections::Projections& views_;
};

}  // namespace attune::service
