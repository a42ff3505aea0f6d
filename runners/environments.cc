// PackEnvironments (see environments.h).
#include "runners/environments.h"

namespace attune::runners {

Json EnvironmentState::to_json() const {
  if (status == "none") return nullptr;
  return Json{{"status", status}, {"message", message}};
}

PackEnvironments::PackEnvironments(EnvironmentOptions options) : options_(std::move(options)) {}
PackEnvironments::~PackEnvironments() = default;

void PackEnvironments::build(const std::string&, const std::string&,
                             std::function<void(EnvironmentState)> done) {
  done(EnvironmentState{});
}

void PackEnvironments::when_ready(const std::string&, const std::string&, const std::string&,
                                  std::function<void(Status)> ready) {
  ready(Status{});
}

}  // namespace attune::runners
