#include "topology/core/record.h"

namespace attune {

namespace {

// Appends `j` serialised to `out` (no intermediate string).
void dump_into(std::string& out, const Json& j) {
  nlohmann::detail::serializer<Json> s(nlohmann::detail::output_adapter<char, std::string>(out),
                                       ' ');
  s.dump(j, false, false, 0);
}

}  // namespace

std::string Envelope::dump() const {
  // Written field by field: wrapping the payload in a new Json object would deep-copy it.
  std::string out;
  out.reserve(256);
  out += "{\"type\":";
  dump_into(out, Json(type));
  out += ",\"id\":";
  out += std::to_string(id);
  out += ",\"key\":";
  dump_into(out, Json(key));
  out += ",\"ts\":";
  out += std::to_string(ts);
  out += ",\"source\":";
  dump_into(out, Json(source));
  out += ",\"payload\":";
  dump_into(out, payload);
  out += '}';
  return out;
}

bool Envelope::parse(std::string_view value, Envelope& out, std::string& error) {
  Json j = Json::parse(value, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    error = "record value is not a JSON object";
    return false;
  }
  auto type = j.find("type");
  if (type == j.end() || !type->is_string()) {
    error = "record envelope has no string 'type'";
    return false;
  }
  out.type = type->get<std::string>();
  auto id = j.find("id");
  out.id = (id != j.end() && id->is_number_integer()) ? id->get<int64_t>() : 0;
  auto key = j.find("key");
  out.key = (key != j.end() && key->is_string()) ? key->get<std::string>() : "";
  auto ts = j.find("ts");
  out.ts = (ts != j.end() && ts->is_number_integer()) ? ts->get<int64_t>() : 0;
  auto src = j.find("source");
  out.source = (src != j.end() && src->is_string()) ? src->get<std::string>() : "";
  auto payload = j.find("payload");
  out.payload = payload != j.end() ? std::move(*payload) : Json::object();
  return true;
}

OutRecord make_record(std::string_view topic, std::string key, Envelope e) {
  OutRecord r{std::string(topic), std::move(key), e.dump()};
  r.parsed = std::make_shared<const Envelope>(std::move(e));
  return r;
}

int32_t partition_for(std::string_view key, int32_t partitions) {
  if (partitions <= 1) return 0;
  uint32_t h = 2166136261u;
  for (unsigned char c : key) {
    h ^= c;
    h *= 16777619u;
  }
  return static_cast<int32_t>(h % static_cast<uint32_t>(partitions));
}

bool envelope_of(const Record& record, Envelope& out, std::string& error) {
  if (record.parsed) {
    out = *record.parsed;
    return true;
  }
  return Envelope::parse(record.value, out, error);
}

}  // namespace attune
