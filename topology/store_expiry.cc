// Expiry entries of bounded stage stores.
#include "topology/store_expiry.h"

#include <algorithm>
#include <stdexcept>
#include <utility>
#include <vector>

namespace attune::expiry {

std::string expiry_key(int64_t due_ms, std::string_view key) {
  std::string k(kPrefix);
  k += state::encode_be64(static_cast<uint64_t>(std::max<int64_t>(due_ms, 0)));
  k += key;
  return k;
}

void schedule(ProcessorContext& ctx, state::Store& store, std::string_view key, int64_t due_ms) {
  ctx.put(store, expiry_key(due_ms, key), std::string());
}

ExpireResult expire_due(ProcessorContext& ctx, state::Store& store, int64_t now_ms,
                        size_t budget) {
  ExpireResult out;
  std::vector<std::string> due;
  const size_t header = kPrefix.size() + 8;
  auto st = ctx.scan(store, kPrefix, [&](std::string_view key, std::string_view) {
    if (key.size() < header) return true;  // not ours; cannot happen
    const auto at = static_cast<int64_t>(state::decode_be64(key.substr(kPrefix.size(), 8)));
    if (at > now_ms) return false;
    if (due.size() >= budget) {
      out.more = true;
      return false;
    }
    due.emplace_back(key);
    return true;
  });
  if (!st.ok()) throw std::runtime_error("expiry scan of " + store.name() + ": " + st.error().message);
  for (auto& k : due) {
    ctx.del(store, k.substr(header));
    ctx.del(store, std::move(k));
  }
  out.expired = due.size();
  return out;
}

bool LegacySweep::step(ProcessorContext& ctx, state::Store& store, size_t budget,
                       const LegacyDue& due_of) {
  if (done_) return false;
  if (!checked_) {
    auto v = ctx.get(store, kSweptKey);
    if (!v.ok()) throw std::runtime_error("sweep of " + store.name() + ": " + v.error().message);
    checked_ = true;
    if (v->has_value()) {
      done_ = true;
      return false;
    }
  }
  // Committed entries from the cursor on; this transaction's own writes are new entries that
  // already have their expiry. Each visited entry is re-read through the transaction.
  std::vector<std::string> keys;
  bool more = false;
  auto st = store.scan(
      "",
      [&](std::string_view key, std::string_view) {
        if (is_internal_key(key)) return false;  // '~' sorts after every entry key
        if (keys.size() >= std::max<size_t>(budget, 1)) {
          more = true;
          return false;
        }
        keys.emplace_back(key);
        return true;
      },
      false, cursor_);
  if (!st.ok()) throw std::runtime_error("sweep of " + store.name() + ": " + st.error().message);
  for (const auto& k : keys) {
    auto v = ctx.get(store, k);
    if (!v.ok()) throw std::runtime_error("sweep of " + store.name() + ": " + v.error().message);
    if (!v->has_value()) continue;
    if (auto due = due_of(k, **v)) schedule(ctx, store, k, *due);
  }
  if (more) {
    cursor_ = keys.back() + std::string(1, '\0');
    return true;
  }
  ctx.put(store, std::string(kSweptKey), "1");
  done_ = true;
  return false;
}

SystemTime Pruner::run(ProcessorContext& ctx, state::Store& store, SystemTime now) {
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const int64_t open_at = started_ms_ + schedule_.hold.count();
  if (now_ms < open_at) return SystemTime(std::chrono::milliseconds(open_at));
  const bool sweeping = sweep_.step(ctx, store, schedule_.budget, legacy_due_);
  const ExpireResult r = expire_due(ctx, store, now_ms, schedule_.budget);
  expired_ += r.expired;
  // A full pass leaves more to do: come back right after this transaction commits.
  if (sweeping || r.more) return now + std::chrono::milliseconds(10);
  return now + schedule_.interval;
}

}  // namespace attune::expiry
