#include "api/service/consistency.h"

#include <charconv>

namespace attune::service {
namespace {

constexpr std::string_view kPrefix = "attune.";
const std::vector<std::string_view>& view_topics() {
  static const std::vector<std::string_view> topics_read = {
      topics::kEvents, topics::kEnforcements, topics::kExecutions};
  return topics_read;
}

Error bad(std::string why) {
  return make_error(Errc::kBadRequest,
                    "Invalid " + std::string(kConsistencyHeader) + " token: " + std::move(why));
}

}  // namespace

std::string encode_positions(const Positions& positions) {
  std::string out;
  const std::string* topic = nullptr;
  int32_t next_partition = 0;
  for (const auto& [tp, offset] : positions) {
    if (!topic || *topic != tp.topic) {
      if (topic) out.push_back(';');
      topic = &tp.topic;
      out += std::string_view(tp.topic).starts_with(kPrefix)
                 ? std::string_view(tp.topic).substr(kPrefix.size())
                 : std::string_view(tp.topic);
      out.push_back('=');
      next_partition = 0;
    } else {
      out.push_back('.');
    }
    for (; next_partition < tp.partition; ++next_partition) out += "0.";
    out += std::to_string(offset);
    next_partition = tp.partition + 1;
  }
  return out;
}

Result<Positions> decode_positions(std::string_view token) {
  Positions out;
  if (token.size() > 4096) return bad("longer than 4096 characters");
  size_t start = 0;
  while (start < token.size()) {
    size_t end = token.find(';', start);
    if (end == std::string_view::npos) end = token.size();
    const std::string_view group = token.substr(start, end - start);
    const size_t eq = group.find('=');
    if (eq == std::string_view::npos || eq == 0) return bad("expected topic=offsets");
    const std::string topic = std::string(kPrefix) + std::string(group.substr(0, eq));
    std::string_view offsets = group.substr(eq + 1);
    int32_t partition = 0;
    for (;;) {
      const size_t dot = offsets.find('.');
      const std::string_view n = offsets.substr(0, dot);
      int64_t v = -1;
      auto [ptr, ec] = std::from_chars(n.data(), n.data() + n.size(), v);
      if (ec != std::errc() || ptr != n.data() + n.size() || v < 0) {
        return bad("offsets of " + topic + " must be non-negative integers");
      }
      if (v > 0) out[TopicPartition{topic, partition}] = v;
      ++partition;
      if (dot == std::string_view::npos) break;
      offsets.remove_prefix(dot + 1);
    }
    start = end + 1;
  }
  return out;
}

void merge_positions(Positions& into, const Positions& other) {
  for (const auto& [tp, offset] : other) {
    auto& v = into[tp];
    v = std::max(v, offset);
  }
}

Consistency::Consistency(const Log& log, const DefinitionsTable& defs,
                         const projections::Projections& views)
    : log_(log), defs_(defs), views_(views) {}

Positions Consistency::applied() const {
  Positions out;
  out[TopicPartition{std::string(topics::kDefinitions), 0}] = defs_.applied();
  for (const auto& [tp, next] : views_.applied()) out[tp] = next;
  return out;
}

Status Consistency::wait(const Positions& wanted, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto left = [&] {
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now()));
  };
  auto behind = [](const TopicPartition& tp) {
    return make_error(Errc::kUnavailable,
                      "This API instance has not yet applied " + tp.topic + "[" +
                          std::to_string(tp.partition) + "] as far as the consistency token " +
                          "asks; retry shortly");
  };
  for (const auto& [tp, next] : wanted) {
    if (next <= 0) continue;
    const bool definitions = tp.topic == topics::kDefinitions;
    const bool viewed = std::find(view_topics().begin(), view_topics().end(), tp.topic) !=
                        view_topics().end();
    if ((!definitions && !viewed) || tp.partition < 0 || tp.partition >= log_.partitions(tp.topic)) {
      return bad("no partition " + std::to_string(tp.partition) + " of " + tp.topic + " here");
    }
    const bool ok = definitions ? defs_.wait_applied(next - 1, left())
                                : views_.wait_applied(tp, next - 1, left());
    if (!ok) return behind(tp);
  }
  return {};
}

}  // namespace attune::service
