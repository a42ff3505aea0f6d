// Change hooks and the generation signal of the projections.
#include "api/projections/change_feed.h"

#include <spdlog/spdlog.h>

namespace attune::projections {

ChangeFeed::Handle ChangeFeed::add_hook(ChangeHook hook) {
  std::lock_guard lock(mu_);
  auto next = std::make_shared<Hooks>(*hooks_);
  const Handle h = next_handle_++;
  next->emplace_back(h, std::move(hook));
  hooks_ = std::move(next);
  return h;
}

void ChangeFeed::remove_hook(Handle handle) {
  std::lock_guard lock(mu_);
  auto next = std::make_shared<Hooks>(*hooks_);
  std::erase_if(*next, [&](const auto& entry) { return entry.first == handle; });
  hooks_ = std::move(next);
}

void ChangeFeed::publish(const std::vector<Change>& changes) {
  std::shared_ptr<const Hooks> hooks;
  {
    std::lock_guard lock(mu_);
    hooks = hooks_;
  }
  for (const auto& change : changes) {
    for (const auto& [handle, hook] : *hooks) {
      try {
        hook(change);
      } catch (const std::exception& e) {
        spdlog::error("projections: change hook {} failed on {} {}: {}", handle,
                      change.entity_type, change.id, e.what());
      }
    }
  }
  {
    std::lock_guard lock(mu_);
    ++generation_;
  }
  cv_.notify_all();
}

uint64_t ChangeFeed::generation() const {
  std::lock_guard lock(mu_);
  return generation_;
}

bool ChangeFeed::wait_past(uint64_t seen, std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock lock(mu_);
  return cv_.wait_until(lock, deadline, [&] { return generation_ != seen; });
}

}  // namespace attune::projections
