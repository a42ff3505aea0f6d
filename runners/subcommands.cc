// Dispatch of the hidden runner subcommands (see subcommands.h).
#include "runners/subcommands.h"

#include <string_view>

#include "runners/container_runner.h"
#include "runners/http/http_request.h"

namespace attune::runners {

std::optional<int> run_hidden_subcommand(int argc, char** argv) {
  if (argc < 2) return std::nullopt;
  const std::string_view name = argv[1];
  if (name == "http-request") return http::http_request_main(argc - 2, argv + 2);
  if (name == "container-run") return container_run_main(argc - 2, argv + 2);
  return std::nullopt;
}

}  // namespace attune::runners
