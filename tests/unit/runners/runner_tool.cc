// The hidden runner subcommands as a small binary for unit tests (the attune binary dispatches
// them the same way): runner_tool http-request|container-run ...
#include <cstdio>

#include "runners/subcommands.h"

int main(int argc, char** argv) {
  if (auto rc = attune::runners::run_hidden_subcommand(argc, argv)) return *rc;
  std::fprintf(stderr, "usage: runner_tool http-request|container-run ...\n");
  return 2;
}
