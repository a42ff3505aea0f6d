// Records and their JSON envelope (DESIGN.md §2): every record value is
// {"type", "id", "key", "ts", "source", "payload"}.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace attune {

using Json = nlohmann::json;

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

struct Record;
// The envelope of a record: a copy of Record::parsed when the log handed one over (no parsing),
// else parsed from the value.
bool envelope_of(const Record& record, Envelope& out, std::string& error);

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
  // `value` already parsed, when the record was produced in this process with its Envelope and
  // is still in the embedded log's recent-records cache. Consumers may use it instead of parsing.
  std::shared_ptr<const Envelope> parsed;
};

// A record to be produced; its partition is derived from the key unless given.
struct OutRecord {
  std::string topic;
  std::string key;
  std::string value;
  int32_t partition = -1;  // -1: partition_for(key)
  std::vector<std::pair<std::string, std::string>> headers;  // Kafka only
  // Optional: the Envelope `value` was dumped from, handed to in-process consumers (Record::parsed).
  std::shared_ptr<const Envelope> parsed;
};


// A record of `e` on `topic`: its value is e.dump(), and `e` itself goes along as
// OutRecord::parsed, so consumers in this process (the embedded log's recent window) use it
// without parsing the value again.
OutRecord make_record(std::string_view topic, std::string key, Envelope e);

// Stable key → partition mapping shared by every Log implementation (FNV-1a).
int32_t partition_for(std::string_view key, int32_t partitions);

}  // namespace attune
