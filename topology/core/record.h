// Records and their JSON envelope (DESIGN.md §2): every record value is
// {"type", "id", "key", "ts", "source", "payload"}.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace attune {

using Json = nlohmann::json;

// A record as read from a topic partition.
struct Record {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = 0;
  std::string key;
  std::string value;
  // Record headers (Kafka only; the embedded log does not keep them).
  std::vector<std::pair<std::string, std::string>> headers;
};

// A record to be produced; its partition is derived from the key unless given.
struct OutRecord {
  std::string topic;
  std::string key;
  std::string value;
  int32_t partition = -1;  // -1: partition_for(key)
  std::vector<std::pair<std::string, std::string>> headers;  // Kafka only
};

struct Envelope {
  std::string type;    // e.g. "event.created", "execution.requested"
  int64_t id = 0;      // id of the entity the record is about
  std::string key;     // natural idempotency key
  int64_t ts = 0;      // epoch ms when produced
  std::string source;  // producing stage
  Json payload;

  std::string dump() const;
  // Parses a record value; nullopt-style failure carries the reason in `error`.
  static bool parse(std::string_view value, Envelope& out, std::string& error);
};

// Stable key → partition mapping shared by every Log implementation (FNV-1a).
int32_t partition_for(std::string_view key, int32_t partitions);

}  // namespace attune
