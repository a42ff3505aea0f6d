#include "api/service/core_pack.h"

#include "runners/runner.h"

namespace attune::service {


std::string canonical_runtime(std::string_view name) {
  return runners::canonical_runtime(name);
}

}  // namespace attune::service
