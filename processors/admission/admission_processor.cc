// The admission stage: I/O around admission.h.
#include "processors/admission/admission_processor.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "topology/core/time.h"

namespace attune::admission {
namespace {

constexpr std::string_view kSource = "admission";

std::string action_key(std::string_view ref) { return "a:" + std::string(ref); }
std::string group_key_of(std::string_view ref, std::string_view group) {
  std::string k = "g:";
  k += ref;
  k.push_back('\0');
  k += group;
  return k;
}
std::string queue_key(std::string_view ref, std::string_view group, int64_t n) {
  std::string k = "q:";
  k += ref;
  k.push_back('\0');
  k += group;
  k.push_back('\0');
  k += state::encode_be64(static_cast<uint64_t>(n));
  return k;
}
std::string exec_key(int64_t id) { return "e:" + std::to_string(id); }
std::string waiting_key(std::string_view ref) { return "w:" + std::string(ref); }

int64_t int_of(const Json& o, const char* name, int64_t fallback = 0) {
  auto it = o.is_object() ? o.find(name) : o.end();
  return o.is_object() && it != o.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

std::optional<Json> get_json(ProcessorContext& ctx, state::Store& s, const std::string& key) {
  auto v = ctx.get(s, key);
  if (!v.ok()) throw ProcessingError("admission: store read failed: " + v.error().message);
  if (!v->has_value()) return std::nullopt;
  Json j = Json::parse(**v, nullptr, false);
  if (j.is_discarded()) throw std::logic_error("admission: corrupt store entry " + key);
  return j;
}

struct Group {
  std::string name;
  GroupCounters c;
  int64_t head = 0;      // first queue number possibly present
  int64_t tail = 0;      // next queue number
  int64_t head_seq = 0;  // the head's action-wide sequence number
  int64_t head_at = 0;   // when the head was queued (ms)
  bool loaded = false;   // exists in the store

  Json to_json() const {
    return Json{{"active", c.active}, {"queued", c.queued}, {"head", head},
                {"tail", tail},       {"head_seq", head_seq}, {"head_at", head_at}};
  }
};

Group load_group(ProcessorContext& ctx, state::Store& s, const std::string& ref,
                 const std::string& name) {
  Group g;
  g.name = name;
  if (auto j = get_json(ctx, s, group_key_of(ref, name))) {
    g.c.active = int_of(*j, "active");
    g.c.queued = int_of(*j, "queued");
    g.head = int_of(*j, "head");
    g.tail = int_of(*j, "tail");
    g.head_seq = int_of(*j, "head_seq");
    g.head_at = int_of(*j, "head_at");
    g.loaded = true;
  }
  return g;
}

void store_group(ProcessorContext& ctx, state::Store& s, const std::string& ref, const Group& g) {
  if (g.c.active <= 0 && g.c.queued <= 0) {
    if (g.loaded) ctx.del(s, group_key_of(ref, g.name));
    return;
  }
  ctx.put(s, group_key_of(ref, g.name), g.to_json().dump());
}

// Moves the group's head to its first queued entry at or after `head` (entries of executions
// cancelled while queued are gone). Returns that entry.
std::optional<Json> find_head(ProcessorContext& ctx, state::Store& s, const std::string& ref,
                              Group& g) {
  if (g.c.queued <= 0) {
    g.head = g.tail;
    return std::nullopt;
  }
  for (; g.head < g.tail; ++g.head) {
    if (auto e = get_json(ctx, s, queue_key(ref, g.name, g.head))) {
      g.head_seq = int_of(*e, "seq");
      g.head_at = int_of(*e, "at");
      return e;
    }
  }
  spdlog::error("admission: group {} of {} counts {} queued but holds none", g.name, ref,
                g.c.queued);
  return std::nullopt;
}

}  // namespace

struct AdmissionProcessor::Action {
  std::string ref;
  Counters c;
  int64_t seq = 0;                  // next action-wide sequence number
  std::vector<std::string> waiting;  // groups with queued executions
  bool loaded = false;
  bool changed = false;
};

AdmissionProcessor::AdmissionProcessor(const DefinitionsTable& table, AdmissionOptions options)
    : table_(table),
      options_(options),
      resolver_(table),
      pruner_(options_.prune, [](std::string_view, std::string_view) -> std::optional<int64_t> {
        return std::nullopt;  // every entry that expires was written with its expiry
      }) {}

void AdmissionProcessor::init(ProcessorContext& ctx) {
  store_ = &ctx.store(kQueuesStore);
  pruner_.start(ctx);
  pump_all_ = true;  // a restart: look at every waiting action (rate wake-ups were in memory)
  stats_all_ = true;
  ctx.request_punctuate(ctx.clock().now());
}

void AdmissionProcessor::assigned(const std::vector<TopicPartition>&, ProcessorContext& ctx) {
  pump_all_ = true;
  stats_all_ = true;
  ctx.request_punctuate(ctx.clock().now());
}

AdmissionProcessor::Action AdmissionProcessor::load_action(ProcessorContext& ctx,
                                                           const std::string& ref) {
  Action a;
  a.ref = ref;
  if (auto j = get_json(ctx, *store_, action_key(ref))) {
    a.c.active = int_of(*j, "active");
    a.c.queued = int_of(*j, "queued");
    a.c.total_enqueued = int_of(*j, "total_enqueued");
    a.c.total_completed = int_of(*j, "total_completed");
    a.seq = int_of(*j, "seq");
    for (const Json& t : j->value("starts", Json::array())) {
      if (t.is_number_integer()) a.c.starts.push_back(t.get<int64_t>());
    }
    for (const Json& w : j->value("waiting", Json::array())) {
      if (w.is_string()) a.waiting.push_back(w.get<std::string>());
    }
    a.loaded = true;
  }
  return a;
}

void AdmissionProcessor::store_action(ProcessorContext& ctx, Action& a) {
  Json j = {{"active", a.c.active},
            {"queued", a.c.queued},
            {"total_enqueued", a.c.total_enqueued},
            {"total_completed", a.c.total_completed},
            {"seq", a.seq},
            {"starts", a.c.starts},
            {"waiting", a.waiting}};
  ctx.put(*store_, action_key(a.ref), j.dump());
  if (a.waiting.empty()) {
    ctx.del(*store_, waiting_key(a.ref));
  } else {
    ctx.put(*store_, waiting_key(a.ref), std::string());
  }
}

void AdmissionProcessor::publish_stats(ProcessorContext& ctx, Action& a, const Limits& l) {
  const int64_t now = ctx.clock().now_ms();
  Json oldest = nullptr;
  int64_t oldest_at = 0;
  for (const std::string& name : a.waiting) {
    const Group g = load_group(ctx, *store_, a.ref, name);
    if (g.c.queued > 0 && (oldest_at == 0 || g.head_at < oldest_at)) oldest_at = g.head_at;
  }
  if (oldest_at > 0) oldest = format_rfc3339_ms(oldest_at);
  Json stats = {{"action_ref", a.ref},
                {"active_count", a.c.active},
                {"max_concurrent", l.concurrency ? Json(*l.concurrency) : Json(nullptr)},
                {"queue_length", a.c.queued},
                {"total_enqueued", a.c.total_enqueued},
                {"total_completed", a.c.total_completed},
                {"oldest_enqueued_at", oldest},
                {"last_updated", format_rfc3339_ms(now)}};
  Envelope e{"queue.stats", ctx.ids().next(), "queue-stats:" + a.ref, now, std::string(kSource),
             std::move(stats)};
  ctx.forward(topics::kExecutions, a.ref, e.dump());
}

namespace {

void answer(ProcessorContext& ctx, int64_t id, int64_t root, bool granted, int64_t now) {
  Json payload = {{"id", id}};
  if (!granted) payload["error"] = std::string(kReject);
  Envelope e{granted ? "admission.granted" : "admission.rejected",
             id,
             std::string(granted ? "granted:" : "rejected:") + std::to_string(id),
             now,
             std::string(kSource),
             std::move(payload)};
  ctx.forward(topics::kCommands, std::to_string(root > 0 ? root : id), e.dump());
}

}  // namespace

void AdmissionProcessor::on_request(ProcessorContext& ctx, const Json& p) {
  const int64_t id = int_of(p, "id");
  const std::string ref = p.value("action_ref", "");
  if (id <= 0 || ref.empty()) throw ProcessingError("admission.request needs id and action_ref");
  const int64_t root = int_of(p, "root", id);
  if (get_json(ctx, *store_, exec_key(id))) return;  // a repeat: decided already
  const int64_t now = ctx.clock().now_ms();
  const Limits l = limits_of(resolver_.of(ref));
  Action a = load_action(ctx, ref);
  const std::string group = p.value("group", "");
  Group g = load_group(ctx, *store_, ref, group);
  switch (decide_request(a.c, g.c, l, now)) {
    case Verdict::kReject:
      ctx.put(*store_, exec_key(id), Json{{"action", ref}, {"state", "released"}}.dump());
      expiry::schedule(ctx, *store_, exec_key(id), now + options_.retention.count());
      answer(ctx, id, root, false, now);
      break;
    case Verdict::kAdmit:
      ctx.put(*store_, exec_key(id),
              Json{{"action", ref}, {"group", group}, {"state", "active"}}.dump());
      answer(ctx, id, root, true, now);
      break;
    case Verdict::kEnqueue: {
      const int64_t n = g.tail++;
      const int64_t seq = a.seq++;
      ctx.put(*store_, queue_key(ref, group, n),
              Json{{"id", id}, {"root", root}, {"at", now}, {"seq", seq}}.dump());
      ctx.put(*store_, exec_key(id),
              Json{{"action", ref}, {"group", group}, {"state", "queued"}, {"n", n}}.dump());
      if (g.c.queued == 1) {  // it is the head
        g.head = n;
        g.head_seq = seq;
        g.head_at = now;
        a.waiting.push_back(group);
      }
      break;
    }
  }
  store_group(ctx, *store_, ref, g);
  pump(ctx, a, l, &group);
  store_action(ctx, a);
  stats_due(ctx, ref);
}

void AdmissionProcessor::on_adopt(ProcessorContext& ctx, const Json& p) {
  const int64_t id = int_of(p, "id");
  const std::string ref = p.value("action_ref", "");
  if (id <= 0 || ref.empty()) throw ProcessingError("admission.adopt needs id and action_ref");
  if (get_json(ctx, *store_, exec_key(id))) return;  // known (or ended) already
  const std::string group = p.value("group", "");
  Action a = load_action(ctx, ref);
  Group g = load_group(ctx, *store_, ref, group);
  decide_adopt(a.c, g.c);
  ctx.put(*store_, exec_key(id), Json{{"action", ref}, {"group", group}, {"state", "active"}}.dump());
  store_group(ctx, *store_, ref, g);
  store_action(ctx, a);
  stats_due(ctx, ref);
}

void AdmissionProcessor::on_release(ProcessorContext& ctx, const Json& p) {
  const int64_t id = int_of(p, "id");
  std::string ref = p.value("action_ref", "");
  if (id <= 0) throw ProcessingError("admission.release needs an id");
  const int64_t now = ctx.clock().now_ms();
  auto place = get_json(ctx, *store_, exec_key(id));
  if (!place) {
    // Never requested here (or forgotten long ago): remember it, so a late request is ignored.
    ctx.put(*store_, exec_key(id), Json{{"action", ref}, {"state", "released"}}.dump());
    expiry::schedule(ctx, *store_, exec_key(id), now + options_.retention.count());
    return;
  }
  const std::string state = place->value("state", "");
  if (state != "active" && state != "queued") return;  // released already
  ref = place->value("action", ref);
  const std::string group = place->value("group", "");
  const Limits l = limits_of(resolver_.of(ref));
  Action a = load_action(ctx, ref);
  Group g = load_group(ctx, *store_, ref, group);
  const bool was_active = state == "active";
  if (!was_active) {
    const int64_t n = int_of(*place, "n");
    ctx.del(*store_, queue_key(ref, group, n));
  }
  decide_release(a.c, g.c, was_active);
  if (!was_active && g.head == int_of(*place, "n")) {
    ++g.head;
    if (!find_head(ctx, *store_, ref, g)) {
      a.waiting.erase(std::remove(a.waiting.begin(), a.waiting.end(), group), a.waiting.end());
    }
  }
  ctx.put(*store_, exec_key(id), Json{{"action", ref}, {"state", "released"}}.dump());
  expiry::schedule(ctx, *store_, exec_key(id), now + options_.retention.count());
  store_group(ctx, *store_, ref, g);
  pump(ctx, a, l, &group);
  store_action(ctx, a);
  stats_due(ctx, ref);
}

void AdmissionProcessor::stats_due(ProcessorContext& ctx, const std::string& ref) {
  if (stats_due_.insert(ref).second && stats_due_.size() == 1) {
    ctx.request_punctuate(ctx.clock().now());
  }
}

void AdmissionProcessor::pump(ProcessorContext& ctx, Action& a, const Limits& l,
                              const std::string* only) {
  const int64_t now = ctx.clock().now_ms();
  if (a.waiting.empty()) {
    prune_starts(a.c, l, now);
    wakes_.erase(a.ref);
    return;
  }
  // Without a rate limit, groups are independent: after a request or a release only that group
  // can start anything, so only it is read (the cost of a record does not grow with the number
  // of groups waiting). A rate limit is shared: every waiting group competes for the next start.
  if (only && !l.rate &&
      std::find(a.waiting.begin(), a.waiting.end(), *only) == a.waiting.end()) {
    return;
  }
  std::vector<Waiting> waiting;
  std::vector<Group> groups;
  for (const std::string& name : a.waiting) {
    if (only && !l.rate && name != *only) continue;
    groups.push_back(load_group(ctx, *store_, a.ref, name));
    waiting.push_back(Waiting{name, groups.back().head_seq, groups.back().c});
  }
  std::vector<bool> dirty(groups.size(), false);
  for (;;) {
    const Next next = next_admission(a.c, waiting, l, now);
    if (!next.admit) {
      if (next.wake_at_ms) {
        wakes_[a.ref] = *next.wake_at_ms;
        ctx.request_punctuate(SystemTime(std::chrono::milliseconds(*next.wake_at_ms)));
      } else {
        wakes_.erase(a.ref);
      }
      break;
    }
    const size_t i = *next.admit;
    Group& g = groups[i];
    g.c = waiting[i].counters;
    dirty[i] = true;
    const auto head = get_json(ctx, *store_, queue_key(a.ref, g.name, g.head));
    if (!head) throw std::logic_error("admission: queue head missing for " + a.ref);
    const int64_t id = int_of(*head, "id");
    ctx.del(*store_, queue_key(a.ref, g.name, g.head));
    ctx.put(*store_, exec_key(id),
            Json{{"action", a.ref}, {"group", g.name}, {"state", "active"}}.dump());
    answer(ctx, id, int_of(*head, "root", id), true, now);
    ++g.head;
    if (find_head(ctx, *store_, a.ref, g)) {
      waiting[i].head_seq = g.head_seq;
    } else {
      waiting[i].counters.queued = 0;  // never chosen again (nor waited for)
    }
  }
  for (size_t i = 0; i < groups.size(); ++i) {
    if (dirty[i]) store_group(ctx, *store_, a.ref, groups[i]);
    if (groups[i].c.queued <= 0) {
      a.waiting.erase(std::remove(a.waiting.begin(), a.waiting.end(), groups[i].name),
                      a.waiting.end());
    }
  }
}

void AdmissionProcessor::process(const Record& record, ProcessorContext& ctx) {
  Envelope e;
  std::string error;
  if (!envelope_of(record, e, error)) throw ProcessingError(error);
  if (!e.payload.is_object()) throw ProcessingError(e.type + ": payload is not an object");
  if (e.type == "admission.request") {
    on_request(ctx, e.payload);
  } else if (e.type == "admission.release") {
    on_release(ctx, e.payload);
  } else if (e.type == "admission.adopt") {
    on_adopt(ctx, e.payload);
  } else if (e.type == "admission.pump") {
    const std::string ref = e.payload.value("action_ref", "");
    if (ref.empty()) throw ProcessingError("admission.pump needs an action_ref");
    Action a = load_action(ctx, ref);
    if (!a.loaded) return;
    pump(ctx, a, limits_of(resolver_.of(ref)));
    store_action(ctx, a);
    stats_due(ctx, ref);
  } else {
    spdlog::debug("admission: ignoring record type {}", e.type);
  }
}

std::optional<SystemTime> AdmissionProcessor::punctuate(SystemTime now, ProcessorContext& ctx) {
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  // A definition changed — maybe a policy, even one created and deleted since the last look: the
  // waiting actions' queues may move now (a raised limit, a deleted policy). At most one such
  // pass per punctuation interval; each costs a scan of the waiting actions.
  if (const uint64_t v = table_.version(); v != version_seen_) {
    version_seen_ = v;
    pump_all_ = true;
  }
  // The statistics of the actions the last records changed: one record per action per batch
  // (after a restart, of every action, in case the last ones were lost with their commit).
  if (stats_all_) {
    stats_all_ = false;
    auto st = ctx.scan(*store_, "a:", [&](std::string_view key, std::string_view) {
      stats_due_.emplace(key.substr(2));
      return true;
    });
    if (!st.ok()) spdlog::warn("admission: scan failed: {}", st.error().message);
  }
  for (const std::string& ref : stats_due_) {
    Action a = load_action(ctx, ref);
    publish_stats(ctx, a, limits_of(resolver_.of(ref)));
  }
  stats_due_.clear();
  std::vector<std::string> pumps;
  if (pump_all_) {
    pump_all_ = false;
    auto st = ctx.scan(*store_, "w:", [&](std::string_view key, std::string_view) {
      pumps.emplace_back(key.substr(2));
      return true;
    });
    if (!st.ok()) spdlog::warn("admission: scan failed: {}", st.error().message);
  }
  std::optional<int64_t> next;
  for (auto it = wakes_.begin(); it != wakes_.end();) {
    if (it->second <= now_ms) {
      pumps.push_back(it->first);
      it = wakes_.erase(it);
    } else {
      next = next ? std::min(*next, it->second) : it->second;
      ++it;
    }
  }
  std::sort(pumps.begin(), pumps.end());
  pumps.erase(std::unique(pumps.begin(), pumps.end()), pumps.end());
  // Through the log: the instance owning the action's partition decides (never two at once).
  for (const std::string& ref : pumps) {
    Envelope e{"admission.pump", 0, "pump:" + ref + ":" + std::to_string(now_ms), now_ms,
               std::string(kSource), Json{{"action_ref", ref}}};
    ctx.forward(topics::kAdmission, ref, e.dump());
  }
  // Policies are definitions: look again soon (cheap: one counter).
  const SystemTime poll = now + std::chrono::milliseconds(200);
  SystemTime at = next ? SystemTime(std::chrono::milliseconds(*next)) : poll;
  at = std::min(at, poll);
  if (ctx.instance() != 0) return at;
  return std::min(at, pruner_.run(ctx, *store_, now));
}

}  // namespace attune::admission
